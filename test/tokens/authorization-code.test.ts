import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { readEvents } from '../../src/audit/index.ts';
import { formField, JarBrowser } from './browser-jar.ts';
import {
  AGENT_CALLBACK,
  agentConfig,
  authorizationRequest,
  CONSOLE_CALLBACK,
  consoleConfig,
  createPerson,
  registerDelegatingAgent,
} from './code-flow-support.ts';
import { GATEWAY, startTokenServer } from './support.ts';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const server = await startTokenServer('sqlite');
const alice = await createPerson(server, 'alice');
const consoleClient = await consoleConfig(server);
const delegating = await registerDelegatingAgent(server, { allowed: true });
const agentClient = await agentConfig(server, delegating);

async function events(type: string) {
  const all = await readEvents(server.warden.store.db, server.warden.nodeId, 0, 100_000);
  return all.filter((e) => e.type === type);
}

/** Signs in on Warden's page; returns where the browser ended up. */
async function signIn(browser: JarBrowser, authUrl: URL, who = alice) {
  const login = await browser.go(authUrl.href);
  assert.equal(login.status, 200, login.body);
  assert.match(login.url, /\/interaction\/[A-Za-z0-9_-]+$/);
  return browser.post(`${login.url}/login`, [
    ['csrf', formField(login.body, 'csrf')],
    ['username', who.username],
    ['password', who.password],
  ]);
}

/** Runs the console flow up to the callback; returns the callback URL and the PKCE verifier. */
async function consoleCode(browser = new JarBrowser(CONSOLE_CALLBACK)) {
  const req = await authorizationRequest(consoleClient, {
    redirect_uri: CONSOLE_CALLBACK,
    scope: 'openid profile email',
    resource: server.url,
  });
  const landing = await signIn(browser, req.url);
  assert.ok(landing.url.startsWith(CONSOLE_CALLBACK), landing.body);
  return { callback: new URL(landing.url), ...req };
}

/** Runs the agent flow through consent; returns the callback URL and the PKCE verifier. */
async function agentCode(scope = 'tickets.read', decide?: (consent: { url: string; body: string }) => [string, string][]) {
  const browser = new JarBrowser(AGENT_CALLBACK);
  const req = await authorizationRequest(agentClient, {
    redirect_uri: AGENT_CALLBACK,
    scope,
    resource: GATEWAY,
    purpose: 'triage my support tickets this week',
  });
  const consent = await signIn(browser, req.url);
  assert.equal(consent.status, 200, consent.body);
  const form: [string, string][] = decide
    ? decide(consent)
    : [
        ['csrf', formField(consent.body, 'csrf')],
        ['decision', 'approve'],
        ...scope
          .split(' ')
          .filter((s) => s.startsWith('tickets.'))
          .map((s): [string, string] => ['scope', s]),
        ['duration', '86400'],
      ];
  const landing = await browser.post(`${consent.url}/consent`, form);
  return { landing, consent, browser, ...req };
}

describe('authorization_code + PKCE: the console client', () => {
  it('signs a person in and exchanges the code for a user JWT that validateJwtAccessToken accepts', async () => {
    const { callback, verifier, state } = await consoleCode();
    const tokens = await client.authorizationCodeGrant(consoleClient, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.sub, alice.id);
    assert.equal(claims.aud, server.url);
    assert.equal(claims.client_id, 'warden-console');
    assert.equal(claims.act, undefined);
    const issuer = new URL(server.url);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
    const validated = await oauth.validateJwtAccessToken(
      as,
      new Request(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
      server.url,
      insecure,
    );
    assert.equal(validated.sub, alice.id);
    assert.equal((await server.warden.tokens.introspect(tokens.access_token)).active, true);
    const issued = (await events('token.issued')).at(-1);
    assert.equal(issued?.actor.type, 'user');
    assert.equal(issued?.details?.grant_type, 'authorization_code');
    assert.ok((await events('authorization.code_issued')).length >= 1);
    assert.ok((await events('auth.login_succeeded')).some((e) => e.action === 'oauth.authorize.login'));
  });
});

describe('authorization_code + PKCE: an agent asks a person for delegation', () => {
  it('shows the consent screen and issues a delegated token (sub = person, act.sub = agent) under a consent grant', async () => {
    const { landing, consent, verifier, state } = await agentCode('tickets.read');
    assert.match(consent.body, new RegExp(delegating.name));
    assert.match(consent.body, /triage my support tickets this week/);
    assert.match(consent.body, /Acme Agents/);
    assert.ok(landing.url.startsWith(AGENT_CALLBACK), landing.body);
    const tokens = await client.authorizationCodeGrant(agentClient, new URL(landing.url), {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const claims = decodeJwt(tokens.access_token) as Record<string, any>;
    assert.equal(claims.sub, alice.id);
    assert.deepEqual(claims.act, { sub: delegating.id });
    assert.equal(claims.aud, GATEWAY);
    assert.equal(claims.scope, 'tickets.read');
    const grant = await server.warden.tokens.grants.find(claims.grant_id);
    assert.ok(grant);
    assert.equal(grant.source, 'consent');
    assert.equal(grant.userId, alice.id);
    assert.deepEqual(grant.scopes, ['tickets.read']);
    const record = await server.warden.tokens.issued.find(claims.jti);
    assert.equal(record?.grantId, grant.id);
    assert.equal((await server.warden.tokens.introspect(tokens.access_token)).active, true);

    await server.warden.tokens.revokeGrant(grant.id, { type: 'user', id: alice.id }, undefined, 'no longer needed');
    assert.equal((await server.warden.tokens.introspect(tokens.access_token)).active, false);
  });
});
