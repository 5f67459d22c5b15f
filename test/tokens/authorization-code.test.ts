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
import { AT_TYPE, exchangeToken } from './exchange-support.ts';
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
async function agentCode(
  scope = 'tickets.read',
  decide?: (consent: { url: string; body: string }) => [string, string][],
  who = alice,
) {
  const browser = new JarBrowser(AGENT_CALLBACK);
  const req = await authorizationRequest(agentClient, {
    redirect_uri: AGENT_CALLBACK,
    scope,
    resource: GATEWAY,
    purpose: 'triage my support tickets this week',
  });
  const consent = await signIn(browser, req.url, who);
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
    // The public console client may introspect its own token over HTTP, nothing else.
    assert.equal((await client.tokenIntrospection(consoleClient, tokens.access_token)).active, true);
    const issued = (await events('token.issued')).at(-1);
    assert.equal(issued?.actor.type, 'user');
    assert.equal(issued?.details?.grant_type, 'authorization_code');
    assert.ok((await events('authorization.code_issued')).length >= 1);
    assert.ok((await events('auth.login_succeeded')).some((e) => e.action === 'oauth.authorize.login'));
  });
});

describe('authorization_code + PKCE: the console token as an RFC 8693 subject token', () => {
  it('lets an agent holding a grant exchange the person’s console token; the console is no actor', async () => {
    const { callback, verifier, state } = await consoleCode();
    const tokens = await client.authorizationCodeGrant(consoleClient, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const grant = await server.warden.tokens.createGrant(
      {
        userId: alice.id,
        agentId: delegating.id,
        scopes: ['tickets.read'],
        resources: [GATEWAY],
        purpose: 'read my tickets',
        source: 'api',
        expiresAt: Date.now() + 3600_000,
      },
      { type: 'user', id: alice.id },
    );
    const res = await exchangeToken(
      server,
      delegating,
      {
        subject_token: tokens.access_token,
        subject_token_type: AT_TYPE,
        resource: GATEWAY,
        scope: 'tickets.read',
      },
      { dpop: false },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const claims = decodeJwt(res.body.access_token) as Record<string, any>;
    assert.equal(claims.sub, alice.id);
    assert.deepEqual(claims.act, { sub: delegating.id });
    assert.equal(claims.scope, 'tickets.read');
    assert.equal((await server.warden.tokens.issued.find(claims.jti))?.grantId, grant.id);
  });
});

describe('authorization_code + PKCE: an agent asks a person for delegation', () => {
  it('shows the consent screen and issues a delegated token (sub = person, act.sub = agent) under a consent grant', async () => {
    // `openid` is the console's: an agent asking for it gets a token without it (and no ID token).
    const { landing, consent, verifier, state } = await agentCode('openid tickets.read');
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
    assert.equal(tokens.id_token, undefined);
    const grant = await server.warden.tokens.grants.find(claims.grant_id);
    assert.ok(grant);
    assert.equal(grant.source, 'consent');
    assert.equal(grant.userId, alice.id);
    assert.deepEqual(grant.scopes, ['tickets.read']);
    const record = await server.warden.tokens.issued.find(claims.jti);
    assert.equal(record?.grantId, grant.id);
    assert.equal((await client.tokenIntrospection(consoleClient, tokens.access_token)).active, false);
    assert.equal((await client.tokenIntrospection(agentClient, tokens.access_token)).active, true);
    assert.equal((await server.warden.tokens.introspect(tokens.access_token)).active, true);

    await server.warden.tokens.revokeGrant(
      grant.id,
      { type: 'user', id: alice.id },
      undefined,
      'no longer needed',
    );
    assert.equal((await server.warden.tokens.introspect(tokens.access_token)).active, false);
  });
});

/** Where an authorization request ended: the redirect's query, or the error body. */
async function authorize(params: Record<string, string>, clientId = 'warden-console') {
  const url = new URL(`${server.url}/auth`);
  url.search = new URLSearchParams({ client_id: clientId, response_type: 'code', ...params }).toString();
  const res = await fetch(url, { redirect: 'manual' });
  const location = res.headers.get('location');
  const text = await res.text();
  return {
    status: res.status,
    location: location ? new URL(location, server.url) : undefined,
    body: text.startsWith('{') ? JSON.parse(text) : text,
  };
}

describe('authorization_code + PKCE: the person sees and revokes what they delegated', () => {
  it('lists the consent grant at /v1/me/grants; revoking it there makes its token and unused codes inactive', async () => {
    const dave = await createPerson(server, 'dave', ['approver']);
    const login = await server.call('POST', '/v1/login', { username: 'dave', password: dave.password }, null);
    assert.equal(login.status, 201);
    const daveToken = login.body.token as string;

    const first = await agentCode('tickets.read', undefined, dave);
    const tokens = await client.authorizationCodeGrant(agentClient, new URL(first.landing.url), {
      pkceCodeVerifier: first.verifier,
      expectedState: first.state,
    });
    const second = await agentCode('tickets.write', undefined, dave);

    const mine = await server.call('GET', '/v1/me/grants', undefined, daveToken);
    assert.equal(mine.status, 200);
    assert.equal(mine.body.items.length, 2);
    assert.ok(mine.body.items.every((g: { source: string }) => g.source === 'consent'));
    const grantId = String(decodeJwt(tokens.access_token).grant_id);
    const secondGrant = mine.body.items.find((g: { id: string }) => g.id !== grantId);

    const revoked = await server.call('POST', `/v1/me/grants/${grantId}/revoke`, {}, daveToken);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal((await server.warden.tokens.introspect(tokens.access_token)).active, false);

    // A code not yet exchanged dies with its grant too.
    await server.call('POST', `/v1/me/grants/${secondGrant.id}/revoke`, {}, daveToken);
    await assert.rejects(
      client.authorizationCodeGrant(agentClient, new URL(second.landing.url), {
        pkceCodeVerifier: second.verifier,
        expectedState: second.state,
      }),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
  });
});

describe('authorization_code + PKCE: attacks', () => {
  it('refuses a PKCE downgrade to the plain method', async () => {
    const res = await authorize({
      redirect_uri: CONSOLE_CALLBACK,
      scope: 'openid',
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'plain',
      state: 's1',
    });
    assert.equal(res.location?.searchParams.get('error'), 'invalid_request');
    assert.match(String(res.location?.searchParams.get('error_description')), /code_challenge_method/);
    assert.equal(res.location?.searchParams.get('code'), null);
  });

  it('refuses an authorization request without code_challenge', async () => {
    for (const clientId of ['warden-console', delegating.id]) {
      const res = await authorize(
        {
          redirect_uri: clientId === 'warden-console' ? CONSOLE_CALLBACK : AGENT_CALLBACK,
          scope: clientId === 'warden-console' ? 'openid' : 'tickets.read',
          purpose: 'p',
          state: 's2',
        },
        clientId,
      );
      assert.equal(res.location?.searchParams.get('error'), 'invalid_request', clientId);
      assert.match(String(res.location?.searchParams.get('error_description')), /PKCE/);
    }
    const refused = await events('token.refused');
    assert.ok(refused.some((e) => e.action === 'oauth.authorize' && e.error_code === 'invalid_request'));
  });

  it('refuses a code exchanged with the wrong code_verifier', async () => {
    const { callback, state } = await consoleCode();
    await assert.rejects(
      client.authorizationCodeGrant(consoleClient, callback, {
        pkceCodeVerifier: client.randomPKCECodeVerifier(),
        expectedState: state,
      }),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
    await assert.rejects(
      client.authorizationCodeGrant(consoleClient, callback, { expectedState: state }),
      (e: { error?: string }) => e.error === 'invalid_grant',
      'no verifier at all',
    );
  });

  it('refuses a replayed code and makes the token first issued with it inactive', async () => {
    const { callback, verifier, state } = await consoleCode();
    const first = await client.authorizationCodeGrant(consoleClient, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    assert.equal((await server.warden.tokens.introspect(first.access_token)).active, true);
    await assert.rejects(
      client.authorizationCodeGrant(consoleClient, callback, {
        pkceCodeVerifier: verifier,
        expectedState: state,
      }),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
    assert.equal((await server.warden.tokens.introspect(first.access_token)).active, false);
  });

  it('refuses a replayed delegated code and revokes its delegation grant', async () => {
    const { landing, verifier, state } = await agentCode('tickets.write');
    const callback = new URL(landing.url);
    const first = await client.authorizationCodeGrant(agentClient, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    const grantId = String(decodeJwt(first.access_token).grant_id);
    await assert.rejects(
      client.authorizationCodeGrant(agentClient, callback, {
        pkceCodeVerifier: verifier,
        expectedState: state,
      }),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
    assert.equal((await server.warden.tokens.introspect(first.access_token)).active, false);
    assert.notEqual((await server.warden.tokens.grants.find(grantId))?.revokedAt, null);
  });

  it('refuses a redirect_uri that is not registered', async () => {
    for (const redirect of ['https://attacker.example/callback', `${CONSOLE_CALLBACK}/../evil`]) {
      const res = await authorize({
        redirect_uri: redirect,
        scope: 'openid',
        code_challenge: 'a'.repeat(43),
        code_challenge_method: 'S256',
      });
      assert.equal(res.status, 400, redirect);
      assert.equal(res.location, undefined, 'never redirected to an unregistered URI');
      assert.equal(res.body.error, 'invalid_redirect_uri');
    }
  });

  it('refuses a sign-in without its CSRF token', async () => {
    const browser = new JarBrowser(CONSOLE_CALLBACK);
    const req = await authorizationRequest(consoleClient, {
      redirect_uri: CONSOLE_CALLBACK,
      scope: 'openid',
    });
    const login = await browser.go(req.url.href);
    for (const csrf of [undefined, 'forged-token-value-not-from-the-cookie']) {
      const res = await browser.post(`${login.url}/login`, [
        ...(csrf ? [['csrf', csrf] as [string, string]] : []),
        ['username', alice.username],
        ['password', alice.password],
      ]);
      assert.ok([400, 403].includes(res.status), String(res.status));
      assert.equal(res.url, `${login.url}/login`, 'no redirect: nobody was signed in');
      assert.equal(res.headers.get('content-security-policy')?.includes("default-src 'none'"), true);
    }
    const failed = await events('auth.login_failed');
    assert.ok(failed.some((e) => e.action === 'oauth.authorize.login' && e.error_code === 'ERR_CSRF'));
  });

  it('refuses an agent whose template does not allow delegation', async () => {
    const plain = await registerDelegatingAgent(server, { allowed: false });
    const res = await authorize(
      {
        redirect_uri: AGENT_CALLBACK,
        scope: 'tickets.read',
        purpose: 'anything',
        code_challenge: 'a'.repeat(43),
        code_challenge_method: 'S256',
      },
      plain.id,
    );
    assert.equal(res.body?.error ?? res.location?.searchParams.get('error'), 'unauthorized_client');
    assert.equal(res.location?.searchParams.get('code') ?? null, null);
  });

  it('refuses an agent request without a purpose, or for more than one resource', async () => {
    const base = {
      redirect_uri: AGENT_CALLBACK,
      scope: 'tickets.read',
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'S256',
    };
    const noPurpose = await authorize(base, delegating.id);
    assert.equal(noPurpose.location?.searchParams.get('error'), 'invalid_request');
    assert.match(String(noPurpose.location?.searchParams.get('error_description')), /purpose/);
    const url = new URL(`${server.url}/auth`);
    url.search = new URLSearchParams([
      ...Object.entries({ ...base, client_id: delegating.id, response_type: 'code', purpose: 'p' }),
      ['resource', GATEWAY],
      ['resource', 'https://other.example.test/api'],
    ]).toString();
    const two = await fetch(url, { redirect: 'manual' });
    assert.equal(new URL(String(two.headers.get('location'))).searchParams.get('error'), 'invalid_target');
  });

  it('refuses a delegating template without a redirect URI, or with one in plain http off loopback or with a fragment', async () => {
    for (const uri of [
      'http://agent.example/callback',
      'https://agent.example/cb#frag',
      'javascript:alert(1)',
    ]) {
      const res = await server.call('POST', '/v1/templates', {
        name: `bad-redirect-${uri.length}`,
        spec: {
          description: 'x',
          allowed_scopes: ['a'],
          delegation: { allowed: true, redirect_uris: [uri] },
        },
      });
      assert.equal(res.status, 400, uri);
    }
    const none = await server.call('POST', '/v1/templates', {
      name: 'no-redirect',
      spec: { description: 'x', allowed_scopes: ['a'], delegation: { allowed: true } },
    });
    assert.equal(none.status, 400);
  });

  it('does not grant a scope outside the agent template', async () => {
    // Only scopes outside the template: refused outright.
    const none = await authorize(
      {
        redirect_uri: AGENT_CALLBACK,
        scope: 'admin.all',
        purpose: 'p',
        code_challenge: 'a'.repeat(43),
        code_challenge_method: 'S256',
      },
      delegating.id,
    );
    assert.equal(none.location?.searchParams.get('error'), 'invalid_scope');
    // Mixed: the consent screen offers only the template's; a forged form asking for more is refused.
    const forged = await agentCode('tickets.read admin.all', (consent) => {
      assert.match(consent.body, /id="refused-scopes"[\s\S]*admin\.all/);
      assert.doesNotMatch(consent.body, /name="scope" value="admin\.all"/);
      return [
        ['csrf', formField(consent.body, 'csrf')],
        ['decision', 'approve'],
        ['scope', 'tickets.read'],
        ['scope', 'admin.all'],
        ['duration', '3600'],
      ];
    });
    assert.equal(forged.landing.status, 400);
    assert.match(forged.landing.body, /Not grantable: admin\.all/);
    const denied = await events('authorization.consent_denied');
    assert.ok(denied.some((e) => e.error_code === 'scope_not_grantable'));
    const grants = await server.warden.tokens.grants.list({ userId: alice.id });
    assert.ok(grants.items.every((g) => !g.scopes.includes('admin.all')));
  });

  it('creates one grant when the consent form is submitted twice', async () => {
    const before = (await server.warden.tokens.grants.list({ userId: alice.id })).items.length;
    let form: [string, string][] = [];
    const { consent, browser } = await agentCode('tickets.read', (page) => {
      form = [
        ['csrf', formField(page.body, 'csrf')],
        ['decision', 'approve'],
        ['scope', 'tickets.read'],
        ['duration', '3600'],
      ];
      return form;
    });
    await browser.post(`${consent.url}/consent`, form);
    assert.equal((await server.warden.tokens.grants.list({ userId: alice.id })).items.length, before + 1);
  });

  it('sends the person back with access_denied when they deny, granting nothing', async () => {
    const before = (await server.warden.tokens.grants.list({ userId: alice.id })).items.length;
    const { landing } = await agentCode('tickets.read', (consent) => [
      ['csrf', formField(consent.body, 'csrf')],
      ['decision', 'deny'],
      ['duration', '3600'],
    ]);
    assert.equal(new URL(landing.url).searchParams.get('error'), 'access_denied');
    assert.equal((await server.warden.tokens.grants.list({ userId: alice.id })).items.length, before);
  });

  // Last: the throttle also counts this test's source address, which every test here shares.
  it('throttles wrong passwords at the sign-in page', async () => {
    const bob = await createPerson(server, 'bob');
    const browser = new JarBrowser(CONSOLE_CALLBACK);
    const req = await authorizationRequest(consoleClient, {
      redirect_uri: CONSOLE_CALLBACK,
      scope: 'openid',
    });
    let page = await browser.go(req.url.href);
    const uidUrl = page.url;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      page = await browser.post(`${uidUrl}/login`, [
        ['csrf', formField(page.body, 'csrf')],
        ['username', bob.username],
        ['password', i < 5 ? 'wrong-password-000' : bob.password],
      ]);
      statuses.push(page.status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
    assert.match(page.body, /Too many failed sign-ins/);
  });
});
