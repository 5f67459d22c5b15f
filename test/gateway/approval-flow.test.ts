import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { type Browser, chromium } from 'playwright-core';
import { z } from 'zod';
import { connectThroughGateway } from '../../examples/agent.ts';
import { type Caller, userCreateSchema } from '../../src/identity/index.ts';
import { BACKENDS, type Backend } from '../support/databases.ts';
import { type GatewayNode, StaticCredentials, startGatewayNode } from './support.ts';

const POLICY_ADMIN = { type: 'user' as const, id: 'test-admin' };

/** Payments above 100 need a person of the finance group; smaller ones are permitted outright. */
const PAYMENTS_POLICY = `
@id("pay-small")
permit (principal, action == Warden::Action::"call_tool", resource == Warden::Tool::"pay.send")
when { context.num_args.hasTag("amount") && context.num_args.getTag("amount") <= 100 };

@id("pay-large")
@approval("required")
@approvers("group:finance")
@reason("payments above 100 need the finance team")
permit (principal, action == Warden::Action::"call_tool", resource == Warden::Tool::"pay.send")
when { context.num_args.hasTag("amount") && context.num_args.getTag("amount") > 100 };
`;

/** An upstream MCP server (official SDK) whose `send` tool counts how often it really ran. */
async function startPaymentsServer(): Promise<{ url: string; sent: string[]; close(): Promise<void> }> {
  const sent: string[] = [];
  const server = createServer(async (req, res) => {
    const mcp = new McpServer({ name: 'payments', version: '1.0.0' });
    mcp.registerTool(
      'send',
      {
        description: 'Send a payment.',
        inputSchema: { amount: z.number().int().positive(), ref: z.string().max(64) },
      },
      async ({ amount, ref }) => {
        sent.push(ref);
        return { content: [{ type: 'text', text: `sent ${amount} (${ref})` }] };
      },
    );
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    sent,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface World {
  node: GatewayNode;
  client: Client;
  sent: string[];
  /** An approver API token of bob (a finance member, not the agent's owner). */
  bobToken: string;
}

/**
 * A real node (its own token service, Cedar engine, approvals) with the payments upstream approved,
 * the payments policy active, bob in the finance group, and an agent connected through the gateway
 * with a Warden-issued DPoP-bound token.
 */
async function world(backend: Backend, options: Record<string, unknown>): Promise<World> {
  const cleanup = after;
  const upstream = await startPaymentsServer();
  cleanup(() => upstream.close());
  const node = await startGatewayNode(backend, { credentials: new StaticCredentials({}), options, cleanup });
  assert.equal(
    (await node.call('POST', '/v1/gateway/upstreams', { name: 'pay', url: upstream.url })).status,
    201,
  );
  const approved = await node.call('POST', '/v1/gateway/upstreams/pay/approve');
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  const { identity, approvals, policy } = node.warden;
  const root = await identity.users.create(
    userCreateSchema.parse({ username: 'root', roles: ['admin'], password: 'root-password-123' }),
    undefined,
  );
  const admin: Caller = { userId: root.id, username: root.username, role: 'admin' };
  const bob = await identity.users.create(
    userCreateSchema.parse({ username: 'bob', roles: ['approver'], password: 'bob-password-123' }),
    admin,
  );
  await approvals.groups.put('finance', ['bob'], admin);
  const bobToken = (
    await identity.users.createToken(
      { name: 'bob', role: 'approver', expires_in: 3600, user_id: bob.id },
      admin,
    )
  ).token;
  const pushed = await policy.admin.push({ policies: PAYMENTS_POLICY }, POLICY_ADMIN);
  await policy.admin.activate(pushed.version, POLICY_ADMIN);
  await policy.engine.reload();

  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256' };
  const providerKey = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
  assert.equal(
    (
      await node.call('POST', '/v1/providers', {
        name: 'acme',
        contact: 'sec@acme.test',
        jwks: { keys: [{ ...providerKey, kid: 'p1', alg: 'ES256', use: 'sig' }] },
      })
    ).status,
    201,
  );
  assert.equal(
    (
      await node.call('POST', '/v1/templates', {
        name: 'payer',
        spec: { description: 'pays invoices', allowed_tools: ['pay.send'], allowed_scopes: [] },
      })
    ).status,
    201,
  );
  const agent = await node.call('POST', '/v1/agents', {
    name: 'pay-bot',
    provider: 'acme',
    template: 'payer',
    purpose: 'pays invoices',
    jwks: { keys: [{ ...pub, kid, alg: 'ES256', use: 'sig' }] },
  });
  assert.equal(agent.status, 201, JSON.stringify(agent.body));
  assert.notEqual(agent.body.owner_id, bob.id, 'bob is not the owner of the agent he approves for');
  const { client } = await connectThroughGateway(node.url, { id: agent.body.id, privateJwk }, {});
  cleanup(() => client.close());
  return { node, client, sent: upstream.sent, bobToken };
}

type McpError = Error & { code?: number; data?: { code: string } };

const refusedWith = (code: string) => (e: McpError) => {
  assert.equal(e.data?.code, code, e.message);
  return true;
};

function pendingIdOf(result: { isError?: unknown; _meta?: unknown }): string {
  assert.equal(result.isError, true);
  const meta = (result._meta as Record<string, { request_id?: string; status?: string }>)['warden/approval'];
  assert.equal(meta?.status, 'pending');
  assert.ok(meta?.request_id);
  return meta.request_id;
}

async function toolCallEvents(w: World, requestId: string) {
  const rows = await w.node.warden.store.db
    .selectFrom('audit_events')
    .select('body')
    .where('type', '=', 'tool.call')
    .orderBy('seq')
    .execute();
  return rows
    .map((r) => JSON.parse(r.body as string))
    .filter((e) => e.details.approval_request_id === requestId)
    .map((e) => ({ outcome: e.outcome, error_code: e.error_code ?? null }));
}

// Built at the top level: a throwaway PostgreSQL database lives as long as the file's tests.
const PENDING: Record<Backend, World> = {
  sqlite: await world('sqlite', { approvalMode: 'pending' }),
  postgres: await world('postgres', { approvalMode: 'pending' }),
};

for (const backend of BACKENDS) {
  describe(`gateway approvals, pending mode (${backend})`, () => {
    const w = PENDING[backend];

    it('answers with the pending request; the approved retry runs once; a repeat or altered retry is refused', async () => {
      const call = { name: 'pay.send', arguments: { amount: 500, ref: 'INV-1' } };
      const small = await w.client.callTool({ name: 'pay.send', arguments: { amount: 20, ref: 'INV-0' } });
      assert.equal(small.isError, undefined, 'no approval under the limit');
      const id = pendingIdOf(await w.client.callTool(call));
      assert.deepEqual(w.sent, ['INV-0'], 'the pending call did not reach the upstream');
      const view = await w.node.warden.approvals.get(id);
      assert.deepEqual(view.approvers, { kind: 'group', group: 'finance', allow_owner: false });
      assert.deepEqual(view.policies, ['pay-large']);
      assert.deepEqual(view.arguments, call.arguments);

      // Retrying before anyone decided is still pending.
      const meta = { 'warden/approval': { request_id: id } };
      assert.equal(pendingIdOf(await w.client.callTool({ ...call, _meta: meta })), id);

      const approved = await w.node.call('POST', `/v1/approvals/${id}/approve`, { comment: 'ok' });
      assert.equal(
        approved.status,
        403,
        'the bootstrap admin (the agent owner, not in finance) may not decide',
      );
      const res = await fetch(`${w.node.url}/v1/approvals/${id}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${w.bobToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ comment: 'invoice checked' }),
      });
      assert.equal(res.status, 200, await res.text());

      await assert.rejects(
        w.client.callTool({ name: 'pay.send', arguments: { amount: 900, ref: 'INV-1' }, _meta: meta }),
        refusedWith('ERR_APPROVAL_CALL_MISMATCH'),
      );
      const ran = await w.client.callTool({ ...call, _meta: meta });
      assert.equal(ran.isError, undefined);
      assert.match((ran.content as { text: string }[])[0]?.text ?? '', /sent 500 \(INV-1\)/);
      await assert.rejects(w.client.callTool({ ...call, _meta: meta }), refusedWith('ERR_APPROVAL_CONSUMED'));
      assert.deepEqual(w.sent, ['INV-0', 'INV-1'], 'the approved payment ran exactly once');

      assert.deepEqual(await toolCallEvents(w, id), [
        { outcome: 'denied', error_code: 'ERR_APPROVAL_PENDING' },
        { outcome: 'denied', error_code: 'ERR_APPROVAL_PENDING' },
        { outcome: 'denied', error_code: 'ERR_APPROVAL_CALL_MISMATCH' },
        { outcome: 'success', error_code: null },
        { outcome: 'denied', error_code: 'ERR_APPROVAL_CONSUMED' },
      ]);
      const uses = await w.node.warden.store.db
        .selectFrom('audit_events')
        .select('body')
        .where('type', '=', 'approval.consumed')
        .execute();
      const linked = uses.map((r) => JSON.parse(r.body as string)).filter((e) => e.resource.id === id);
      assert.deepEqual(
        linked.map((e) => e.outcome),
        ['denied', 'denied', 'success', 'denied'],
      );
    });

    if (backend === 'sqlite') {
      it('refuses the retry of a denied request', async () => {
        const call = { name: 'pay.send', arguments: { amount: 700, ref: 'INV-2' } };
        const id = pendingIdOf(await w.client.callTool(call));
        const res = await fetch(`${w.node.url}/v1/approvals/${id}/deny`, {
          method: 'POST',
          headers: { authorization: `Bearer ${w.bobToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ comment: 'unknown supplier' }),
        });
        assert.equal(res.status, 200, await res.text());
        await assert.rejects(
          w.client.callTool({ ...call, _meta: { 'warden/approval': { request_id: id } } }),
          refusedWith('ERR_APPROVAL_DENIED'),
        );
        assert.ok(!w.sent.includes('INV-2'));
      });
    }
  });
}

