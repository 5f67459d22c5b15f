// Issue 3 export benchmarks: export rate to a real rsyslog over TCP next to raw framed writes of
// the same messages to the same socket (baseline, same run), and lag at a steady 2,000 events/s.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AuditEvent,
  type AuditEventInput,
  auditMigrations,
  canonicalJson,
  chainHash,
  GENESIS_HASH,
  listPartitions,
} from '../src/audit/index.ts';
import { createLogger, generateMasterKey, Keyring, systemClock, uuidv7 } from '../src/core/index.ts';
import {
  Exporter,
  exportMigrations,
  formatEvent,
  octetFrameText,
  SyslogFormatter,
} from '../src/export/index.ts';
import { Store, storeMigrations } from '../src/store/index.ts';
import { Rsyslog } from '../test/export/support/rsyslog.ts';
import { fmt, percentile } from './stats.ts';

const EVENTS = 20_000;
const STEADY_RATE = 2_000;
const STEADY_MS = 5_000;

function input(i: number): AuditEventInput {
  return {
    type: 'tool.call',
    actor: { type: 'agent', id: `agent-${i % 50}`, on_behalf_of: { type: 'user', id: `user-${i % 7}` } },
    action: 'tools/call',
    resource: { type: 'mcp_tool', id: 'github.get_issue', name: 'github.get_issue' },
    intent: { text: `triage issue ${i}`, task_id: `task-${i % 100}` },
    decision: { effect: 'permit', policies: ['p-1'] },
    outcome: 'success',
    request: { source_ip: '10.0.0.7', request_id: `req-${i}` },
    latency_ms: 4,
  };
}

/**
 * Appends hash-chained events in batched transactions (the ledger's own row layout), so the
 * benchmark measures export rather than the ledger's commit rate.
 */
