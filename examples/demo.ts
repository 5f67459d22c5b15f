/**
 * `npm run demo`: the whole story on the embedded default (one process, one SQLite file), narrated.
 * An upstream MCP server (tickets and payments) sits behind Warden's gateway; an agent with a key
 * pair gets a DPoP-bound token and calls tools through the gateway with the official MCP SDK.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { chainHash, eventBody, GENESIS_HASH, listPartitions, readEvents } from '../src/audit/index.ts';
import { createLogger, loadConfig } from '../src/core/index.ts';
import { bootstrapAdmin, buildServer, createWarden } from '../src/http/index.ts';
import { connectThroughGateway } from './agent.ts';
import { startTicketsServer } from './tickets-server.ts';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
let step = 0;
const say = (title: string) => process.stdout.write(`\n${bold(`${++step}. ${title}`)}\n`);
const note = (text: string) => process.stdout.write(`   ${text}\n`);

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const dataDir = mkdtempSync(join(tmpdir(), 'warden-demo-'));
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const warden = await createWarden(
  loadConfig({
    WARDEN_DATA_DIR: dataDir,
    WARDEN_PORT: String(port),
    WARDEN_PUBLIC_URL: url,
    WARDEN_LOG_LEVEL: 'silent',
  }),
  { logger: createLogger({ level: 'silent' }) },
);
const creds = await bootstrapAdmin(warden);
const app = await buildServer(warden);
await app.listen({ host: '127.0.0.1', port });
const upstream = await startTicketsServer();
const admin = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${creds?.token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = res.status === 204 ? {} : await res.json();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json as Record<string, any>;
};
const actor = { type: 'user' as const, id: 'demo-admin', name: 'admin' };

try {
  process.stdout.write(
    `Warden is running at ${url} (SQLite in ${dataDir}); an MCP server at ${upstream.url}\n`,
  );

  say('An admin registers a provider, a template and an agent');
  const providerKey = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
  await admin('POST', '/v1/providers', {
    name: 'acme-ai',
    contact: 'security@acme.example',
    jwks: { keys: [{ ...providerKey, kid: 'acme-1', alg: 'ES256', use: 'sig' }] },
  });
  const template = await admin('POST', '/v1/templates', {
    name: 'support-desk',
    spec: {
      description: 'Support agent: searches and files tickets, small refunds',
      allowed_tools: ['tickets.search', 'tickets.create', 'tickets.refund'],
      allowed_scopes: ['tickets:read', 'tickets:write'],
      require_intent: ['tickets.refund'],
    },
  });
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const agent = await admin('POST', '/v1/agents', {
    name: 'helpdesk-bot',
    provider: 'acme-ai',
    template: 'support-desk',
    purpose: 'answers customer tickets',
    jwks: { keys: [{ ...pub, kid, alg: 'ES256', use: 'sig' }] },
  });
  note(`agent ${agent.name} (${agent.id}) holds its private key; Warden keeps only the public key`);

  say('The MCP server is registered behind the gateway and approved (tool definitions pinned)');
  await admin('POST', '/v1/gateway/upstreams', { name: 'tickets', url: upstream.url });
  const approved = await admin('POST', '/v1/gateway/upstreams/tickets/approve');
  note(
    `pinned ${Object.keys(approved.pins).length} tool definitions: ${Object.keys(approved.pins).join(', ')}`,
  );

  say('Policy: the template compiled to Cedar, plus a limit on refund amounts');
  const { admin: policies, engine } = warden.policy;
  const limit = await policies.push(
    {
      policies:
        '@id("refund-limit") @reason("refunds above 100.00 need the finance team")\n' +
        'forbid (principal, action == Warden::Action::"call_tool", resource == Warden::Tool::"tickets.refund") ' +
        'when { context.num_args.hasTag("amount") && context.num_args.getTag("amount") > 10000 };',
      description: 'refund limit',
    },
    actor,
  );
  await policies.activate(limit.version, actor);
  await policies.pushTemplate(
    {
      id: template.id,
      version: 1,
      allowedTools: ['tickets.search', 'tickets.create', 'tickets.refund'],
      allowedScopes: ['tickets:read', 'tickets:write'],
    },
    actor,
    { activate: true },
  );
  await engine.reload();
  note(`policy set version ${engine.version} is active on every node`);

  say('The agent gets a DPoP-bound token (private_key_jwt + DPoP) and connects with the MCP SDK');
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256' };
  const { client, token } = await connectThroughGateway(
    url,
    { id: agent.id, privateJwk },
    { scope: 'tickets:read tickets:write' },
  );
  const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
  note(`token for ${claims.aud}, bound to key ${claims.cnf.jkt.slice(0, 12)}…, scope "${claims.scope}"`);
  const { tools } = await client.listTools();
  note(`tools/list shows: ${tools.map((t) => t.name).join(', ')} (slow is hidden: not in the template)`);

  say('An allowed call succeeds');
  const created = await client.callTool({
    name: 'tickets.create',
    arguments: { title: 'VPN drops every hour', priority: 'high' },
    _meta: { 'warden/intent': 'customer #4411 reported VPN outages' },
  });
  note(`tickets.create → ${(created.content as { text: string }[])[0]?.text}`);

  const attempt = async (label: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      note(`${label} → allowed (unexpected)`);
    } catch (e) {
      note(`${label} → refused: ${(e as Error).message.replace(/^MCP error -?\d+: /, '')}`);
    }
  };
  say('A call outside the template is denied, with the reason');
  await attempt('tickets.slow', () => client.callTool({ name: 'tickets.slow', arguments: {} }));
  say('An argument over a policy limit is denied');
  await attempt('tickets.refund amount 50000', () =>
    client.callTool({
      name: 'tickets.refund',
      arguments: { payment_id: 'pay_981', amount: 50000 },
      _meta: { 'warden/intent': 'refund duplicate charge' },
    }),
  );
  const small = await client.callTool({
    name: 'tickets.refund',
    arguments: { payment_id: 'pay_981', amount: 2500 },
    _meta: { 'warden/intent': 'refund duplicate charge' },
  });
  note(`tickets.refund amount 2500 → ${(small.content as { text: string }[])[0]?.text}`);

  say('The agent is suspended; its next call fails at once, although its token has not expired');
  await admin('POST', `/v1/agents/${agent.id}/suspend`, { reason: 'demo: suspected prompt injection' });
  const t0 = performance.now();
  for (;;) {
    try {
      await client.callTool({ name: 'tickets.search', arguments: { query: 'VPN' } });
      await new Promise((r) => setTimeout(r, 10));
    } catch (e) {
      note(
        `refused ${Math.round(performance.now() - t0)} ms after the suspension: ${(e as Error).message.slice(0, 120)}`,
      );
      break;
    }
  }
  await client.close();

  say('The audit chain verifies');
  let events = 0;
  for (const { partition } of await listPartitions(warden.store.db)) {
    let prev = GENESIS_HASH;
    let after = 0;
    for (;;) {
      const batch = await readEvents(warden.store.db, partition, after, 500);
      for (const e of batch) {
        if (e.prev_hash !== prev || chainHash(prev, eventBody(e)) !== e.hash)
          throw new Error(`chain broken at ${partition}/${e.seq}`);
        prev = e.hash;
        after = e.seq;
        events++;
      }
      if (batch.length < 500) break;
    }
  }
  note(`${events} events, every hash links to its predecessor`);
  const calls = await warden.store.db
    .selectFrom('audit_events')
    .select('body')
    .where('type', '=', 'tool.call')
    .orderBy('seq')
    .execute();
  for (const row of calls) {
    const e = JSON.parse(row.body as string);
    note(
      `tool.call ${e.resource.id} ${e.outcome}${e.error_code ? ` (${e.error_code})` : ''}` +
        `${e.intent?.text ? ` intent="${e.intent.text}"` : ''} policies=${(e.decision?.policies ?? []).join(',') || '-'}`,
    );
  }
  note('SIEM export (OCSF lines to a syslog receiver) is not part of this build yet');
} finally {
  await upstream.close();
  await app.close();
  await warden.close();
  rmSync(dataDir, { recursive: true, force: true });
}
