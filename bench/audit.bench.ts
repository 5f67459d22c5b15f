// Audit ledger benchmark: durable appends/s through the group-commit Auditor on SQLite and
// PostgreSQL at 1, 16 and 256 concurrent writers, next to a raw batched INSERT of the same rows
// (same rows per transaction, no hashing, no queue) measured in the same run; and verification
// rate (events/s) of the live database and of an exported file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  type AuditEventInput,
  Auditor,
  auditMigrations,
  exportLedger,
  verifyLedger,
  verifyLedgerFile,
} from '../src/audit/index.ts';
import { createLogger, generateMasterKey, Keyring, systemClock } from '../src/core/index.ts';
import { Store, storeMigrations } from '../src/store/index.ts';

const SECONDS = Number(process.env.WARDEN_BENCH_SECONDS ?? 2);
const PG_ADMIN_URL = process.env.WARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function event(i: number): AuditEventInput {
  return {
    type: 'tool.call',
    actor: { type: 'agent', id: `agent-${i % 50}`, on_behalf_of: { type: 'user', id: `user-${i % 20}` } },
    action: 'tools/call',
    resource: { type: 'tool', id: `tool-${i % 10}`, name: 'crm.search' },
    intent: { text: 'find the open invoices of ACME', task_id: `task-${i % 100}` },
    decision: { effect: 'permit', policies: ['policy-7'] },
    outcome: 'success',
    request: { source_ip: '10.0.0.7', user_agent: 'warden-sdk/1.0' },
    latency_ms: 12,
    details: { tool: 'crm.search', args_digest: 'f3a1c9' },
  };
}

async function withDatabase<T>(
  backend: 'sqlite' | 'postgres',
  fn: (open: () => Promise<Store>) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  let url: string | undefined;
  let name: string | undefined;
  if (backend === 'postgres') {
    name = `warden_bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(PG_ADMIN_URL);
    u.pathname = `/${name}`;
    url = u.toString();
  }
  try {
    return await fn(async () => {
      const store = await Store.open({ url, dataDir: dir });
      await store.migrate({ ...storeMigrations, ...auditMigrations });
      return store;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (name) {
      const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  }
}

/** Appends from `writers` concurrent callers for SECONDS; returns events/s and rows for the baseline. */
async function measureAuditor(auditor: Auditor, writers: number): Promise<{ rate: number; count: number }> {
  let count = 0;
  const until = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = w; performance.now() < until; i += writers) {
        await auditor.record(event(i));
        count++;
      }
    }),
  );
  return { rate: count / ((performance.now() - start) / 1000), count };
}

/** The same rows, inserted `batch` per transaction with no chaining, queue or redaction. */
async function measureRaw(store: Store, batch: number, template: Record<string, unknown>[]): Promise<number> {
  let count = 0;
  let seq = 0;
  const until = performance.now() + SECONDS * 1000;
  const start = performance.now();
  while (performance.now() < until) {
    const rows = Array.from({ length: batch }, (_, j) => {
      const t = template[(seq + j) % template.length] as Record<string, unknown>;
      return { ...t, partition: 'raw', seq: seq + j + 1, id: `raw-${seq + j + 1}` };
    });
    await store.transaction(async (tx) => {
      for (let i = 0; i < rows.length; i += 500) {
        await tx
          .insertInto('audit_events')
          .values(rows.slice(i, i + 500))
          .execute();
      }
    });
    seq += batch;
    count += batch;
  }
  return count / ((performance.now() - start) / 1000);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(9);

export async function run(): Promise<void> {
  console.log(`audit ledger — durable appends/s (${SECONDS} s each), raw = batched INSERT of the same rows`);
  for (const backend of ['sqlite', 'postgres'] as const) {
    await withDatabase(backend, async (open) => {
      const store = await open();
      try {
        const keyring = new Keyring(generateMasterKey().key);
        const logger = createLogger({ level: 'silent' });
        const auditor = await Auditor.open({
          store,
          partition: 'bench',
          clock: systemClock,
          logger,
          failMode: 'closed',
          keyring,
          checkpointIntervalSeconds: 1,
        });
        for (const writers of [1, 16, 256]) {
          const a = await measureAuditor(auditor, writers);
          const template = await store.db
            .selectFrom('audit_events')
            .selectAll()
            .where('partition', '=', 'bench')
            .orderBy('seq', 'desc')
            .limit(1000)
            .execute();
          await store.db.deleteFrom('audit_events').where('partition', '=', 'raw').execute();
          const raw = await measureRaw(store, writers, template);
          const ratio = a.rate / raw;
          console.log(
            `  ${backend.padEnd(8)} writers=${String(writers).padStart(3)}  auditor ${fmt(a.rate)}/s  raw ${fmt(raw)}/s  ratio ${ratio.toFixed(2)} (target ≥ 0.5)`,
          );
        }
        await store.db.deleteFrom('audit_events').where('partition', '=', 'raw').execute();
        await auditor.close();
        const key = auditor.verifier!.text;
        // Wall-clock rates, and events per CPU-second of this process (fairer on a shared machine).
        let t = performance.now();
        let cpu = process.cpuUsage();
        const live = await verifyLedger(store.db, key);
        const liveRate = live.events / ((performance.now() - t) / 1000);
        let used = process.cpuUsage(cpu);
        const liveCpuRate = live.events / ((used.user + used.system) / 1e6);
        // Baseline: just reading the same rows page by page and parsing their bodies.
        t = performance.now();
        let read = 0;
        for (let after = -1; ; ) {
          const rows = await store.db
            .selectFrom('audit_events')
            .selectAll()
            .where('partition', '=', 'bench')
            .where('seq', '>', after)
            .orderBy('seq')
            .limit(5000)
            .execute();
          for (const r of rows) JSON.parse(r.body as string);
          read += rows.length;
          if (rows.length < 5000) break;
          after = Number((rows.at(-1) as { seq: number }).seq);
        }
        const readRate = read / ((performance.now() - t) / 1000);
        const file = join(tmpdir(), `warden-bench-${process.pid}.jsonl`);
        await exportLedger(store.db, file);
        t = performance.now();
        cpu = process.cpuUsage();
        const offline = await verifyLedgerFile(file, key);
        const fileRate = offline.events / ((performance.now() - t) / 1000);
        used = process.cpuUsage(cpu);
        const fileCpuRate = offline.events / ((used.user + used.system) / 1e6);
        rmSync(file, { force: true });
        console.log(
          `  ${backend.padEnd(8)} verify ${live.events} events: database ${fmt(liveRate)}/s (${fmt(liveCpuRate)}/CPU-s), file ${fmt(fileRate)}/s (${fmt(fileCpuRate)}/CPU-s) (target ≥ 200,000) ok=${live.ok && offline.ok}`,
        );
        console.log(
          `  ${backend.padEnd(8)} read+parse only ${fmt(readRate)}/s  verify/read ratio ${(liveRate / readRate).toFixed(2)}`,
        );
      } finally {
        await store.close();
      }
    });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
