import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { decodeJwt } from 'jose';
import * as client from 'openid-client';
import { readEvents } from '../../src/audit/index.ts';
import { makeTlsFiles } from '../export/support/rsyslog.ts';
import { startTestServer } from '../support/server.ts';
import { agentConfig, createPerson, registerDelegatingAgent } from './code-flow-support.ts';
import { freePort, GATEWAY, startTokenServer } from './support.ts';

const CIBA = 'urn:openid:params:grant-type:ciba';
// The ping receiver listens on loopback, which the default SSRF protection refuses.
const server = await startTokenServer('sqlite', { WARDEN_TOKENS_CIBA_NOTIFICATION_TARGETS: 'any' });
const alice = await createPerson(server, 'alice');
const cibaAgent = await registerDelegatingAgent(server, { allowed: false, ciba: true });
const cibaClient = await agentConfig(server, cibaAgent);
const plainAgent = await registerDelegatingAgent(server, { allowed: false });
const plainClient = await agentConfig(server, plainAgent);
const aliceActor = { type: 'user' as const, id: alice.id };

async function events(type: string) {
  const all = await readEvents(server.warden.store.db, server.warden.nodeId, 0, 100_000);
  return all.filter((e) => e.type === type);
}

/** The approval request the /backchannel request opened. */
async function approvalOf(authReqId: string, agentId = cibaAgent.id) {
  const all = await server.warden.approvals.list({ agent_id: agentId, limit: 100 });
  const found = all.find((a) => a.arguments.auth_req_id === authReqId);
  assert.ok(found, 'an approval request was opened');
  return found;
}

/** Alice decides in the approvals part; resolves once the library request carries the outcome. */
async function decide(authReqId: string, decision: 'approve' | 'deny', agentId = cibaAgent.id) {
  const approval = await approvalOf(authReqId, agentId);
  await server.warden.approvals.decide(approval.id, decision, {
    type: 'user',
    id: alice.id,
    name: alice.username,
    roles: [],
  });
  for (let i = 0; i < 100; i++) {
    const r = await server.warden.tokens.records.find('BackchannelAuthenticationRequest', authReqId);
    if (r?.grantId || r?.error) return r.grantId as string | undefined;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.fail('the decision did not reach the backchannel request');
}

function start(config = cibaClient, extra: Record<string, string> = {}) {
  return client.initiateBackchannelAuthentication(config, {
    scope: 'openid tickets.read',
    login_hint: alice.username,
    binding_message: 'Triage ticket #4711 for Alice (code 7Q2)',
    resource: GATEWAY,
    ...extra,
  });
}

async function poll(authReqId: string, config = cibaClient) {
  return client.genericGrantRequest(config, CIBA, { auth_req_id: authReqId });
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return String((e as { error?: string }).error ?? (e as Error).message);
  }
  assert.fail('expected a refusal');
}

describe('OpenID CIBA: poll mode', () => {
  it('issues a delegated token after the person approves: sub, act, grant_id, introspection active', async () => {
    const started = await start();
    assert.ok(started.auth_req_id);
    assert.equal(started.interval, 5);
    const ask = await approvalOf(started.auth_req_id);
    assert.equal(ask.user_id, alice.id);
    assert.equal(ask.tool, 'oauth.backchannel');
    assert.equal(ask.binding_message, 'Triage ticket #4711 for Alice (code 7Q2)');
    assert.deepEqual(ask.arguments.scopes, ['openid', 'tickets.read']);
    assert.equal(ask.resource, GATEWAY);
    const grantId = await decide(started.auth_req_id, 'approve');
    const tokens = await poll(started.auth_req_id);
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.sub, alice.id);
    assert.deepEqual(claims.act, { sub: cibaAgent.id });
    assert.equal(claims.grant_id, grantId);
    assert.equal(claims.scope, 'tickets.read');
    assert.equal(claims.aud, GATEWAY);
    assert.equal(decodeJwt(String(tokens.id_token)).sub, alice.id);
    assert.equal((await server.warden.tokens.introspect(tokens.access_token)).active, true);
    const grant = await server.warden.tokens.grants.find(String(grantId));
    assert.equal(grant?.source, 'ciba');
    const asked = (await events('authorization.backchannel_requested')).at(-1);
    assert.equal(asked?.actor.id, cibaAgent.id);
    assert.equal(asked?.actor.on_behalf_of?.id, alice.id);
    assert.ok((await events('approval.decided')).some((e) => e.resource?.id === ask.id));
    const issued = (await events('token.issued')).at(-1);
    assert.equal(issued?.details?.grant_type, CIBA);
    assert.equal(issued?.actor.on_behalf_of?.id, alice.id);
  });

  it('answers authorization_pending before the decision and slow_down when polled too fast', async () => {
    const started = await start();
    assert.equal(await refusal(poll(started.auth_req_id)), 'authorization_pending');
    assert.equal(await refusal(poll(started.auth_req_id)), 'slow_down');
  });

  it('answers access_denied when the person denies', async () => {
    const started = await start();
    await decide(started.auth_req_id, 'deny');
    assert.equal(await refusal(poll(started.auth_req_id)), 'access_denied');
  });

  it('answers expired_token once the request has expired', async () => {
    const started = await start(cibaClient, { requested_expiry: '1' });
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal(await refusal(poll(started.auth_req_id)), 'expired_token');
  });

  it('refuses an unknown login_hint with unknown_user_id', async () => {
    assert.equal(await refusal(start(cibaClient, { login_hint: 'nobody-here' })), 'unknown_user_id');
    const refused = (await events('token.refused')).at(-1);
    assert.equal(refused?.action, 'oauth.backchannel');
    assert.equal(refused?.error_code, 'unknown_user_id');
  });

  it('refuses a missing binding message', async () => {
    assert.equal(await refusal(start(cibaClient, { binding_message: '' })), 'invalid_binding_message');
  });

  it('refuses an agent whose template does not allow CIBA with unauthorized_client', async () => {
    assert.equal(await refusal(start(plainClient)), 'unauthorized_client');
  });

  it('makes the token inactive when the grant is revoked', async () => {
    const started = await start();
    const grantId = await decide(started.auth_req_id, 'approve');
    const tokens = await poll(started.auth_req_id);
    await server.warden.tokens.revokeGrant(String(grantId), aliceActor);
    assert.equal((await server.warden.tokens.introspect(tokens.access_token)).active, false);
  });
});

