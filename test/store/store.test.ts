import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { getMeta, Store, setMeta, storeMigrations } from '../../src/store/index.ts';
import { BACKENDS, freshDatabase, PG_ADMIN_URL } from '../support/databases.ts';

for (const backend of BACKENDS) {
  describe(`store on ${backend}`, () => {
    it('runs migrations once and reports them', async () => {
      const { url, dataDir } = await freshDatabase(backend);
      const store = await Store.open({ url, dataDir });
      try {
        assert.equal(store.dialect, backend);
        assert.deepEqual(await store.migrate(storeMigrations), ['20261125T000000_store_init']);
        assert.deepEqual(await store.migrate(storeMigrations), []);
      } finally {
        await store.close();
      }
    });

    it('rolls back every write of a failed transaction', async () => {
      const { url, dataDir } = await freshDatabase(backend);
      const store = await Store.open({ url, dataDir });
      try {
        await store.migrate(storeMigrations);
        await assert.rejects(
          store.transaction(async (tx) => {
            await setMeta(tx, 'a', '1');
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.equal(await getMeta(store.db, 'a'), undefined);
      } finally {
        await store.close();
      }
    });

    it('commits unsynced writes visibly, flushes them on request, and syncs every later commit again', async () => {
      const { url, dataDir } = await freshDatabase(backend);
      const store = await Store.open({ url, dataDir });
      const other = await Store.open({ url, dataDir });
      try {
        await store.migrate(storeMigrations);
        const synchronous = async () =>
          Number(Object.values((await sql`PRAGMA synchronous`.execute(store.db)).rows[0] as object)[0]);
        await store.withoutSync((db) => setMeta(db, 'claim', '1'));
        assert.equal(await getMeta(other.db, 'claim'), '1', 'another connection sees the write at once');
        await store.flush();
        await assert.rejects(
          store.withoutSync(async (db) => {
            await setMeta(db, 'claim', '2');
            throw new Error('boom');
          }),
          /boom/,
        );
        if (backend === 'sqlite') assert.equal(await synchronous(), 2, 'synchronous is FULL again');
      } finally {
        await other.close();
        await store.close();
      }
    });

    it('delivers a published change to another store on the same database', async () => {
      const { url, dataDir } = await freshDatabase(backend);
      const a = await Store.open({ url, dataDir });
      await a.migrate(storeMigrations);
      const b = await Store.open({ url, dataDir });
      try {
        const seen: unknown[] = [];
        b.changes.subscribe('agent.status', (c) => seen.push(c.payload));
        const started = Date.now();
        await a.changes.publish('agent.status', { id: 'x', status: 'suspended' });
        while (seen.length === 0 && Date.now() - started < 2000) await sleep(10);
        assert.deepEqual(seen, [{ id: 'x', status: 'suspended' }]);
        assert.ok(Date.now() - started < 1000, 'change arrived within a second');
      } finally {
        await b.close();
        await a.close();
      }
    });
  });
}

describe('store on postgres, connection loss', () => {
  it('survives a connection terminated mid-query: the query fails, the process stays up, the next query works', async () => {
    const { url, dataDir } = await freshDatabase('postgres');
    const store = await Store.open({ url, dataDir });
    const uncaught: Error[] = [];
    const onUncaught = (e: Error) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      const database = new URL(url as string).pathname.slice(1);
      const slow = sql`select pg_sleep(30)`.execute(store.db);
      // Wait until the query runs, then kill its backend as a PostgreSQL restart would.
      for (let i = 0; i < 100; i++) {
        const r = await admin.query(
          "select pid from pg_stat_activity where datname = $1 and query like '%pg_sleep%' and pid <> pg_backend_pid()",
          [database],
        );
        if (r.rowCount) {
          await admin.query('select pg_terminate_backend($1)', [r.rows[0].pid]);
          break;
        }
        await sleep(20);
      }
      await assert.rejects(slow);
      await sleep(100);
      assert.deepEqual(uncaught, []);
      const ok = await sql<{ one: number }>`select 1 as one`.execute(store.db);
      assert.equal(ok.rows[0]?.one, 1);
    } finally {
      process.off('uncaughtException', onUncaught);
      await admin.end();
      await store.close();
    }
  });

  it('keeps the change feed after its LISTEN connection is killed, and closes cleanly while it reconnects', async () => {
    const { url, dataDir } = await freshDatabase('postgres');
    const store = await Store.open({ url, dataDir });
    await store.migrate(storeMigrations);
    const uncaught: Error[] = [];
    const onUncaught = (e: Error) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      const database = new URL(url as string).pathname.slice(1);
      const seen: unknown[] = [];
      store.changes.subscribe('test.channel', (c) => seen.push(c.payload));
      await admin.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [database],
      );
      await sleep(200);
      await store.changes.publish('test.channel', { n: 1 });
      for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(50);
      assert.deepEqual(seen, [{ n: 1 }]);
      // Kill it again and close at once, while the feed is between connections.
      await admin.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [database],
      );
      await store.close();
      await sleep(1500);
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', onUncaught);
      await admin.end();
    }
  });
});
