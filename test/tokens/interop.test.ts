import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { readEvents } from '../../src/audit/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import {
  clientAssertion,
  dpopProof,
  freePort,
  GATEWAY,
  postForm,
  registerAgent,
  startTokenServer,
  type TestAgent,
} from './support.ts';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

function cryptoKeyOf(agent: TestAgent): oauth.CryptoKey {
  return agent.privateKey.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
}

/** An openid-client v6 configuration for the agent, discovered from Warden. */
async function openidClientFor(server: TestServer, agent: TestAgent): Promise<client.Configuration> {
  return client.discovery(
    new URL(server.url),
    agent.id,
    undefined,
    client.PrivateKeyJwt({ key: cryptoKeyOf(agent), kid: agent.kid }),
    { execute: [client.allowInsecureRequests], algorithm: 'oauth2' },
  );
}

/** oauth4webapi with manual DPoP nonce handling, as its docs prescribe. */
async function oauth4Token(
  server: TestServer,
  agent: TestAgent,
  dpopKeys: oauth.CryptoKeyPair,
  parameters: Record<string, string>,
): Promise<{ as: oauth.AuthorizationServer; result: oauth.TokenEndpointResponse }> {
  const issuer = new URL(server.url);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
  const c: oauth.Client = { client_id: agent.id };
  const auth = oauth.PrivateKeyJwt({ key: cryptoKeyOf(agent), kid: agent.kid });
  const DPoP = oauth.DPoP(c, dpopKeys);
  const attempt = async () =>
    oauth.processClientCredentialsResponse(
      as,
      c,
      await oauth.clientCredentialsGrantRequest(as, c, auth, new URLSearchParams(parameters), {
        DPoP,
        ...insecure,
      }),
    );
  try {
    return { as, result: await attempt() };
  } catch (e) {
    if (!oauth.isDPoPNonceError(e)) throw e;
    return { as, result: await attempt() };
  }
}

