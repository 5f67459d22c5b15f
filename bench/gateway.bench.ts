// Issue 7 benchmark: the official MCP SDK client calling the example upstream directly, and the
// same upstream through the gateway (DPoP-bound token, policy, vault-less upstream, audit), from 1
// and 16 sessions. Three processes: upstream, gateway node, and this load generator.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { accessTokenHash } from '../src/gateway/index.ts';
import { fmt, load, percentile } from './stats.ts';

const ROOT = join(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  return port;
}

/** Spawns a script and resolves with its first stdout line. */
async function start(
  args: string[],
  env: Record<string, string>,
): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return { child, line };
}

export async function run(): Promise<void> {
  const issuer = await generateKeyPair('ES256');
  const issuerJwk = await exportJWK(issuer.publicKey);
  const kid = await calculateJwkThumbprint(issuerJwk);
  const agent = await generateKeyPair('ES256', { extractable: true });
  const agentJwk = await exportJWK(agent.publicKey);
  const jkt = await calculateJwkThumbprint(agentJwk);

  const upPort = await freePort();
  const upstream = await start([join(ROOT, 'examples', 'tickets-server.ts'), '--port', String(upPort)], {});
  const upstreamUrl = `http://127.0.0.1:${upPort}/mcp`;
  const gwPort = await freePort();
  const gw = await start(
    [
      ...(process.env.BENCH_GW_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_GW_PROFILE] : []),
      join(ROOT, 'bench', 'gateway-node.ts'),
    ],
    {
      BENCH_PORT: String(gwPort),
      BENCH_UPSTREAM_URL: upstreamUrl,
      BENCH_ISSUER_JWKS: JSON.stringify({ keys: [{ ...issuerJwk, kid, alg: 'ES256', use: 'sig' }] }),
      BENCH_AGENT_JWKS: JSON.stringify({ keys: [{ ...agentJwk, kid: jkt, alg: 'ES256', use: 'sig' }] }),
    },
  );
  const { url: gwUrl, agentId } = JSON.parse(gw.line) as { url: string; agentId: string };
  const mcpUrl = `${gwUrl}/mcp`;
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ client_id: agentId, scope: 'tickets:read', cnf: { jkt } })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
    .setIssuer(gwUrl)
    .setAudience(mcpUrl)
    .setSubject(agentId)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(issuer.privateKey);
  const ath = accessTokenHash(token);
  const agentPub = agentJwk;
  const dpopFetch: typeof fetch = async (input, init) => {
    const u = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const proof = await new SignJWT({
      htm: init?.method ?? 'GET',
      htu: `${u.origin}${u.pathname}`,
      jti: randomUUID(),
      ath,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: agentPub })
      .setIssuedAt()
      .sign(agent.privateKey);
    const headers = new Headers(init?.headers);
    headers.set('authorization', `DPoP ${token}`);
    headers.set('dpop', proof);
    return fetch(input, { ...init, headers });
  };

  const clients = async (n: number, url: string, viaGateway: boolean) =>
    Promise.all(
      Array.from({ length: n }, async () => {
        const c = new Client({ name: 'bench', version: '1' });
        await c.connect(
          new StreamableHTTPClientTransport(new URL(url), viaGateway ? { fetch: dpopFetch } : {}),
        );
        return c;
      }),
    );
  const measure = async (n: number, url: string, name: string, viaGateway: boolean) => {
    const cs = await clients(n, url, viaGateway);
    const call = (i: number) => (cs[i % n] as Client).callTool({ name, arguments: { query: 'fire' } });
    await load(call, { concurrency: n, ms: 500 }); // warm-up
    if (viaGateway) await fetch(`${gwUrl}/__bench/reset`, { method: 'POST' });
    const r = await load(call, { concurrency: n, ms: SECONDS * 1000 });
    await Promise.all(cs.map((c) => c.close()));
    return { ...r, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99) };
  };

  try {
    process.stdout.write(
      `upstream: examples/tickets-server.ts (SDK, stateless streamable HTTP); ${SECONDS} s per case\n`,
    );
    for (const sessions of [1, 16]) {
      const direct = await measure(sessions, upstreamUrl, 'search', false);
      const via = await measure(sessions, mcpUrl, 'tickets.search', true);
      const steps = (await (await fetch(`${gwUrl}/__bench/steps`)).json()) as Record<
        string,
        { p50: number; p99: number }
      >;
      const cpu = (await (await fetch(`${gwUrl}/__bench/cpu`)).json()) as {
        per_call_us: number;
        user_us: number;
        system_us: number;
      };
      process.stdout.write(
        `\n${sessions} session${sessions > 1 ? 's' : ''}:\n` +
          `  direct   ${fmt(direct.perSecond, 0)} calls/s  p50 ${fmt(direct.p50, 2)} ms  p99 ${fmt(direct.p99, 2)} ms\n` +
          `  gateway  ${fmt(via.perSecond, 0)} calls/s  p50 ${fmt(via.p50, 2)} ms  p99 ${fmt(via.p99, 2)} ms\n` +
          `  gateway/direct throughput ${fmt(via.perSecond / direct.perSecond, 2)}x; added latency p50 ${fmt(via.p50 - direct.p50, 2)} ms, p99 ${fmt(via.p99 - direct.p99, 2)} ms\n` +
          `  gateway steps (p50 / p99 ms): ${Object.entries(steps)
            .map(([k, v]) => `${k} ${fmt(v.p50, 2)}/${fmt(v.p99, 2)}`)
            .join(', ')}\n` +
          `  gateway node CPU per call: ${fmt(cpu.per_call_us / 1000, 2)} ms (user ${fmt(cpu.user_us / 1000, 0)} ms, system ${fmt(cpu.system_us / 1000, 0)} ms in total)\n`,
      );
    }
    process.stdout.write(
      '\nNotes: "upstream" in the step breakdown includes the gateway→upstream HTTP hop; the client-side\n' +
        'DPoP proof signing (one ES256 signature per call) is inside the gateway latency; the decider is\n' +
        'a permit-all stand-in until the policy engine is assembled in createWarden.\n',
    );
  } finally {
    gw.child.kill('SIGTERM');
    upstream.child.kill('SIGTERM');
    await Promise.all([once(gw.child, 'exit'), once(upstream.child, 'exit')]);
  }
}

if (import.meta.main) await run();
