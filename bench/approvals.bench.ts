// Issue 8 benchmarks: the cost of a one-time grant (consume) and of a full approval cycle
// (request → approve → consume), against one audited write measured in the same run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { Approvals, type GatedCall } from '../src/approvals/index.ts';
import { Auditor } from '../src/audit/index.ts';
import { createLogger, generateMasterKey, Keyring, systemClock } from '../src/core/index.ts';
import { allMigrations } from '../src/http/index.ts';
import {
  agentCreateSchema,
  type Caller,
  Identity,
  providerCreateSchema,
  templateCreateSchema,
  userCreateSchema,
} from '../src/identity/index.ts';
import { Store } from '../src/store/index.ts';
import { fmt, load, percentile } from './stats.ts';

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-approvals-'));
  const store = await Store.open({ dataDir: dir });
  try {
    await store.migrate(allMigrations);
    const logger = createLogger({
      level: 'silent',
      destination: new Writable({ write: (_c, _e, cb) => cb() }),
    });
    const auditor = await Auditor.open({
      store,
      partition: 'bench',
      clock: systemClock,
      logger,
      failMode: 'closed',
    });
    const identity = new Identity({ store, auditor, clock: systemClock });
    const approvals = new Approvals({
      store,
      auditor,
      clock: systemClock,
      logger,
      keyring: new Keyring(generateMasterKey().key),
      identity,
      metrics: new Registry(),
      publicUrl: 'https://warden.example',
      settings: { rateLimit: { max: 10_000, windowSeconds: 1 } },
    });
    const admin = await identity.users.create(
      userCreateSchema.parse({ username: 'root', roles: ['admin', 'approver'] }),
      undefined,
    );
    const caller: Caller = { userId: admin.id, username: 'root', role: 'admin' };
    const { generateKeyPair, exportJWK } = await import('jose');
    const { publicKey } = await generateKeyPair('ES256');
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
    await identity.providers.create(
      providerCreateSchema.parse({ name: 'p', contact: 'c@p.test', jwks }),
      caller,
    );
    await identity.templates.create(
      templateCreateSchema.parse({ name: 't', spec: { description: 'bench', allowed_tools: ['pay'] } }),
      caller,
    );
    const agent = await identity.agents.create(
      agentCreateSchema.parse({ name: 'a', provider: 'p', template: 't', purpose: 'bench', jwks }),
      caller,
    );
    const approver = { type: 'user' as const, id: admin.id, name: 'root', roles: ['approver' as const] };
    const call = (i: number): GatedCall => ({
      agentId: agent.id,
      tool: 'pay',
      arguments: { amount: i, to: 'x' },
    });
    const input = (i: number) => ({ agent_id: agent.id, tool: 'pay', arguments: call(i).arguments });

    // Baseline: one audited event (one SQLite commit).
    const base = await load(
      (i) =>
        auditor.record({
          type: 'tool.call',
          actor: { type: 'system', id: 'b' },
          action: `x${i}`,
          outcome: 'success',
        }),
      { concurrency: 1, ms: 1500 },
    );
    // Grants ready to consume.
    const ready: string[] = [];
    for (let i = 0; i < 400; i++) {
      const { request } = await approvals.request(input(i));
      await approvals.decide(request.id, 'approve', approver);
      ready.push(request.id);
    }
    const consume = await load((i) => approvals.consume(ready[i] as string, call(i)), {
      concurrency: 1,
      ms: 1500,
      max: ready.length,
    });
    const cycle = await load(
      async (i) => {
        const { request } = await approvals.request(input(100_000 + i));
        await approvals.decide(request.id, 'approve', approver);
        await approvals.consume(request.id, call(100_000 + i));
      },
      { concurrency: 1, ms: 1500 },
    );
    const line = (name: string, r: { perSecond: number; latencies: number[] }) =>
      `${name.padEnd(46)} ${fmt(r.perSecond, 0).padStart(7)} ops/s  p50 ${fmt(percentile(r.latencies, 50), 2)} ms  p99 ${fmt(percentile(r.latencies, 99), 2)} ms  ×${fmt(r.perSecond / base.perSecond, 2)} of baseline\n`;
    process.stdout.write('SQLite, one writer, sequential:\n');
    process.stdout.write(line('baseline: one audited event', base));
    process.stdout.write(line('consume a grant (conditional UPDATE + event)', consume));
    process.stdout.write(line('full cycle request → approve → consume', cycle));
    await approvals.close();
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
