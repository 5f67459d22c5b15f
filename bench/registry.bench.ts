// Issue 2 benchmarks: cold start to ready, idle memory, agent create/list throughput.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { fmt, load, percentile } from './stats.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'warden.js');

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  return port;
}

/** Spawns a fresh `warden serve` and measures wall time until /readyz answers 200. */
async function coldStart(dataDir: string, port: number) {
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...process.env, WARDEN_DATA_DIR: dataDir, WARDEN_PORT: String(port), WARDEN_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(err);
    await sleep(5);
  }
  return { child, ms: performance.now() - t0, banner: () => err };
}

/** Baseline: the same runtime starting and exiting with no work. */
async function bareNodeStart(): Promise<number> {
  const t0 = performance.now();
  const c = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(c, 'exit');
  return performance.now() - t0;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  try {
    const baseline = Math.min(await bareNodeStart(), await bareNodeStart(), await bareNodeStart());
    const first = await coldStart(join(dir, 'a'), await freePort());
    const token = /API token: (wdn_\S+)/.exec(first.banner())?.[1] as string;
    first.child.kill('SIGTERM');
    await once(first.child, 'exit');
    const port = await freePort();
    const warm = await coldStart(join(dir, 'a'), port);
    console.log(
      `cold start to ready: first start ${fmt(first.ms, 0)} ms (creates keys, db, admin), restart ${fmt(warm.ms, 0)} ms  (target ≤ 1000 ms)`,
    );
    console.log(
      `  baseline: bare node start ${fmt(baseline, 0)} ms; restart = ${fmt(warm.ms / baseline, 1)}× bare node`,
    );
    await sleep(2000);
    console.log(`idle RSS after start: ${fmt(rssMb(warm.child.pid as number), 1)} MB  (target ≤ 150 MB)`);

    const url = `http://127.0.0.1:${port}`;
    const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const post = (path: string, body: unknown) =>
      fetch(`${url}${path}`, { method: 'POST', headers: h, body: JSON.stringify(body) });
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(publicKey);
    const jwks = { keys: [{ ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'ES256' }] };
    await post('/v1/providers', { name: 'bench', contact: 'c', jwks });
    await post('/v1/templates', { name: 'bench', spec: { description: 'bench' } });

    const health = await load(() => fetch(`${url}/healthz`).then((r) => r.arrayBuffer()), {
      concurrency: 16,
      ms: 2000,
    });
    const create = await load(
      (i) =>
        post('/v1/agents', {
          name: `agent-${i}`,
          provider: 'bench',
          template: 'bench',
          purpose: 'bench',
          jwks,
        }).then(async (r) => {
          if (r.status !== 201) throw new Error(await r.text());
        }),
      { concurrency: 16, ms: 3000 },
    );
    const list = await load(
      () => fetch(`${url}/v1/agents?limit=50`, { headers: h }).then((r) => r.arrayBuffer()),
      { concurrency: 16, ms: 2000 },
    );
    console.log(`baseline GET /healthz (16 conc.): ${fmt(health.perSecond, 0)} req/s`);
    console.log(
      `agent create (16 conc.): ${fmt(create.perSecond, 0)}/s, p50 ${fmt(percentile(create.latencies, 50), 2)} ms, p99 ${fmt(percentile(create.latencies, 99), 2)} ms  (${fmt(create.perSecond / health.perSecond, 3)}× baseline)`,
    );
    console.log(
      `agent list, 50 per page (16 conc.): ${fmt(list.perSecond, 0)}/s, p50 ${fmt(percentile(list.latencies, 50), 2)} ms, p99 ${fmt(percentile(list.latencies, 99), 2)} ms  (${fmt(list.perSecond / health.perSecond, 3)}× baseline)`,
    );
    console.log(`RSS after load: ${fmt(rssMb(warm.child.pid as number), 1)} MB`);
    warm.child.kill('SIGTERM');
    await once(warm.child, 'exit');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
