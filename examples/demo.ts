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
import { storedLedgerPublicKey, verifyLedger } from '../src/audit/index.ts';
import { createLogger, loadConfig } from '../src/core/index.ts';
import { bootstrapAdmin, buildServer, createWarden } from '../src/http/index.ts';
import { connectThroughGateway } from './agent.ts';
import { startTicketsServer } from './tickets-server.ts';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
let step = 0;
const say = (title: string) => process.stdout.write(`\n${bold(`${++step}. ${title}`)}\n`);
const note = (text: string) => process.stdout.write(`   ${text}\n`);

/**
 * A minimal SIEM stand-in: a TCP syslog receiver that splits RFC 6587 octet-counted frames and
 * keeps each RFC 5424 message. (The tests use a real rsyslog; the demo needs no system daemon.)
 */
async function startSyslogReceiver(): Promise<{ port: number; messages: string[]; close(): Promise<void> }> {
  const messages: string[] = [];
  const server = createServer((socket) => {
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const space = buffer.indexOf(0x20);
        if (space < 0) break;
        const length = Number(buffer.subarray(0, space).toString('ascii'));
        if (buffer.length < space + 1 + length) break;
        messages.push(buffer.subarray(space + 1, space + 1 + length).toString('utf8'));
        buffer = buffer.subarray(space + 1 + length);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    port: (server.address() as { port: number }).port,
    messages,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

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
const siem = await startSyslogReceiver();
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

  say('The security team streams the ledger to its SIEM (syslog over TCP, OCSF)');
  await admin('POST', '/v1/export/sinks', {
    name: 'siem',
    type: 'syslog',
    transport: 'tcp',
    host: '127.0.0.1',
    port: siem.port,
    format: 'ocsf',
  });
  note(
    `sink "siem" → 127.0.0.1:${siem.port}; every agent registered from now on is covered with no work by its developer`,
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

  say('The audit chain verifies, offline, with only the ledger public key');
  await warden.auditor.checkpoint();
  const report = await verifyLedger(warden.store.db, await storedLedgerPublicKey(warden.store.db));
  if (!report.ok) throw new Error(`ledger verification failed: ${JSON.stringify(report.first_problem)}`);
  note(
    `${report.events} events in ${report.partitions.length} partition(s), ${report.checkpoints} signed checkpoint(s): chain, Merkle roots and signatures check out`,
  );
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

  say('The same events arrive at the SIEM as OCSF over syslog');
  const wanted = report.events;
  const deadline = Date.now() + 5000;
  while (siem.messages.length < wanted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  note(`${siem.messages.length} syslog messages received (RFC 5424, octet-counted)`);
  for (const message of siem.messages.filter((m) => m.includes('tool.call')).slice(0, 3)) {
    const json = JSON.parse(message.slice(message.indexOf('{"')));
    note(
      `class ${json.class_uid} (${json.class_name}) type_uid ${json.type_uid} api.operation=${json.api?.operation} status=${json.status}`,
    );
  }
} finally {
  await upstream.close();
  await app.close();
  // The exporter's connection to the receiver ends with the node; only then can the receiver close.
  await warden.close();
  await siem.close();
  rmSync(dataDir, { recursive: true, force: true });
}
