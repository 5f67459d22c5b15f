import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  type Auditor,
  chainHash,
  checkpointOrigin,
  exportLedger,
  inclusionProof,
  noteVerifier,
  verifyInclusionProof,
  verifyLedger,
  verifyLedgerFile,
} from '../../src/audit/index.ts';
import { checkpointText, signNote } from '../../src/audit/signed-note.ts';
import { ManualClock } from '../../src/core/index.ts';
import type { Store } from '../../src/store/index.ts';
import { BACKENDS, type Backend } from '../support/databases.ts';
import { openLedger, toolCall } from './ledger-fixture.ts';

/** 40 events with signed checkpoints at 20 and 40 (the second written on close). */
async function ledger(
  backend: Backend,
): Promise<{ store: Store; auditor: Auditor; key: string; dataDir: string }> {
  const { store, auditor, dataDir } = await openLedger(backend);
  for (let i = 1; i <= 20; i++) await auditor.record(toolCall(i));
  await auditor.checkpoint();
  for (let i = 21; i <= 40; i++) await auditor.record(toolCall(i));
  await auditor.close();
  return { store, auditor, key: auditor.verifier!.text, dataDir };
}

async function row(store: Store, seq: number) {
  return store.db.selectFrom('audit_events').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
}

for (const backend of BACKENDS) {
  describe(`audit verify on ${backend}`, () => {
    it('passes an untouched ledger, live and exported', async () => {
      const { store, key, dataDir } = await ledger(backend);
      try {
        const live = await verifyLedger(store.db, key);
        assert.equal(live.ok, true);
        assert.equal(live.events, 40);
        assert.equal(live.checkpoints, 2);
        const file = join(dataDir, 'ledger.jsonl');
        assert.equal(await exportLedger(store.db, file, { publicKey: key }), 40);
        const offline = await verifyLedgerFile(file, key);
        assert.equal(offline.ok, true, JSON.stringify(offline.first_problem));
        assert.equal(offline.events, 40);
        assert.equal(offline.checkpoints, 2);
      } finally {
        await store.close();
      }
    });

    it('names the event whose stored body had one byte changed', async () => {
      const { store, key } = await ledger(backend);
      try {
        const r = await row(store, 13);
        const body = (r.body as string).replace('"tools/call"', '"tools/cale"');
        await store.db.updateTable('audit_events').set({ body }).where('seq', '=', 13).execute();
        const report = await verifyLedger(store.db, key);
        assert.equal(report.ok, false);
        assert.deepEqual(
          { ...report.first_problem, problem: undefined },
          { partition: 'node-a', seq: 13, id: r.id, problem: undefined },
        );
        assert.match(report.first_problem!.problem, /altered/);
      } finally {
        await store.close();
      }
    });

    it('names an event hidden from searches by an edited column', async () => {
      const { store, key } = await ledger(backend);
      try {
        const r = await row(store, 9);
        await store.db
          .updateTable('audit_events')
          .set({ outcome: 'success', type: 'auth.login_succeeded' })
          .where('seq', '=', 9)
          .execute();
        const report = await verifyLedger(store.db, key);
        assert.equal(report.first_problem?.seq, 9);
        assert.equal(report.first_problem?.id, r.id);
        assert.match(report.first_problem!.problem, /column/);
      } finally {
        await store.close();
      }
    });

    it('names a deleted event', async () => {
      const { store, key } = await ledger(backend);
      try {
        await store.db.deleteFrom('audit_events').where('seq', '=', 7).execute();
        const report = await verifyLedger(store.db, key);
        assert.equal(report.first_problem?.seq, 7);
        assert.match(report.first_problem!.problem, /missing/);
      } finally {
        await store.close();
      }
    });

    it('names the first of two swapped events', async () => {
      const { store, key } = await ledger(backend);
      try {
        const r10 = await row(store, 10);
        await store.db.updateTable('audit_events').set({ seq: -1 }).where('seq', '=', 10).execute();
        await store.db.updateTable('audit_events').set({ seq: 10 }).where('seq', '=', 11).execute();
        await store.db.updateTable('audit_events').set({ seq: 11 }).where('seq', '=', -1).execute();
        const report = await verifyLedger(store.db, key);
        assert.equal(report.first_problem?.seq, 10);
        assert.notEqual(report.first_problem?.id, r10.id, 'the event now stored at 10 is the intruder');
      } finally {
        await store.close();
      }
    });

    it('names the first event of a truncated tail', async () => {
      const { store, key } = await ledger(backend);
      try {
        await store.db.deleteFrom('audit_events').where('seq', '>', 33).execute();
        const report = await verifyLedger(store.db, key);
        assert.equal(report.first_problem?.seq, 34);
        assert.match(report.first_problem!.problem, /missing.*checkpoint covers 40/);
      } finally {
        await store.close();
      }
    });

    it('catches a chain rewritten consistently after an edit, by the signed Merkle root', async () => {
      const { store, key } = await ledger(backend);
      try {
        // The attacker edits event 25 and recomputes every later hash, but cannot re-sign.
        let prev = (await row(store, 24)).hash as string;
        const id21 = (await row(store, 21)).id;
        for (let seq = 25; seq <= 40; seq++) {
          const r = await row(store, seq);
          const body =
            seq === 25 ? (r.body as string).replace('"tools/call"', '"tools/list"') : (r.body as string);
          const hash = chainHash(prev, body);
          await store.db
            .updateTable('audit_events')
            .set({ body, prev_hash: prev, hash })
            .where('seq', '=', seq)
            .execute();
          prev = hash;
        }
        const report = await verifyLedger(store.db, key);
        assert.equal(report.first_problem?.seq, 21, 'first event after the last good checkpoint (20)');
        assert.equal(report.first_problem?.id, id21);
        assert.match(report.first_problem!.problem, /signed checkpoint at size 40/);
      } finally {
        await store.close();
      }
    });

    it('catches a forged checkpoint', async () => {
      const { store, key } = await ledger(backend);
      try {
        const forger = generateKeyPairSync('ed25519');
        const v = noteVerifier('warden.audit', forger.publicKey);
        const note = signNote(
          checkpointText({ origin: checkpointOrigin('node-a'), size: 40, root: Buffer.alloc(32, 7) }),
          v,
          forger.privateKey,
        );
        await store.db.updateTable('audit_checkpoints').set({ note }).where('size', '=', 40).execute();
        const report = await verifyLedger(store.db, key);
        assert.equal(report.first_problem?.seq, 40);
        assert.match(report.first_problem!.problem, /not validly signed/);
        // Changing the root under the genuine signature is caught the same way.
        const genuine = await store.db
          .selectFrom('audit_checkpoints')
          .select('note')
          .where('size', '=', 20)
          .executeTakeFirstOrThrow();
        const lines = (genuine.note as string).split('\n');
        lines[2] = Buffer.alloc(32, 9).toString('base64');
        await store.db
          .updateTable('audit_checkpoints')
          .set({ note: lines.join('\n') })
          .where('size', '=', 20)
          .execute();
        const again = await verifyLedger(store.db, key);
        assert.equal(again.first_problem?.seq, 20);
      } finally {
        await store.close();
      }
    });

    it('verifies a time range from the signed checkpoint before it, reading only the range', async () => {
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      const { store, auditor } = await openLedger(backend, { clock });
      try {
        for (let i = 1; i <= 20; i++) await auditor.record(toolCall(i));
        await auditor.checkpoint();
        clock.advance(86_400_000);
        const day2 = clock.now();
        for (let i = 21; i <= 30; i++) await auditor.record(toolCall(i));
        await auditor.checkpoint();
        clock.advance(86_400_000);
        for (let i = 31; i <= 40; i++) await auditor.record(toolCall(i));
        await auditor.close();
        const key = auditor.verifier!.text;
        const r5 = await row(store, 5);
        await store.db
          .updateTable('audit_events')
          .set({ body: (r5.body as string).replace('"tools/call"', '"tools/cale"') })
          .where('seq', '=', 5)
          .execute();
        assert.equal((await verifyLedger(store.db, key)).first_problem?.seq, 5);
        const range = await verifyLedger(store.db, key, { from: day2, to: day2 });
        assert.equal(range.ok, true, JSON.stringify(range.first_problem));
        assert.deepEqual(
          [range.partitions[0]?.first_seq, range.partitions[0]?.last_seq, range.events],
          [21, 30, 10],
        );
        const r25 = await row(store, 25);
        await store.db
          .updateTable('audit_events')
          .set({ hash: 'f'.repeat(64) })
          .where('seq', '=', 25)
          .execute();
        const bad = await verifyLedger(store.db, key, { from: day2 });
        assert.deepEqual([bad.first_problem?.seq, bad.first_problem?.id], [25, r25.id]);
        // The stored frontier a range starts from is checked against its signed root.
        await store.db
          .updateTable('audit_checkpoints')
          .set({ frontier: JSON.stringify(['ab'.repeat(32), 'cd'.repeat(32)]) })
          .where('size', '=', 20)
          .execute();
        const forged = await verifyLedger(store.db, key, { from: day2, to: day2 });
        assert.equal(forged.first_problem?.seq, 21);
        assert.match(forged.first_problem!.problem, /frontier/);
      } finally {
        await store.close();
      }
    });

    it('catches a changed byte and a dropped line in an exported file', async () => {
      const { store, key, dataDir } = await ledger(backend);
      try {
        const file = join(dataDir, 'ledger.jsonl');
        await exportLedger(store.db, file);
        const lines = readFileSync(file, 'utf8').split('\n');
        const at = lines.findIndex((l) => l.includes('"seq":17,'));
        const id17 = JSON.parse(lines[at]!).event.id;
        const edited = [...lines];
        edited[at] = edited[at]!.replace('find invoices', 'find invoiced');
        writeFileSync(file, edited.join('\n'));
        const r1 = await verifyLedgerFile(file, key);
        assert.deepEqual([r1.first_problem?.seq, r1.first_problem?.id], [17, id17]);
        const dropped = lines.filter((_, i) => i !== at);
        writeFileSync(file, dropped.join('\n'));
        const r2 = await verifyLedgerFile(file, key);
        assert.equal(r2.first_problem?.seq, 17);
        assert.match(r2.first_problem!.problem, /missing/);
        // With the wrong public key nothing verifies.
        writeFileSync(file, lines.join('\n'));
        const other = noteVerifier('warden.audit', generateKeyPairSync('ed25519').publicKey);
        assert.equal((await verifyLedgerFile(file, other)).ok, false);
      } finally {
        await store.close();
      }
    });

    it('proves inclusion of one event against a signed checkpoint, and refuses a doctored proof', async () => {
      const { store, key } = await ledger(backend);
      try {
        for (const seq of [1, 20, 21, 33, 40]) {
          const r = await row(store, seq);
          const proof = await inclusionProof(store.db, r.id as string);
          assert.equal(proof.tree_size, seq <= 20 ? 20 : 40);
          assert.equal(verifyInclusionProof(proof, key), true);
          const doctored = { ...proof, event: { ...proof.event, outcome: 'failure' as const } };
          assert.equal(verifyInclusionProof(doctored, key), false);
          if (proof.inclusion_path.length > 0) {
            const path = [...proof.inclusion_path];
            path[0] = Buffer.alloc(32).toString('base64');
            assert.equal(verifyInclusionProof({ ...proof, inclusion_path: path }, key), false);
          }
        }
        await assert.rejects(inclusionProof(store.db, '00000000-0000-7000-8000-000000000000'), {
          code: 'ERR_AUDIT_EVENT_NOT_FOUND',
        });
      } finally {
        await store.close();
      }
    });
  });
}
