import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readEvents } from '../../src/audit/index.ts';
import { Exporter } from '../../src/export/index.ts';
import { BACKENDS, tempDir } from '../support/databases.ts';
import { openLedger, toolCall, waitFor } from './support/ledger.ts';

const ADMIN = { type: 'user' as const, id: 'admin-1', role: 'admin' };

for (const backend of BACKENDS) {
  describe(`rotating JSONL file sink (${backend})`, () => {
    it('rotates by size, keeps every event once and in order across the files, and resumes after restart', async () => {
      const ledger = await openLedger(backend);
      const path = join(tempDir(), 'audit', 'warden.jsonl');
      for (let i = 0; i < 40; i++) await ledger.auditor.record(toolCall(i));
      let exporter = await Exporter.create(ledger, { pollIntervalMs: 20 });
      await exporter.createSink(
        { name: 'file', type: 'file', path, maxBytes: 8192, maxFiles: 50, batchSize: 3, format: 'json' },
        ADMIN,
      );
      await exporter.start();
      await waitFor(async () => (await exporter.status('file'))[0]?.lag.events === 0, 15_000, 'file export');
      await exporter.stop();
      for (let i = 40; i < 60; i++) await ledger.auditor.record(toolCall(i));
      exporter = await Exporter.create(ledger, { pollIntervalMs: 20 });
      await exporter.start();
      await waitFor(
        async () => (await exporter.status('file'))[0]?.lag.events === 0,
        15_000,
        'resumed export',
      );
      await exporter.stop();

      const files: string[] = [];
      for (let i = 50; i >= 1; i--) if (existsSync(`${path}.${i}`)) files.push(`${path}.${i}`);
      files.push(path);
      assert.ok(files.length > 3, `rotated (${files.length} files)`);
      for (const f of files) {
        assert.ok(statSync(f).size <= 8192, `${f} within maxBytes`);
        assert.equal(statSync(f).mode & 0o077, 0, 'files are private to the owner');
      }
      const lines = files.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean));
      const events = await readEvents(ledger.store.db, 'node-a', 0, 1000);
      assert.deepEqual(
        lines.map((l) => JSON.parse(l).id),
        events.map((e) => e.id),
      );
      assert.deepEqual(JSON.parse(lines[0] as string), events[0]);
    });

    it('keeps at most maxFiles rotated files', async () => {
      const ledger = await openLedger(backend);
      const path = join(tempDir(), 'w.jsonl');
      for (let i = 0; i < 30; i++) await ledger.auditor.record(toolCall(i));
      const exporter = await Exporter.create(ledger, { pollIntervalMs: 20 });
      await exporter.createSink(
        { name: 'f', type: 'file', path, maxBytes: 2048, maxFiles: 2, batchSize: 1 },
        ADMIN,
      );
      await exporter.start();
      await waitFor(async () => (await exporter.status('f'))[0]?.lag.events === 0, 15_000, 'file export');
      await exporter.stop();
      assert.ok(existsSync(`${path}.1`) && existsSync(`${path}.2`));
      assert.ok(!existsSync(`${path}.3`));
    });
  });
}
