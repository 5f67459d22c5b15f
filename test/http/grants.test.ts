import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startTestServer } from '../support/server.ts';
import { exchangeToken, JWT_TYPE } from '../tokens/exchange-support.ts';
import { freePort, GATEWAY, registerAgent } from '../tokens/support.ts';

const IDP = 'https://idp.example.test';

describe('delegation grants API', async () => {
  // An external IdP configured with an inline JWKS: the test holds its private key.
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const port = await freePort();
  const s = await startTestServer('sqlite', {
    env: {
      WARDEN_PORT: String(port),
      WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}`,
      WARDEN_TOKENS_RESOURCES: GATEWAY,
      WARDEN_TOKENS_TRUSTED_ISSUERS: JSON.stringify([
        {
          issuer: IDP,
          jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] },
          audience: 'warden',
          algorithms: ['ES256'],
          userClaim: 'preferred_username',
          userMatch: 'username',
        },
      ]),
    },
  });
  const agent = await registerAgent(s, { scopes: ['tickets.read', 'tickets.write'] });
  const userToken = async (username: string, role: string) => {
    const created = await s.call('POST', '/v1/users', { username, roles: [role] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const t = await s.call('POST', '/v1/tokens', { name: 't', role, user_id: created.body.id });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    return { id: created.body.id as string, token: t.body.token as string };
  };
  const alice = await userToken('alice', 'approver');
  const bob = await userToken('bob', 'agent_owner');
  const idToken = async (username: string) =>
    new SignJWT({ preferred_username: username })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(IDP)
      .setAudience('warden')
      .setSubject(`idp-${username}`)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);

  it('lets an admin create a grant within the agent template, and refuses one beyond it', async () => {
    const res = await s.call('POST', '/v1/grants', {
      user: 'alice',
      agent: agent.name,
      scopes: ['tickets.read'],
      purpose: 'triage my tickets',
      duration_seconds: 3600,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.user_id, alice.id);
    assert.equal(res.body.agent_id, agent.id);
    assert.equal(res.body.source, 'api');
    assert.equal(res.body.active, true);
    assert.deepEqual(res.body.resources, []);
    const expires = Date.parse(res.body.expires_at) - Date.parse(res.body.created_at);
    assert.ok(Math.abs(expires - 3_600_000) < 2000);

    const beyond = await s.call('POST', '/v1/grants', {
      user: 'alice',
      agent: agent.id,
      scopes: ['tickets.read', 'payroll.write'],
      purpose: 'x',
    });
    assert.equal(beyond.status, 400);
    assert.match(beyond.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(beyond.body.code, 'ERR_SCOPE_NOT_ALLOWED');
    const unknownField = await s.call('POST', '/v1/grants', {
      user: 'alice',
      agent: agent.id,
      scopes: ['tickets.read'],
      purpose: 'x',
      admin: true,
    });
    assert.equal(unknownField.status, 400);
    const noUser = await s.call('POST', '/v1/grants', {
      user: 'nobody',
      agent: agent.id,
      scopes: ['tickets.read'],
      purpose: 'x',
    });
    assert.equal(noUser.status, 404);
    const notAdmin = await s.call(
      'POST',
      '/v1/grants',
      { user: 'alice', agent: agent.id, scopes: ['tickets.read'], purpose: 'x' },
      alice.token,
    );
    assert.equal(notAdmin.status, 403);
  });

  it('lists grants for admins by user and agent, and each user only their own', async () => {
    const forBob = await s.call('POST', '/v1/grants', {
      user: bob.id,
      agent: agent.id,
      scopes: ['tickets.write'],
      purpose: 'bob’s errands',
    });
    assert.equal(forBob.status, 201);
    const byUser = await s.call('GET', `/v1/grants?user_id=${bob.id}`);
    assert.deepEqual(
      byUser.body.items.map((g: any) => g.id),
      [forBob.body.id],
    );
    const byAgent = await s.call('GET', `/v1/grants?agent_id=${agent.id}`);
    assert.ok(byAgent.body.items.length >= 2);
    const mine = await s.call('GET', '/v1/me/grants', undefined, alice.token);
    assert.equal(mine.status, 200);
    assert.ok(mine.body.items.length >= 1);
    assert.ok(mine.body.items.every((g: any) => g.user_id === alice.id));
    assert.equal((await s.call('GET', '/v1/grants', undefined, alice.token)).status, 403);
    assert.equal(
      (await s.call('GET', '/v1/me/grants?include_inactive=maybe', undefined, alice.token)).status,
      400,
    );
  });

  it('lets a user revoke their own grant, killing the tokens exchanged under it, but not someone else’s', async () => {
    const g = await s.call('POST', '/v1/grants', {
      user: 'alice',
      agent: agent.id,
      scopes: ['tickets.read', 'tickets.write'],
      purpose: 'revocable',
    });
    const bobs = (await s.call('GET', `/v1/grants?user_id=${bob.id}`)).body.items[0];
    const exchanged = await exchangeToken(s, agent, {
      subject_token: await idToken('alice'),
      subject_token_type: JWT_TYPE,
      scope: 'tickets.write',
    });
    assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
    assert.equal((await s.warden.tokens.introspect(exchanged.body.access_token)).active, true);

    const foreign = await s.call('POST', `/v1/me/grants/${bobs.id}/revoke`, {}, alice.token);
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body.code, 'ERR_GRANT_NOT_FOUND');
    const missing = await s.call('POST', `/v1/me/grants/${randomUUID()}/revoke`, {}, alice.token);
    assert.equal(missing.status, 404);

    const revoked = await s.call(
      'POST',
      `/v1/me/grants/${g.body.id}/revoke`,
      { reason: 'no longer needed' },
      alice.token,
    );
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.grant.active, false);
    assert.equal(revoked.body.grant.revoke_reason, 'no longer needed');
    assert.equal(revoked.body.grant.revoked_by, alice.id);
    assert.equal(revoked.body.revoked_tokens, 1);
    assert.deepEqual(await s.warden.tokens.introspect(exchanged.body.access_token), { active: false });
    const mine = await s.call('GET', '/v1/me/grants?include_inactive=true', undefined, alice.token);
    assert.ok(mine.body.items.some((x: any) => x.id === g.body.id && x.active === false));
    const active = await s.call('GET', '/v1/me/grants', undefined, alice.token);
    assert.ok(!active.body.items.some((x: any) => x.id === g.body.id));
  });

  it('lets an admin revoke any grant, and shows it', async () => {
    const bobs = (await s.call('GET', `/v1/grants?user_id=${bob.id}`)).body.items[0];
    const r = await s.call('POST', `/v1/grants/${bobs.id}/revoke`, { reason: 'offboarding' });
    assert.equal(r.status, 200);
    assert.equal(r.body.grant.revoke_reason, 'offboarding');
    const shown = await s.call('GET', `/v1/grants/${bobs.id}`);
    assert.equal(shown.body.active, false);
    assert.equal((await s.call('POST', `/v1/grants/${bobs.id}/revoke`, undefined, bob.token)).status, 403);
    assert.equal((await s.call('GET', `/v1/grants/${randomUUID()}`)).status, 404);
  });

  it('documents the grant routes in the OpenAPI document', async () => {
    const doc = (await s.call('GET', '/openapi.json', undefined, null)).body;
    for (const path of [
      '/v1/me/grants',
      '/v1/me/grants/{id}/revoke',
      '/v1/grants',
      '/v1/grants/{id}/revoke',
    ]) {
      assert.ok(doc.paths[path], `${path} documented`);
    }
    assert.deepEqual(doc.paths['/v1/grants'].post['x-roles'], ['admin']);
  });
});