describe('token service interop (sqlite)', async () => {
  const server = await startTokenServer('sqlite');
  const agent = await registerAgent(server, { scopes: ['tickets.read', 'tickets.write'], lifetime: 120 });

  it('publishes RFC 8414 metadata equal to the OpenID discovery document', async () => {
    const rfc8414 = (await (
      await fetch(`${server.url}/.well-known/oauth-authorization-server`)
    ).json()) as any;
    const openid = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as any;
    assert.deepEqual(rfc8414, openid);
    assert.equal(rfc8414.issuer, server.url);
    // No shared secrets: keys, or a provider's attestation of the agent instance; `none` is the
    // public console client's (PKCE-bound codes).
    assert.deepEqual(rfc8414.token_endpoint_auth_methods_supported, [
      'private_key_jwt',
      'none',
      'attest_jwt_client_auth',
      'attest_jwt_client_auth_dpop',
    ]);
    assert.equal(rfc8414.challenge_endpoint, `${server.url}/challenge`);
    assert.ok(rfc8414.grant_types_supported.includes('client_credentials'));
    assert.ok(rfc8414.grant_types_supported.includes('authorization_code'));
    assert.deepEqual(rfc8414.response_types_supported, ['code']);
    assert.deepEqual(rfc8414.code_challenge_methods_supported, ['S256']);
    assert.equal(rfc8414.introspection_endpoint, `${server.url}/token/introspection`);
    assert.equal(rfc8414.revocation_endpoint, `${server.url}/token/revocation`);
    assert.ok(rfc8414.dpop_signing_alg_values_supported.includes('ES256'));
    assert.deepEqual(rfc8414.authorization_details_types_supported, []);
    for (const alg of rfc8414.token_endpoint_auth_signing_alg_values_supported) {
      assert.doesNotMatch(alg, /^(HS|none)/);
    }
  });

  it('serves the signing keys as a public JWKS', async () => {
    const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as any;
    assert.equal(jwks.keys.length, 1);
    const [key] = jwks.keys;
    assert.equal(key.kty, 'EC');
    assert.equal(key.crv, 'P-256');
    assert.equal(key.alg, 'ES256');
    assert.equal(key.d, undefined);
    assert.deepEqual(server.warden.tokens.publishedKids, [key.kid]);
  });

  it('issues a DPoP-bound RFC 9068 token to openid-client with private_key_jwt', async () => {
    const config = await openidClientFor(server, agent);
    const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    const tokens = await client.clientCredentialsGrant(
      config,
      { scope: 'tickets.read', resource: GATEWAY },
      { DPoP: dpop },
    );
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    assert.equal(tokens.expires_in, 120);
    const header = decodeProtectedHeader(tokens.access_token);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, 'ES256');
    const claims = decodeJwt(tokens.access_token) as Record<string, any>;
    assert.equal(claims.iss, server.url);
    assert.equal(claims.sub, agent.id);
    assert.equal(claims.client_id, agent.id);
    assert.equal(claims.aud, GATEWAY);
    assert.equal(claims.scope, 'tickets.read');
    assert.equal(claims.exp - claims.iat, 120);
    assert.equal(typeof claims.jti, 'string');
    assert.equal(typeof claims.cnf.jkt, 'string');
    assert.equal(claims.agent_template.version, 1);
  });

  it('narrows the scope to the template and says so in the response', async () => {
    const { result } = await oauth4Token(server, agent, await oauth.generateKeyPair('ES256'), {
      scope: 'tickets.read admin.everything',
    });
    assert.equal(result.scope, 'tickets.read');
    assert.equal(decodeJwt(result.access_token).scope, 'tickets.read');
    assert.equal(decodeJwt(result.access_token).aud, GATEWAY, 'no resource: the first configured one');
  });

  it('issues tokens oauth4webapi.validateJwtAccessToken accepts with their DPoP proof', async () => {
    const keys = await oauth.generateKeyPair('ES256');
    const { as, result } = await oauth4Token(server, agent, keys, {
      scope: 'tickets.write',
      resource: GATEWAY,
    });
    const url = `${GATEWAY}/tools`;
    const ath = oauth4AccessTokenHash(result.access_token);
    const request = new Request(url, {
      headers: {
        authorization: `DPoP ${result.access_token}`,
        dpop: await dpopProof(keys, { htm: 'GET', htu: url, ath }),
      },
    });
    const claims = await oauth.validateJwtAccessToken(as, request, GATEWAY, {
      requireDPoP: true,
      ...insecure,
    });
    assert.equal(claims.client_id, agent.id);
    assert.equal(claims.scope, 'tickets.write');
  });

  it('introspects an active token for an authenticated client and revokes it', async () => {
    const config = await openidClientFor(server, agent);
    const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    const tokens = await client.clientCredentialsGrant(config, { scope: 'tickets.read' }, { DPoP: dpop });
    const active = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(active.active, true);
    assert.equal(active.client_id, agent.id);
    assert.equal(active.sub, agent.id);
    assert.equal(active.scope, 'tickets.read');
    assert.equal(active.token_type, 'DPoP');
    assert.equal(
      (active.cnf as { jkt: string }).jkt,
      (decodeJwt(tokens.access_token).cnf as { jkt: string }).jkt,
    );
    await client.tokenRevocation(config, tokens.access_token);
    const after = await client.tokenIntrospection(config, tokens.access_token);
    assert.deepEqual({ ...after }, { active: false });
    // Revoking again, or revoking something unknown, is still a success (RFC 7009).
    await client.tokenRevocation(config, tokens.access_token);
    await client.tokenRevocation(config, 'not-a-token');
  });

  it('answers {"active":false} and nothing else for an unknown token', async () => {
    const config = await openidClientFor(server, agent);
    const res = await client.tokenIntrospection(config, 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln');
    assert.deepEqual({ ...res }, { active: false });
  });

  it('records token.issued with the scopes and never the token itself', async () => {
    const events = await readEvents(server.warden.store.db, server.warden.nodeId, 0, 1000);
    const issued = events.filter((e) => e.type === 'token.issued');
    assert.ok(issued.length >= 3);
    const last = issued.at(-1);
    assert.equal(last?.actor.id, agent.id);
    assert.equal(last?.outcome, 'success');
    assert.equal(typeof last?.details?.scope, 'string');
    const text = JSON.stringify(events);
    assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\./, 'no JWT in the ledger');
  });
});