class Appender {
  #seq = 0;
  #hash = GENESIS_HASH;
  readonly store: Store;
  readonly partition: string;
  constructor(store: Store, partition: string) {
    this.store = store;
    this.partition = partition;
  }
  async append(count: number, from: number): Promise<void> {
    const rows: Record<string, unknown>[] = [];
    for (let i = 0; i < count; i++) {
      const seq = ++this.#seq;
      const body: Omit<AuditEvent, 'hash' | 'prev_hash'> = {
        ...input(from + i),
        request: { ...input(from + i).request, node: this.partition },
        id: uuidv7(systemClock),
        time: Date.now(),
        partition: this.partition,
        seq,
      };
      const hash = chainHash(this.#hash, body);
      rows.push({
        partition: this.partition,
        seq,
        id: body.id,
        time: body.time,
        type: body.type,
        actor_type: body.actor.type,
        actor_id: body.actor.id,
        user_id: body.actor.on_behalf_of?.id ?? null,
        agent_id: body.actor.id,
        outcome: body.outcome,
        body: canonicalJson(body),
        prev_hash: this.#hash,
        hash,
      });
      this.#hash = hash;
    }
    await this.store.transaction(async (tx) => {
      for (let i = 0; i < rows.length; i += 200)
        await tx
          .insertInto('audit_events')
          .values(rows.slice(i, i + 200))
          .execute();
    });
  }
}

function lines(file: string): number {
  try {
    const text = readFileSync(file, 'utf8');
    let n = 0;
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
    return n;
  } catch {
    return 0;
  }
}

async function waitLines(rsyslog: Rsyslog, n: number): Promise<void> {
  while (lines(rsyslog.out) < n) await sleep(5);
}

/** Baseline: the same RFC 5424 messages, pre-rendered and framed, written raw to the same socket. */
async function rawWrites(rsyslog: Rsyslog, frames: Buffer[], already: number): Promise<number> {
  const t0 = performance.now();
  const socket = connect({ host: '127.0.0.1', port: rsyslog.port });
  await new Promise((r) => socket.once('connect', r));
  for (let i = 0; i < frames.length; i += 1000) {
    const chunk = Buffer.concat(frames.slice(i, i + 1000));
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
  }
  await new Promise<void>((r) => socket.end(r));
  await waitLines(rsyslog, already + frames.length);
  return frames.length / ((performance.now() - t0) / 1000);
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-export-'));
  const logger = createLogger({ level: 'silent' });
  const store = await Store.open({ url: undefined, dataDir: dir });
  const rsyslog = await Rsyslog.start(mkdtempSync(join(dir, 'rsyslog-')), undefined, { parsedFields: false });
  try {
    await store.migrate({ ...storeMigrations, ...auditMigrations, ...exportMigrations });
    const appender = new Appender(store, 'bench-a');
    for (let i = 0; i < EVENTS; i += 1000) await appender.append(1000, i);
    const auditor = await (await import('../src/audit/index.ts')).Auditor.open({
      store,
      partition: 'bench-admin',
      clock: systemClock,
      logger,
      failMode: 'closed',
    });
    const deps = {
      store,
      keyring: new Keyring(generateMasterKey().key),
      auditor,
      clock: systemClock,
      logger,
    };

    // 1. Export rate: the exporter drains EVENTS ledger events into rsyslog.
    const exporter = await Exporter.create(deps, { pollIntervalMs: 50 });
    const t0 = performance.now();
    await exporter.createSink(
      { name: 'bench', type: 'syslog', host: '127.0.0.1', port: rsyslog.port, batchSize: 1000 },
      { type: 'system', id: 'bench' },
    );
    await exporter.start();
    await waitLines(rsyslog, EVENTS);
    const exportSeconds = (performance.now() - t0) / 1000;
    const exportRate = EVENTS / exportSeconds;
    await exporter.stop();
    const afterExport = lines(rsyslog.out);

    // Baseline in the same run: raw framed writes of the same kind of messages, pre-rendered.
    const { readEvents } = await import('../src/audit/index.ts');
    const events = await readEvents(store.db, 'bench-a', 0, EVENTS);
    const formatter = new SyslogFormatter({
      facility: 13,
      hostname: 'bench',
      appName: 'warden',
      procId: '1',
      enterpriseNumber: 32473,
    });
    const frames = events.map((e) =>
      Buffer.from(octetFrameText(formatter.format(e, formatEvent(e, 'ocsf').text))),
    );
    const baseline = await rawWrites(rsyslog, frames, afterExport);
    // Rendering alone (OCSF + RFC 5424 + framing), no I/O: where the exporter's CPU goes.
    const f0 = performance.now();
    for (const e of events) Buffer.from(octetFrameText(formatter.format(e, formatEvent(e, 'ocsf').text)));
    const renderRate = events.length / ((performance.now() - f0) / 1000);

    process.stdout.write(
      `export to rsyslog/TCP (OCSF, ${fmt(EVENTS, 0)} events): ${fmt(exportRate, 0)} events/s (target ≥ 10,000)\n` +
        `  baseline raw framed writes, same socket: ${fmt(baseline, 0)} events/s; ratio ${fmt(exportRate / baseline, 2)}\n` +
        `  rendering only (OCSF + RFC 5424 + frame): ${fmt(renderRate, 0)} events/s\n`,
    );

    // 2. Lag at a steady 2,000 events/s (default poll 200 ms, TCP confirm window 200 ms).
    const steady = new Appender(store, 'bench-steady');
    const exporter2 = await Exporter.create(deps);
    await exporter2.start();
    const samples: number[] = [];
    const eventLag: number[] = [];
    let appended = 0;
    const start = performance.now();
    const sampler = (async () => {
      while (performance.now() - start < STEADY_MS) {
        await sleep(100);
        const [s] = await exporter2.status('bench');
        if (s) {
          samples.push(s.lag.seconds);
          eventLag.push(s.lag.events);
        }
      }
    })();
    while (performance.now() - start < STEADY_MS) {
      const due = Math.floor(((performance.now() - start) / 1000) * STEADY_RATE) - appended;
      if (due > 0) {
        await steady.append(due, appended);
        appended += due;
      }
      await sleep(10);
    }
    await sampler;
    const achieved = appended / ((performance.now() - start) / 1000);
    await exporter2.stop();
    const heads = await listPartitions(store.db);
    process.stdout.write(
      `lag at a steady ${fmt(achieved, 0)} events/s for ${STEADY_MS / 1000} s (target ≤ 1 s): ` +
        `p50 ${fmt(percentile(samples, 50), 2)} s, p99 ${fmt(percentile(samples, 99), 2)} s, max ${fmt(Math.max(...samples), 2)} s; ` +
        `events behind p50 ${fmt(percentile(eventLag, 50), 0)}, max ${fmt(Math.max(...eventLag), 0)} (${heads.length} partitions)\n`,
    );
  } finally {
    await rsyslog.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await run();
