import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Auditor, auditMigrations, readEvents, verifyLedger } from '../../src/audit/index.ts';
import { createLogger, generateMasterKey, Keyring, ManualClock, systemClock } from '../../src/core/index.ts';
import { Exporter, exportMigrations } from '../../src/export/index.ts';
import { Store, storeMigrations } from '../../src/store/index.ts';
import { BACKENDS, freshDatabase, tempDir } from '../support/databases.ts';
import { toolCall, waitFor } from './support/ledger.ts';

const DAY = 86_400_000;
const ADMIN = { type: 'user' as const, id: 'admin-1', role: 'admin' };

for (const backend of BACKENDS) {
  describe(`audit retention held by the exporters (${backend})`, () => {
    it('never removes an event an enabled sink has not confirmed', async () => {
      const { url, dataDir } = await freshDatabase(backend);
      const store = await Store.open({ url, dataDir });
      await store.migrate({ ...storeMigrations, ...auditMigrations, ...exportMigrations });
      const keyring = new Keyring(generateMasterKey().key);
      const logger = createLogger({ level: 'silent' });
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      let exporter: Exporter | undefined;
      const auditor = await Auditor.open({
        store,
        partition: 'node-a',
        clock,
        logger,
        failMode: 'closed',
        keyring,
        checkpointIntervalSeconds: 0,
        retentionHold: (p) => exporter?.confirmedThrough(p) ?? Promise.resolve(0),
      });
      const key = auditor.verifier?.text as string;
      try {
        for (let i = 0; i < 10; i++) await auditor.record(toolCall(i));
        clock.advance(40 * DAY);
        for (let i = 10; i < 15; i++) await auditor.record(toolCall(i));

        // Before the exporter is known, the hold keeps everything.
        const early = await auditor.applyRetention({ maxAgeMs: 30 * DAY });
        assert.deepEqual([early.removed, early.held_at], [0, 0]);

        exporter = await Exporter.create(
          { store, keyring, auditor, clock: systemClock, logger },
          { pollIntervalMs: 20 },
        );
        // A SIEM that is down: nothing it has not confirmed may go.
        await exporter.createSink(
          { name: 'down', type: 'webhook', url: 'http://127.0.0.1:9/in', hmacKey: 'h'.repeat(40) },
          ADMIN,
        );
        const path = join(tempDir(), 'audit.jsonl');
        await exporter.createSink({ name: 'file', type: 'file', path, batchSize: 4, format: 'json' }, ADMIN);
        await exporter.start();
        await waitFor(
          async () => (await exporter!.status('file'))[0]?.lag.events === 0,
          15_000,
          'file export',
        );
        const held = await auditor.applyRetention({ maxAgeMs: 30 * DAY });
        assert.deepEqual([held.removed, held.held_at], [0, 0], 'the unreachable sink holds retention');
        assert.equal((await readEvents(store.db, 'node-a', 0, 100))[0]?.seq, 1);

        // Once the only sink left has everything, the old events go, and only those.
        await exporter.deleteSink('down', ADMIN);
        await waitFor(
          async () => (await exporter!.status('file'))[0]?.lag.events === 0,
          15_000,
          'file export',
        );
        const applied = await auditor.applyRetention({ maxAgeMs: 30 * DAY });
        assert.equal(applied.removed, 10);
        assert.equal(applied.held_at, undefined);
        await exporter.stop();
        const exported = readFileSync(path, 'utf8').split('\n').filter(Boolean);
        assert.ok(exported.length >= 15, 'every removed event reached the SIEM first');
        assert.deepEqual(
          exported.slice(0, 10).map((l) => JSON.parse(l).seq),
          [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        );
        await auditor.close();
        const report = await verifyLedger(store.db, key);
        assert.equal(report.ok, true, JSON.stringify(report.first_problem));
      } finally {
        await exporter?.stop();
        await auditor.close();
        await store.close();
      }
    });
  });
}
