import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { sql } from 'kysely';
import {
  type AuditEvent,
  Auditor,
  openNote,
  queryEvents,
  REDACTED,
  readEvents,
  verifyLedger,
} from '../../src/audit/index.ts';
import { systemClock, UnavailableError } from '../../src/core/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { openLedger, toolCall } from './ledger-fixture.ts';

async function widgets(db: Parameters<typeof sql.raw>[0] extends never ? never : any): Promise<void> {
  await db.schema
    .createTable('widgets')
    .addColumn('id', 'text', (c: any) => c.primaryKey())
    .execute();
}

for (const backend of BACKENDS) {
  describe(`audit ledger on ${backend}`, () => {
    it('waits for more units while writers are concurrent (commit delay)', async () => {
      const { store, auditor } = await openLedger(backend, { commitDelayMs: 80 });
      const transactions = () => commits;
      let commits = 0;
      const transaction = store.transaction.bind(store);
      // Counts the batches' database transactions on the real store.
      store.transaction = (fn) => {
        commits += 1;
        return transaction(fn);
      };
      try {
        // A lone writer: one transaction per event, each committed without waiting.
        await auditor.record(toolCall(0));
        await auditor.record(toolCall(1));
        assert.equal(transactions(), 2);
        // Concurrent writers: the first burst is one batch; the next batch waits for later arrivals.
        await Promise.all([auditor.record(toolCall(2)), auditor.record(toolCall(3))]);
        const before = transactions();
        const first = auditor.record(toolCall(4));
        await new Promise((r) => setTimeout(r, 20));
        const second = auditor.record(toolCall(5));
        await Promise.all([first, second]);
        assert.equal(transactions() - before, 1, 'both events went into one transaction');
        assert.equal(auditor.head.seq, 6);
      } finally {
        store.transaction = transaction;
        await auditor.close();
        await store.close();
      }
    });

    it('stores every acknowledged event exactly once under 256 concurrent writers, with a valid chain', async () => {
      const { store, auditor } = await openLedger(backend);
      try {
        await widgets(store.db);
        const acked: string[] = [];
        const failedUnits: number[] = [];
        const writers = Array.from({ length: 256 }, async (_, w) => {
          for (let j = 0; j < 4; j++) {
            const i = w * 4 + j;
            if (i % 8 === 3) {
              // A transact unit; every 40th one throws and must be rolled back alone.
              try {
                await auditor.transact(
                  async (tx) => {
                    await tx
                      .insertInto('widgets')
                      .values({ id: `w-${i}` })
                      .execute();
                    if (i % 40 === 3) throw new Error(`unit ${i} refuses`);
                    return `w-${i}`;
                  },
                  (id) => toolCall(i, { type: 'agent.updated', resource: { type: 'widget', id } }),
                );
                acked.push(`w-${i}`);
              } catch (e) {
                assert.match((e as Error).message, /refuses/);
                failedUnits.push(i);
              }
            } else {
              const ev = (await auditor.record(toolCall(i))) as AuditEvent;
              acked.push(ev.id);
            }
          }
        });
        await Promise.all(writers);
        assert.equal(failedUnits.length, 26);
        const events = await readEvents(store.db, 'node-a', 0, 10_000);
        assert.equal(events.length, 1024 - failedUnits.length);
        assert.deepEqual(
          events.map((e) => e.seq),
          events.map((_, i) => i + 1),
        );
        const ids = new Set(events.map((e) => e.id));
        assert.equal(ids.size, events.length);
        const widgetIds = new Set(
          events.filter((e) => e.type === 'agent.updated').map((e) => e.resource?.id),
        );
        for (const a of acked) assert.ok(ids.has(a) || widgetIds.has(a), `acknowledged ${a} is stored`);
        const rows = await store.db.selectFrom('widgets').select('id').execute();
        assert.equal(rows.length, 128 - failedUnits.length);
        for (const i of failedUnits)
          assert.ok(!rows.some((r) => r.id === `w-${i}`), 'failed unit rolled back');
        await auditor.checkpoint();
        const report = await verifyLedger(store.db, auditor.verifier!);
        assert.equal(report.ok, true, JSON.stringify(report.first_problem));
        assert.equal(report.events, events.length);
        assert.equal(report.checkpoints, 1);
      } finally {
        await auditor.close();
        await store.close();
      }
    });

    it('resumes the chain after a restart and signs a checkpoint on close', async () => {
      const { store, auditor, keyring, logger } = await openLedger(backend);
      try {
        for (let i = 0; i < 5; i++) await auditor.record(toolCall(i));
        await auditor.close();
        const again = await Auditor.open({
          store,
          partition: 'node-a',
          clock: systemClock,
          logger,
          failMode: 'closed',
          keyring,
          checkpointIntervalSeconds: 0,
        });
        assert.equal(again.head.seq, 5);
        assert.equal(again.verifier?.text, auditor.verifier?.text, 'the ledger key persists');
        await again.record(toolCall(6));
        await again.close();
        const cps = await store.db
          .selectFrom('audit_checkpoints')
          .select(['size', 'note'])
          .orderBy('size')
          .execute();
        assert.deepEqual(
          cps.map((c) => Number(c.size)),
          [5, 6],
        );
        const text = openNote(cps[1]!.note as string, auditor.verifier!);
        assert.equal(text?.split('\n')[0], 'warden.audit/node-a');
        assert.equal((await verifyLedger(store.db, auditor.verifier!.text)).ok, true);
      } finally {
        await store.close();
      }
    });

    it('signs checkpoints on its interval while events arrive', async () => {
      const { store, auditor } = await openLedger(backend, { checkpointIntervalSeconds: 1 });
      try {
        await auditor.record(toolCall(1));
        const started = Date.now();
        let rows: unknown[] = [];
        while (rows.length === 0 && Date.now() - started < 5000) {
          await new Promise((r) => setTimeout(r, 100));
          rows = await store.db.selectFrom('audit_checkpoints').select('size').execute();
        }
        assert.deepEqual(
          rows.map((r) => Number((r as { size: number }).size)),
          [1],
        );
      } finally {
        await auditor.close();
        await store.close();
      }
    });

    it('refuses to reopen a partition whose signed tail was truncated', async () => {
      const { store, auditor, keyring, logger } = await openLedger(backend);
      try {
        for (let i = 0; i < 6; i++) await auditor.record(toolCall(i));
        await auditor.close();
        await store.db.deleteFrom('audit_events').where('seq', '>', 4).execute();
        await assert.rejects(
          Auditor.open({
            store,
            partition: 'node-a',
            clock: systemClock,
            logger,
            failMode: 'closed',
            keyring,
          }),
          { code: 'ERR_AUDIT_CORRUPT' },
        );
      } finally {
        await store.close();
      }
    });

    it('refuses a second live writer on a partition; other partitions append concurrently', async () => {
      const { store, auditor, keyring, logger } = await openLedger(backend);
      const opts = { store, clock: systemClock, logger, failMode: 'closed' as const, keyring };
      try {
        await assert.rejects(Auditor.open({ ...opts, partition: 'node-a' }), {
          code: 'ERR_AUDIT_PARTITION_OWNED',
        });
        const b = await Auditor.open({ ...opts, partition: 'node-b', checkpointIntervalSeconds: 0 });
        await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? auditor : b).record(toolCall(i))));
        await b.close();
        await auditor.close();
        const report = await verifyLedger(store.db, auditor.verifier!);
        assert.equal(report.ok, true, JSON.stringify(report.first_problem));
        assert.deepEqual(
          report.partitions.map((p) => [p.partition, p.events, p.signed_through]),
          [
            ['node-a', 50, 50],
            ['node-b', 50, 50],
          ],
        );
        // Closed writers released their leases: the partition can be taken again.
        const c = await Auditor.open({ ...opts, partition: 'node-a', checkpointIntervalSeconds: 0 });
        await c.close();
      } finally {
        await store.close();
      }
    });

    it('fails closed with ERR_AUDIT_UNAVAILABLE when the database is gone', async () => {
      const { store, auditor } = await openLedger(backend);
      await auditor.record(toolCall(1));
      await store.close();
      await assert.rejects(auditor.record(toolCall(2)), (e: unknown) => {
        assert.ok(e instanceof UnavailableError);
        assert.equal(e.code, 'ERR_AUDIT_UNAVAILABLE');
        return true;
      });
      let ran = false;
      await assert.rejects(
        auditor.transact(
          async () => {
            ran = true;
          },
          () => toolCall(3),
        ),
        { code: 'ERR_AUDIT_UNAVAILABLE' },
      );
      assert.equal(ran, false);
      await auditor.close();
    });

    it('fails closed when the partition lease is lost: the change is rolled back with its event', async () => {
      const { store, auditor } = await openLedger(backend);
      try {
        await widgets(store.db);
        await store.db.updateTable('audit_partitions').set({ owner: 'someone-else' }).execute();
        await assert.rejects(
          auditor.transact(
            (tx) => tx.insertInto('widgets').values({ id: 'w1' }).execute(),
            () => toolCall(1),
          ),
          { code: 'ERR_AUDIT_UNAVAILABLE' },
        );
        await assert.rejects(auditor.record(toolCall(2)), { code: 'ERR_AUDIT_UNAVAILABLE' });
        assert.equal((await store.db.selectFrom('widgets').selectAll().execute()).length, 0);
        assert.equal((await store.db.selectFrom('audit_events').selectAll().execute()).length, 0);
      } finally {
        await auditor.close();
        await store.close();
      }
    });

    it('in fail-open mode lets the action proceed: transact commits the change without its event', async () => {
      const { store, auditor } = await openLedger(backend, { failMode: 'open' });
      try {
        await widgets(store.db);
        await store.db.updateTable('audit_partitions').set({ owner: 'someone-else' }).execute();
        const id = await auditor.transact(
          async (tx) => {
            await tx.insertInto('widgets').values({ id: 'w1' }).execute();
            return 'w1';
          },
          () => toolCall(1),
        );
        assert.equal(id, 'w1');
        assert.equal(await auditor.record(toolCall(2)), undefined);
        assert.equal((await store.db.selectFrom('widgets').selectAll().execute()).length, 1);
        assert.equal((await store.db.selectFrom('audit_events').selectAll().execute()).length, 0);
      } finally {
        await auditor.close();
        await store.close();
      }
    });

    it('stores no secret handed to it: JWT, PEM private key, password field, bearer header', async () => {
      const { store, auditor } = await openLedger(backend);
      const jwt =
        'eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZ2VudC0xIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWc';
      const pem =
        '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGvH8tqdRZ0l1bBzZ3cB8i6QkL3mI0qX0U7C8r0fL3uX\n-----END PRIVATE KEY-----';
      const password = 'correct horse battery staple 42';
      const bearer = 'Bearer abcdefghijklmnopqrstuvwxyz0123456789';
      try {
        const ev = (await auditor.record(
          toolCall(1, {
            intent: { text: `use token ${jwt} please` },
            request: { user_agent: bearer },
            details: {
              password,
              note: `key ${pem}`,
              headers: { authorization: bearer },
              nested: [{ tok: jwt }],
            },
          }),
        )) as AuditEvent;
        assert.equal(ev.details?.password, REDACTED);
        const rows = await store.db.selectFrom('audit_events').selectAll().execute();
        const stored = JSON.stringify(rows);
        for (const secret of [
          jwt,
          'MC4CAQAwBQYDK2VwBCIEIGvH8',
          password,
          'abcdefghijklmnopqrstuvwxyz0123456789',
        ]) {
          assert.ok(!stored.includes(secret), 'secret absent from the stored row');
        }
        const key = await store.db.selectFrom('audit_keys').selectAll().executeTakeFirstOrThrow();
        assert.match(key.private_key_sealed as string, /^wdn1\./, 'the ledger private key is sealed');
      } finally {
        await auditor.close();
        await store.close();
      }
    });

    it('answers filtered, cursor-paged queries newest first', async () => {
      const { store, auditor } = await openLedger(backend);
      try {
        for (let i = 0; i < 30; i++) await auditor.record(toolCall(i));
        await auditor.record(toolCall(99, { type: 'user.created', actor: { type: 'user', id: 'admin-1' } }));
        const all: AuditEvent[] = [];
        let cursor: string | undefined;
        do {
          const page = await queryEvents(store.db, { agent_id: 'agent-2', limit: 2, cursor });
          all.push(...page.items);
          cursor = page.next_cursor ?? undefined;
        } while (cursor);
        const expected = Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 7 === 2);
        assert.deepEqual(
          all.map((e) => e.details?.n),
          expected.reverse(),
        );
        assert.equal((await queryEvents(store.db, { user_id: 'user-1', outcome: 'denied' })).items.length, 1);
        assert.equal(
          (await queryEvents(store.db, { actor_id: 'admin-1', type: 'user.created' })).items.length,
          1,
        );
        const first = all.at(-1)!;
        const ranged = await queryEvents(store.db, { from: first.time, to: first.time, agent_id: 'agent-2' });
        assert.ok(ranged.items.some((e) => e.id === first.id));
        await assert.rejects(queryEvents(store.db, { cursor: 'nonsense' }), { code: 'ERR_INVALID_CURSOR' });
        await assert.rejects(queryEvents(store.db, { type: 'no.such' as never }), {
          code: 'ERR_INVALID_REQUEST',
        });
      } finally {
        await auditor.close();
        await store.close();
      }
    });
  });
}
