// A Warden node for bench/gateway.bench.ts, run as its own process so the gateway, the upstream and
// the load generator each have their own event loop. It trusts the token-signing key the bench
// gives it (BENCH_ISSUER_JWKS) and registers a provider, template, agent and the upstream.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { createLogger, loadConfig } from '../src/core/index.ts';
import { type GatewayDecision, JwtTokenVerifier, type PolicyDecider } from '../src/gateway/index.ts';
import { bootstrapAdmin, buildServer, createWarden } from '../src/http/index.ts';

const port = Number(process.env.BENCH_PORT);
const publicUrl = `http://127.0.0.1:${port}`;
const jwks = JSON.parse(process.env.BENCH_ISSUER_JWKS as string) as JSONWebKeySet;
const agentJwks = JSON.parse(process.env.BENCH_AGENT_JWKS as string) as JSONWebKeySet;

// The policy part's engine is not assembled on this branch yet: the bench decides with the
// template's tool list (a permit naming its policy) so the policy step is timed all the same.
const decider: PolicyDecider = {
  decide: (r): GatewayDecision => ({
    decision: 'permit',
    approval_required: false,
    reason: `permitted by bench:${r.resource.id}`,
    determining_policies: [{ id: 'bench:template' }],
  }),
};

const config = loadConfig({
  WARDEN_DATA_DIR: mkdtempSync(join(tmpdir(), 'warden-bench-gw-')),
  WARDEN_PORT: String(port),
  WARDEN_PUBLIC_URL: publicUrl,
  WARDEN_LOG_LEVEL: 'silent',
  ...(process.env.BENCH_DATABASE_URL ? { WARDEN_DATABASE_URL: process.env.BENCH_DATABASE_URL } : {}),
});
const warden = await createWarden(config, {
  logger: createLogger({ level: 'silent' }),
  gateway: {
    tokenVerifier: new JwtTokenVerifier({
      issuer: publicUrl,
      keys: createLocalJWKSet(jwks),
      clock: { now: () => Date.now() },
    }),
    decider,
    options: {
      agentRateLimit: { capacity: 1_000_000, per_second: 1_000_000 },
      toolRateLimit: { capacity: 1_000_000, per_second: 1_000_000 },
    },
  },
});
const creds = await bootstrapAdmin(warden);
const app = await buildServer(warden);
// CPU time of this process per governed call since the last reset: unlike wall-clock latency it is
// not inflated by other processes on a shared machine.
let cpuSince = process.cpuUsage();
app.get('/__bench/steps', async () => warden.gateway.stats.summary());
app.get('/__bench/cpu', async () => {
  const used = process.cpuUsage(cpuSince);
  const calls = warden.gateway.stats.summary().total?.n ?? 0;
  return {
    calls,
    user_us: used.user,
    system_us: used.system,
    per_call_us: (used.user + used.system) / calls,
  };
});
app.post('/__bench/reset', async () => {
  warden.gateway.stats.reset();
  cpuSince = process.cpuUsage();
  return {};
});
await app.listen({ host: '127.0.0.1', port });
const call = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`${publicUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${creds?.token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json() as Promise<Record<string, string>>;
};
await call('POST', '/v1/providers', { name: 'bench', contact: 'bench@example.test', jwks: agentJwks });
await call('POST', '/v1/templates', {
  name: 'bench',
  spec: { description: 'bench', allowed_tools: ['tickets.*'], allowed_scopes: ['tickets:read'] },
});
const agent = await call('POST', '/v1/agents', {
  name: 'bench-bot',
  provider: 'bench',
  template: 'bench',
  purpose: 'bench',
  jwks: agentJwks,
});
await call('POST', '/v1/gateway/upstreams', { name: 'tickets', url: process.env.BENCH_UPSTREAM_URL });
await call('POST', '/v1/gateway/upstreams/tickets/approve');
process.stdout.write(`${JSON.stringify({ url: publicUrl, agentId: agent.id })}\n`);
process.on('SIGTERM', async () => {
  await app.close();
  await warden.close();
  process.exit(0);
});
