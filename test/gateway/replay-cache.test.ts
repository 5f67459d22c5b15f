import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { systemClock } from '../../src/core/index.ts';
import { gatewayMigrations, StoreReplayCache } from '../../src/gateway/index.ts';
import { Store, storeMigrations } from '../../src/store/index.ts';
import { BACKENDS, freshDatabase } from '../support/databases.ts';

for (const backend of BACKENDS) {
  describe(`DPoP replay cache on ${backend}`, () => {
    it('grants each proof key once, across concurrent claims and across two stores on one database', async () => {
      const db = await freshDatabase(backend);
      const a = await Store.open({ url: db.url, dataDir: db.dataDir });
      const b = await Store.open({ url: db.url, dataDir: db.dataDir });
      after(async () => {
        await a.close();
        await b.close();
      });
      await a.migrate({ ...storeMigrations, ...gatewayMigrations });
      const ca = new StoreReplayCache(a, systemClock);
      const cb = new StoreReplayCache(b, systemClock);
      const exp = Date.now() + 60_000;
      const results = await Promise.all([
        ca.claim('k1', exp),
        ca.claim('k1', exp),
        cb.claim('k1', exp),
        ca.claim('k2', exp),
        cb.claim('k3', exp),
      ]);
      assert.equal(results.slice(0, 3).filter(Boolean).length, 1, 'k1 is granted exactly once');
      assert.deepEqual(results.slice(3), [true, true]);
      assert.equal(await cb.claim('k2', exp), false, 'the other node sees the first claim');
    });
  });
}
