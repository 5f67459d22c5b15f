import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { auditMigrations, storedLedgerPublicKey, verifyLedger } from '../../src/audit/index.ts';
import { generateMasterKey } from '../../src/core/index.ts';
import { Store, storeMigrations } from '../../src/store/index.ts';
import { BACKENDS, freshDatabase } from '../support/databases.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/append-under-load.ts', import.meta.url));

/** Runs the fixture, kills it with SIGKILL `afterMs` after it is ready; returns acknowledged ids. */
async function appendThenKill(args: string[], afterMs: number): Promise<string[]> {
  const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const started = Date.now();
  while (!out.startsWith('ready\n')) {
    if (child.exitCode !== null || Date.now() - started > 20_000)
      throw new Error(`fixture did not start: ${err}`);
    await sleep(10);
  }
  await sleep(afterMs);
  child.kill('SIGKILL');
  await exited;
  // Only complete lines: a line cut by the kill was never fully acknowledged to the reader.
  const lines = out.split('\n');
  lines.pop();
  return lines.slice(1).filter((l) => l !== 'undefined');
}

for (const backend of BACKENDS) {
  describe(`audit crash safety on ${backend}`, () => {
    it('keeps every acknowledged event and a valid chain across repeated SIGKILLs under load', async () => {
      const { url, dataDir } = await freshDatabase(backend);
      const masterKey = generateMasterKey().text;
      const acked = new Set<string>();
      // Five rounds on SQLite (the embedded default); three on PostgreSQL keep the suite fast.
      for (let round = 0; round < (backend === 'sqlite' ? 5 : 3); round++) {
        const ids = await appendThenKill(
          [url ?? '', dataDir, masterKey],
          100 + Math.floor(Math.random() * 400),
        );
        for (const id of ids) acked.add(id);
        const store = await Store.open({ url, dataDir });
        try {
          await store.migrate({ ...storeMigrations, ...auditMigrations });
          const stored = await store.db.selectFrom('audit_events').select('id').execute();
          const storedIds = new Set(stored.map((r) => r.id as string));
          assert.equal(storedIds.size, stored.length, 'no event stored twice');
          for (const id of acked)
            assert.ok(storedIds.has(id), `acknowledged event ${id} survived round ${round}`);
          const report = await verifyLedger(store.db, await storedLedgerPublicKey(store.db));
          assert.equal(report.ok, true, JSON.stringify(report.first_problem));
          assert.ok(report.events >= acked.size);
        } finally {
          await store.close();
        }
      }
      assert.ok(acked.size > 100, `the child acknowledged events under load (${acked.size})`);
    });
  });
}