describe('OpenID CIBA: ping mode', () => {
  it('notifies the agent with its client_notification_token, then the token is fetched', async () => {
    const received: { auth: string | undefined; body: string }[] = [];
    // CIBA requires an https notification endpoint: a throwaway CA this process trusts.
    const tls = makeTlsFiles(mkdtempSync(join(tmpdir(), 'warden-ciba-')));
    setDefaultCACertificates([...getCACertificates('default'), tls.ca]);
    const tlsOptions = { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
    const receiver = createServer(tlsOptions, (req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push({ auth: req.headers.authorization, body });
        res.statusCode = 204;
        res.end();
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const port = (receiver.address() as { port: number }).port;
    try {
      const agent = await registerDelegatingAgent(server, {
        allowed: false,
        ciba: true,
        notify: `https://localhost:${port}/ciba`,
      });
      const config = await agentConfig(server, agent);
      const started = await start(config, { client_notification_token: 'ping-secret-0123456789' });
      await decide(started.auth_req_id, 'approve', agent.id);
      for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(received[0]?.auth, 'Bearer ping-secret-0123456789');
      assert.deepEqual(JSON.parse(String(received[0]?.body)), { auth_req_id: started.auth_req_id });
      const tokens = await poll(started.auth_req_id, config);
      assert.equal(decodeJwt(tokens.access_token).sub, alice.id);
    } finally {
      receiver.close();
    }
  });
});

describe('OpenID CIBA: two nodes on PostgreSQL', () => {
  it('completes on the first node a request decided on the second', async () => {
    const nodeA = await startTokenServer('postgres');
    const bob = await createPerson(nodeA, 'bob');
    const agent = await registerDelegatingAgent(nodeA, { allowed: false, ciba: true });
    const config = await agentConfig(nodeA, agent);
    // A second node on the same database and issuer (as behind a load balancer).
    const nodeB = await startTestServer('postgres', {
      databaseUrl: String(nodeA.warden.config.databaseUrl),
      dataDir: nodeA.dataDir,
      env: {
        WARDEN_NODE_ID: 'node-b',
        WARDEN_PORT: String(await freePort()),
        WARDEN_PUBLIC_URL: nodeA.url,
        WARDEN_TOKENS_RESOURCES: GATEWAY,
      },
    });
    const started = await client.initiateBackchannelAuthentication(config, {
      scope: 'openid tickets.read',
      login_hint: 'bob@example.test',
      binding_message: 'Close stale tickets for Bob',
      resource: GATEWAY,
    });
    const approval = (await nodeB.warden.approvals.list({ agent_id: agent.id, limit: 10 })).find(
      (a) => a.arguments.auth_req_id === started.auth_req_id,
    );
    assert.ok(approval);
    await nodeB.warden.approvals.decide(approval.id, 'approve', {
      type: 'user',
      id: bob.id,
      name: bob.username,
      roles: [],
    });
    let grantId: unknown;
    for (let i = 0; i < 100 && !grantId; i++) {
      grantId = (
        await nodeA.warden.tokens.records.find('BackchannelAuthenticationRequest', started.auth_req_id)
      )?.grantId;
      if (!grantId) await new Promise((r) => setTimeout(r, 50));
    }
    const tokens = await client.genericGrantRequest(config, CIBA, { auth_req_id: started.auth_req_id });
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.sub, bob.id);
    assert.equal(claims.grant_id, grantId);
    // Both nodes saw the decision; the one-time consumption let exactly one of them grant.
    const grants = await nodeA.warden.tokens.grants.list({ userId: bob.id, limit: 10 });
    assert.equal(grants.items.length, 1);
  });
});