function oauth4AccessTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

for (const backend of BACKENDS) {
  describe(`token lifecycle on ${backend}`, () => {
    it('makes tokens inactive at once when the agent is suspended or its provider distrusted', async () => {
      const server = await startTokenServer(backend);
      const subject = await registerAgent(server, { scopes: ['a'] });
      const inspector = await registerAgent(server, { scopes: ['a'] });
      const inspectorConfig = await openidClientFor(server, inspector);
      const subjectConfig = await openidClientFor(server, subject);
      const grant = async (config: client.Configuration) =>
        client.clientCredentialsGrant(
          config,
          { scope: 'a' },
          {
            DPoP: client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256')),
          },
        );
      const first = await grant(subjectConfig);
      assert.equal((await client.tokenIntrospection(inspectorConfig, first.access_token)).active, true);
      const suspended = await server.call('POST', `/v1/agents/${subject.id}/suspend`, { reason: 'test' });
      assert.equal(suspended.status, 200);
      assert.deepEqual(
        { ...(await client.tokenIntrospection(inspectorConfig, first.access_token)) },
        { active: false },
      );
      await assert.rejects(grant(subjectConfig), (e: unknown) => {
        assert.equal((e as { error?: string }).error, 'invalid_client');
        return true;
      });
      const events = await readEvents(server.warden.store.db, server.warden.nodeId, 0, 1000);
      const refused = events.filter((e) => e.type === 'token.refused' && e.actor.id === subject.id);
      assert.equal(refused.at(-1)?.error_code, 'invalid_client');
      assert.equal(refused.at(-1)?.details?.reason, 'agent_suspended');

      // Distrusting the inspector's provider: its own token goes inactive, seen by a third agent.
      const third = await registerAgent(server, { scopes: ['a'] });
      const thirdConfig = await openidClientFor(server, third);
      const second = await grant(inspectorConfig);
      assert.equal((await client.tokenIntrospection(thirdConfig, second.access_token)).active, true);
      const distrust = await server.call('POST', `/v1/providers/${inspector.providerName}/distrust`, {
        reason: 'test',
      });
      assert.equal(distrust.status, 200);
      assert.deepEqual(
        { ...(await client.tokenIntrospection(thirdConfig, second.access_token)) },
        { active: false },
      );
    });

    it('refuses a replayed client assertion across two nodes on one database', async () => {
      const nodeA = await startTokenServer(backend);
      const agent = await registerAgent(nodeA, { scopes: ['a'], requireDpop: false });
      // A second node on the same database and issuer (as behind a load balancer).
      const nodeB = await startTestServer(backend, {
        databaseUrl: nodeA.warden.config.databaseUrl ?? `sqlite:${nodeA.dataDir}/warden.db`,
        dataDir: nodeA.dataDir,
        env: {
          WARDEN_NODE_ID: 'node-b',
          WARDEN_PORT: String(await freePort()),
          WARDEN_PUBLIC_URL: nodeA.url,
          WARDEN_TOKENS_RESOURCES: GATEWAY,
        },
      });
      const assertion = await clientAssertion(agent, nodeA.url);
      const form = {
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      };
      const ok = await postForm(`${nodeA.url}/token`, form);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const onB = await postForm(`${nodeB.url}/token`, form);
      assert.equal(onB.status, 401);
      assert.equal(onB.body.error, 'invalid_client');
      const onA = await postForm(`${nodeA.url}/token`, form);
      assert.equal(onA.status, 401);
      // A fresh assertion works on node B: the refusal was the replay, nothing else.
      const fresh = await postForm(`${nodeB.url}/token`, {
        ...form,
        client_assertion: await clientAssertion(agent, nodeA.url),
      });
      assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    });
  });
}