describe('gateway approvals, expiry', () => {
  it('refuses the retry of a request nobody decided in time', async () => {
    const w = await world('sqlite', { approvalMode: 'pending', approvalTtlSeconds: 1 });
    const call = { name: 'pay.send', arguments: { amount: 300, ref: 'INV-3' } };
    const id = pendingIdOf(await w.client.callTool(call));
    await new Promise((r) => setTimeout(r, 1100));
    await assert.rejects(
      w.client.callTool({ ...call, _meta: { 'warden/approval': { request_id: id } } }),
      refusedWith('ERR_APPROVAL_EXPIRED'),
    );
    assert.equal((await w.node.warden.approvals.get(id)).status, 'expired');
    assert.deepEqual(w.sent, []);
  });
});

describe('gateway approvals, hold mode without a decision', () => {
  it('answers a held call as pending when nobody decides within the wait, and refuses it once denied', async () => {
    const w = await world('sqlite', { approvalMode: 'hold', approvalWaitSeconds: 1 });
    const call = { name: 'pay.send', arguments: { amount: 250, ref: 'INV-5' } };
    const id = pendingIdOf(await w.client.callTool(call));
    assert.equal((await w.node.warden.approvals.get(id)).status, 'pending');
    const res = await fetch(`${w.node.url}/v1/approvals/${id}/deny`, {
      method: 'POST',
      headers: { authorization: `Bearer ${w.bobToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({}),
    });
    assert.equal(res.status, 200, await res.text());
    await assert.rejects(
      w.client.callTool({ ...call, _meta: { 'warden/approval': { request_id: id } } }),
      refusedWith('ERR_APPROVAL_DENIED'),
    );
    assert.deepEqual(w.sent, []);
  });
});

describe('gateway approvals, hold mode with the approval page in headless Chromium', () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(() => browser?.close());

  it('holds the call, tells the client by progress notifications, and runs it once a person approves on the page', async () => {
    const w = await world('sqlite', { approvalMode: 'hold', approvalWaitSeconds: 30 });
    const notes: string[] = [];
    let announced: (id: string) => void = () => undefined;
    const requestId = new Promise<string>((resolve) => {
      announced = resolve;
    });
    const held = w.client.callTool(
      { name: 'pay.send', arguments: { amount: 1200, ref: 'INV-4' } },
      undefined,
      {
        onprogress: (p) => {
          notes.push(p.message ?? '');
          const m = /\(([0-9a-f-]{36})\)/.exec(p.message ?? '');
          if (m) announced(m[1] as string);
        },
        resetTimeoutOnProgress: true,
      },
    );
    const id = await requestId;
    assert.match(notes[0] ?? '', new RegExp(`awaiting approval .* at ${w.node.url}/approvals/${id}`));
    assert.deepEqual(w.sent, [], 'nothing ran while the call is held');

    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${w.node.url}/approvals/${id}`);
      await page.fill('#username', 'bob');
      await page.fill('#password', 'bob-password-123');
      await page.click('#sign-in');
      await page.waitForSelector('#approve');
      assert.equal(await page.textContent('#tool'), 'pay.send');
      assert.equal(JSON.parse((await page.textContent('#arguments')) ?? '{}').amount, 1200);
      await page.click('#approve');
      await page.waitForSelector('#message');
      assert.equal(await page.textContent('#message'), 'You approved this request.');
    } finally {
      await context.close();
    }
    const result = await held;
    assert.equal(result.isError, undefined);
    assert.match((result.content as { text: string }[])[0]?.text ?? '', /sent 1200 \(INV-4\)/);
    assert.deepEqual(w.sent, ['INV-4'], 'the held call ran exactly once');
    assert.equal((await w.node.warden.approvals.get(id)).status, 'consumed');
    assert.deepEqual(await toolCallEvents(w, id), [{ outcome: 'success', error_code: null }]);
    // The grant was used by the held call: a retry with its id cannot run the payment again.
    await assert.rejects(
      w.client.callTool({
        name: 'pay.send',
        arguments: { amount: 1200, ref: 'INV-4' },
        _meta: { 'warden/approval': { request_id: id } },
      }),
      refusedWith('ERR_APPROVAL_CONSUMED'),
    );
    assert.deepEqual(w.sent, ['INV-4']);
  });
});
