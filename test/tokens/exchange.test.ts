import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, importJWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { readEvents } from '../../src/audit/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { AT_TYPE, EXCHANGE, exchangeToken, ID_TOKEN_TYPE, JWT_TYPE } from './exchange-support.ts';
import { startExternalIdp } from './external-idp.ts';
import {
  dpopKeys,
  dpopProof,
  freePort,
  GATEWAY,
  registerAgent,
  requestToken,
  type TestAgent,
} from './support.ts';

const HOUR = 3_600_000;
const insecure = { [oauth.allowInsecureRequests]: true } as const;

function cryptoKeyOf(agent: TestAgent): oauth.CryptoKey {
  return agent.privateKey.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
}

for (const backend of BACKENDS)
  describe(`token exchange (RFC 8693) on behalf of users on ${backend}`, async () => {
    const idp = await startExternalIdp();
    const port = await freePort();
    const mcp = `http://127.0.0.1:${port}/mcp`;
    const server: TestServer = await startTestServer(backend, {
      env: {
        WARDEN_PORT: String(port),
        WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}`,
        WARDEN_TOKENS_RESOURCES: `${GATEWAY},${mcp}`,
        WARDEN_TOKENS_MAX_DELEGATION_DEPTH: '2',
        WARDEN_TOKENS_TRUSTED_ISSUERS: JSON.stringify([
          { issuer: idp.issuer, jwksUri: `${idp.issuer}/jwks`, audience: idp.clientId },
        ]),
      },
    });
    const { tokens, identity, store, auditor } = server.warden;
    const scopes = ['tickets.read', 'tickets.write', 'tickets.delete'];
    const agentA = await registerAgent(server, { scopes, lifetime: 600 });
    const agentB = await registerAgent(server, { scopes: ['tickets.read', 'tickets.write'] });
    const agentC = await registerAgent(server, { scopes });
    const users = identity.users;
    const alice = await users.create(
      { username: 'alice', email: 'alice@example.test', roles: [] },
      undefined,
    );
    const bob = await users.create({ username: 'bob', email: 'bob@example.test', roles: [] }, undefined);
    const admin = { type: 'user' as const, id: 'test-admin' };
    const grant = (
      userId: string,
      agent: TestAgent,
      grantScopes: string[],
      extra: Record<string, unknown> = {},
    ) =>
      tokens.createGrant(
        {
          userId,
          agentId: agent.id,
          scopes: grantScopes,
          purpose: 'help with my tickets',
          source: 'api',
          expiresAt: Date.now() + HOUR,
          ...extra,
        },
        admin,
      );
    const aliceToA = await grant(alice.id, agentA, ['tickets.read', 'tickets.write']);
    await grant(alice.id, agentB, ['tickets.read', 'tickets.write']);
    await grant(alice.id, agentC, ['tickets.read']);
    const aliceIdToken = await idp.idToken({ sub: 'idp-alice', email: 'alice@example.test' });
    const idpKey = await importJWK(idp.privateJwk, 'RS256');

    /** An ID token the test forges with the IdP's own key (or another), to attack one check at a time. */
    const forged = async (
      claims: Record<string, unknown>,
      header: Record<string, unknown> = {},
      key: Parameters<SignJWT['sign']>[0] = idpKey,
    ) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        iss: idp.issuer,
        aud: idp.clientId,
        sub: 'idp-alice',
        email: 'alice@example.test',
        iat: now,
        exp: now + 300,
        ...claims,
      })
        .setProtectedHeader({ alg: 'RS256', kid: 'idp-1', ...header } as never)
        .sign(key);
    };

    const refusals = async (reason: string) =>
      (await readEvents(store.db, auditor.partition, 0, 100_000)).filter(
        (e) => e.type === 'token.refused' && e.details?.reason === reason,
      );

    /** Exchanges and asserts the OAuth error and the audited reason. */
    const refused = async (
      agent: TestAgent,
      params: Record<string, string>,
      error: string,
      reason: string,
    ): Promise<void> => {
      const before = (await refusals(reason)).length;
      const res = await exchangeToken(server, agent, params);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error, error, JSON.stringify(res.body));
      assert.equal(res.body.access_token, undefined);
      const after = await refusals(reason);
      assert.equal(after.length, before + 1, `one token.refused event with reason ${reason}`);
      assert.equal(after.at(-1)?.details?.grant_type, EXCHANGE);
      assert.equal(after.at(-1)?.error_code, error);
    };

    it('exchanges an external IdP token for a DPoP-bound delegated token with openid-client', async () => {
      const config = await client.discovery(
        new URL(server.url),
        agentA.id,
        undefined,
        client.PrivateKeyJwt({ key: cryptoKeyOf(agentA), kid: agentA.kid }),
        { execute: [client.allowInsecureRequests], algorithm: 'oauth2' },
      );
      assert.ok(config.serverMetadata().grant_types_supported?.includes(EXCHANGE), 'advertised in metadata');
      const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
      const response = await client.genericGrantRequest(
        config,
        EXCHANGE,
        {
          subject_token: aliceIdToken,
          subject_token_type: JWT_TYPE,
          scope: 'tickets.read',
          resource: GATEWAY,
        },
        { DPoP: dpop },
      );
      assert.equal(response.token_type.toLowerCase(), 'dpop');
      assert.equal(response.issued_token_type, AT_TYPE);
      assert.equal(response.scope, 'tickets.read');
      const claims = decodeJwt(response.access_token) as Record<string, any>;
      assert.equal(claims.sub, alice.id, 'sub is the user');
      assert.deepEqual(claims.act, { sub: agentA.id }, 'act names the agent (RFC 8693 §4.1)');
      assert.equal(claims.client_id, agentA.id);
      assert.equal(claims.aud, GATEWAY);
      assert.equal(claims.scope, 'tickets.read');
      assert.ok(claims.cnf?.jkt, 'DPoP-bound');
      assert.ok(claims.exp - claims.iat <= 600);

      const introspected = await tokens.introspect(response.access_token);
      assert.equal(introspected.active, true);
      assert.deepEqual((introspected as any).act, { sub: agentA.id });
      const record = await tokens.issued.find(claims.jti);
      assert.equal(record?.grantId, aliceToA.id);
      assert.equal(record?.sub, alice.id);

      const issued = (await readEvents(store.db, auditor.partition, 0, 100_000)).find(
        (e) => e.type === 'token.issued' && e.resource?.id === claims.jti,
      );
      assert.equal(issued?.details?.grant_type, EXCHANGE);
      assert.equal(issued?.details?.grant_id, aliceToA.id);
      assert.equal(issued?.details?.subject, alice.id);
      assert.equal(issued?.details?.subject_issuer, idp.issuer);
      assert.deepEqual(issued?.details?.act, { sub: agentA.id });
      assert.equal(issued?.actor.on_behalf_of?.id, alice.id);
      assert.deepEqual(issued?.actor.chain, [{ type: 'agent', id: agentA.id }]);
    });

    it('nests act when a second agent exchanges a delegated token, with oauth4webapi', async () => {
      const first = await exchangeToken(server, agentA, {
        subject_token: aliceIdToken,
        subject_token_type: JWT_TYPE,
        scope: 'tickets.read tickets.write',
      });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const issuer = new URL(server.url);
      const as = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
      );
      const c: oauth.Client = { client_id: agentB.id };
      const auth = oauth.PrivateKeyJwt({ key: cryptoKeyOf(agentB), kid: agentB.kid });
      const DPoP = oauth.DPoP(c, await dpopKeys());
      const attempt = async () =>
        oauth.processGenericTokenEndpointResponse(
          as,
          c,
          await oauth.genericTokenEndpointRequest(
            as,
            c,
            auth,
            EXCHANGE,
            new URLSearchParams({
              subject_token: first.body.access_token,
              subject_token_type: AT_TYPE,
              scope: 'tickets.read',
            }),
            { DPoP, ...insecure },
          ),
        );
      let result: oauth.TokenEndpointResponse;
      try {
        result = await attempt();
      } catch (e) {
        if (!oauth.isDPoPNonceError(e)) throw e;
        result = await attempt();
      }
      const claims = decodeJwt(result.access_token) as Record<string, any>;
      assert.equal(claims.sub, alice.id);
      assert.deepEqual(claims.act, { sub: agentB.id, act: { sub: agentA.id } });
      assert.equal(claims.client_id, agentB.id);
      assert.equal(claims.scope, 'tickets.read');
      assert.ok(
        claims.exp <= (decodeJwt(first.body.access_token).exp as number),
        'never outlives its subject',
      );
      const record = await tokens.issued.find(claims.jti);
      assert.notEqual(record?.grantId, aliceToA.id, 'issued under B’s own grant');
      assert.ok((await tokens.issued.grantsOf(claims.jti)).includes(aliceToA.id), 'depends on A’s grant too');
    });

    it('narrows a nested exchange to the subject token scope and refuses more', async () => {
      const first = await exchangeToken(server, agentA, {
        subject_token: aliceIdToken,
        subject_token_type: JWT_TYPE,
        scope: 'tickets.read',
      });
      assert.equal(first.status, 200);
      const nested = await exchangeToken(server, agentB, {
        subject_token: first.body.access_token,
        subject_token_type: AT_TYPE,
      });
      assert.equal(nested.status, 200, JSON.stringify(nested.body));
      assert.equal(nested.body.scope, 'tickets.read', 'grant ∩ template ∩ subject token');
      await refused(
        agentB,
        { subject_token: first.body.access_token, subject_token_type: AT_TYPE, scope: 'tickets.write' },
        'invalid_scope',
        'scope_exceeds_subject',
      );
    });

    it('lets the current actor re-exchange its own delegated token for less, without growing the chain', async () => {
      const first = await exchangeToken(server, agentA, {
        subject_token: aliceIdToken,
        subject_token_type: JWT_TYPE,
        scope: 'tickets.read tickets.write',
      });
      const narrowed = await exchangeToken(server, agentA, {
        subject_token: first.body.access_token,
        subject_token_type: AT_TYPE,
        scope: 'tickets.read',
        resource: mcp,
      });
      assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
      const claims = decodeJwt(narrowed.body.access_token) as Record<string, any>;
      assert.deepEqual(claims.act, { sub: agentA.id });
      assert.equal(claims.aud, mcp);
      assert.equal(claims.scope, 'tickets.read');
    });

    it('refuses a token exchange asking for more scope than the grant', async () => {
      await refused(
        agentA,
        { subject_token: aliceIdToken, subject_token_type: JWT_TYPE, scope: 'tickets.read tickets.delete' },
        'invalid_scope',
        'scope_exceeds_grant',
      );
    });

    it('refuses a token exchange without a grant', async () => {
      const bobToken = await idp.idToken({ sub: 'idp-bob', email: 'bob@example.test' });
      await refused(
        agentA,
        { subject_token: bobToken, subject_token_type: JWT_TYPE },
        'invalid_grant',
        'no_active_grant',
      );
    });

    it('refuses a token exchange under a revoked grant', async () => {
      const g = await grant(bob.id, agentC, ['tickets.read']);
      const bobToken = await idp.idToken({ sub: 'idp-bob', email: 'bob@example.test' });
      assert.equal(
        (await exchangeToken(server, agentC, { subject_token: bobToken, subject_token_type: JWT_TYPE }))
          .status,
        200,
      );
      await tokens.revokeGrant(g.id, admin);
      await refused(
        agentC,
        { subject_token: bobToken, subject_token_type: JWT_TYPE },
        'invalid_grant',
        'no_active_grant',
      );
    });

    it('refuses a token exchange under an expired grant', async () => {
      const carol = await users.create(
        { username: 'carol', email: 'carol@example.test', roles: [] },
        undefined,
      );
      await grant(carol.id, agentA, ['tickets.read'], { expiresAt: Date.now() + 1200 });
      const carolToken = await idp.idToken({ sub: 'idp-carol', email: 'carol@example.test' });
      await sleep(1300);
      await refused(
        agentA,
        { subject_token: carolToken, subject_token_type: JWT_TYPE },
        'invalid_grant',
        'no_active_grant',
      );
    });

    it('caps the token lifetime at the grant expiry', async () => {
      const dave = await users.create({ username: 'dave', email: 'dave@example.test', roles: [] }, undefined);
      await grant(dave.id, agentA, ['tickets.read'], { expiresAt: Date.now() + 90_000 });
      const res = await exchangeToken(server, agentA, {
        subject_token: await idp.idToken({ sub: 'idp-dave', email: 'dave@example.test' }),
        subject_token_type: JWT_TYPE,
      });
      assert.equal(res.status, 200);
      assert.ok(res.body.expires_in <= 90, `expires_in ${res.body.expires_in} within the grant`);
    });

    it('refuses a subject token from an untrusted issuer (wrong iss)', async () => {
      await refused(
        agentA,
        { subject_token: await forged({ iss: 'https://idp.evil.example' }), subject_token_type: JWT_TYPE },
        'invalid_request',
        'subject_issuer_untrusted',
      );
    });

    it('refuses a subject token for another audience (wrong aud)', async () => {
      await refused(
        agentA,
        { subject_token: await forged({ aud: 'some-other-client' }), subject_token_type: JWT_TYPE },
        'invalid_request',
        'subject_token_aud_invalid',
      );
    });

    it('refuses an expired subject token', async () => {
      const past = Math.floor(Date.now() / 1000) - 600;
      await refused(
        agentA,
        { subject_token: await forged({ iat: past - 300, exp: past }), subject_token_type: JWT_TYPE },
        'invalid_request',
        'subject_token_expired',
      );
    });

    it('refuses a subject token with a bad signature', async () => {
      const { privateKey } = await crypto.subtle.generateKey(
        {
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        },
        true,
        ['sign', 'verify'],
      );
      await refused(
        agentA,
        { subject_token: await forged({}, {}, privateKey), subject_token_type: JWT_TYPE },
        'invalid_request',
        'subject_token_bad_signature',
      );
      // A genuine token with one claim changed after signing.
      const [h, p, s] = aliceIdToken.split('.') as [string, string, string];
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
      payload.email = 'bob@example.test';
      const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
      await refused(
        agentA,
        { subject_token: tampered, subject_token_type: JWT_TYPE },
        'invalid_request',
        'subject_token_bad_signature',
      );
    });

    it('refuses an unsigned subject token (alg none)', async () => {
      const now = Math.floor(Date.now() / 1000);
      const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const none = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({
        iss: idp.issuer,
        aud: idp.clientId,
        sub: 'idp-alice',
        email: 'alice@example.test',
        iat: now,
        exp: now + 300,
      })}.`;
      await refused(
        agentA,
        { subject_token: none, subject_token_type: JWT_TYPE },
        'invalid_request',
        'subject_token_alg_not_allowed',
      );
      // A Warden-looking token without a signature is no better.
      const wardenNone = `${enc({ alg: 'none', typ: 'at+jwt' })}.${enc({ iss: server.url, sub: alice.id, jti: 'x' })}.`;
      await refused(
        agentA,
        { subject_token: wardenNone, subject_token_type: AT_TYPE },
        'invalid_request',
        'subject_token_inactive',
      );
    });

    it('refuses a subject token whose may_act names another agent', async () => {
      await refused(
        agentA,
        { subject_token: await forged({ may_act: { sub: agentB.id } }), subject_token_type: JWT_TYPE },
        'invalid_request',
        'may_act_mismatch',
      );
      const allowed = await exchangeToken(server, agentA, {
        subject_token: await forged({ may_act: { sub: agentA.id } }),
        subject_token_type: JWT_TYPE,
      });
      assert.equal(allowed.status, 200, 'may_act naming the client is honoured');
    });

    it('refuses an exchange that would exceed the delegation depth', async () => {
      const one = await exchangeToken(server, agentA, {
        subject_token: aliceIdToken,
        subject_token_type: JWT_TYPE,
      });
      const two = await exchangeToken(server, agentB, {
        subject_token: one.body.access_token,
        subject_token_type: AT_TYPE,
        scope: 'tickets.read',
      });
      assert.equal(two.status, 200);
      await refused(
        agentC,
        { subject_token: two.body.access_token, subject_token_type: AT_TYPE, scope: 'tickets.read' },
        'invalid_request',
        'delegation_depth_exceeded',
      );
    });

    it('refuses a token exchange by a suspended agent', async () => {
      const agent = await registerAgent(server, { scopes });
      const erin = await users.create({ username: 'erin', email: 'erin@example.test', roles: [] }, undefined);
      await grant(erin.id, agent, ['tickets.read']);
      const erinToken = await idp.idToken({ sub: 'idp-erin', email: 'erin@example.test' });
      const suspended = await server.call('POST', `/v1/agents/${agent.id}/suspend`, { reason: 'test' });
      assert.equal(suspended.status, 200);
      const before = (await refusals('agent_suspended')).length;
      const res = await exchangeToken(server, agent, {
        subject_token: erinToken,
        subject_token_type: JWT_TYPE,
      });
      assert.equal(res.status, 401);
      assert.equal(res.body.error, 'invalid_client');
      assert.equal((await refusals('agent_suspended')).length, before + 1);
    });

    it('refuses a delegated subject token once the agent it was issued to is suspended', async () => {
      const holder = await registerAgent(server, { scopes });
      const hal = await users.create(
        { username: `hal-${backend}`, email: 'hal@example.test', roles: [] },
        undefined,
      );
      await grant(hal.id, holder, ['tickets.read']);
      await grant(hal.id, agentB, ['tickets.read']);
      const first = await exchangeToken(server, holder, {
        subject_token: await idp.idToken({ sub: 'idp-hal', email: 'hal@example.test' }),
        subject_token_type: JWT_TYPE,
      });
      assert.equal(first.status, 200);
      assert.equal(
        (await server.call('POST', `/v1/agents/${holder.id}/suspend`, { reason: 'test' })).status,
        200,
      );
      await refused(
        agentB,
        { subject_token: first.body.access_token, subject_token_type: AT_TYPE },
        'invalid_request',
        'subject_token_inactive',
      );
    });

    it('refuses a requested token type it cannot issue', async () => {
      await refused(
        agentA,
        {
          subject_token: aliceIdToken,
          subject_token_type: JWT_TYPE,
          requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
        },
        'invalid_request',
        'unsupported_requested_token_type',
      );
    });

    it('refuses an agent’s own token as the subject: it does not speak for a user', async () => {
      const own = await requestToken(server, agentA, { scope: 'tickets.read' });
      assert.equal(own.status, 200);
      await refused(
        agentA,
        { subject_token: own.body.access_token, subject_token_type: AT_TYPE },
        'invalid_request',
        'subject_not_a_user',
      );
    });

    it('accepts an actor token of the client itself and refuses one of another agent', async () => {
      const own = await requestToken(server, agentA, { scope: 'tickets.read' });
      const ok = await exchangeToken(server, agentA, {
        subject_token: aliceIdToken,
        subject_token_type: JWT_TYPE,
        actor_token: own.body.access_token,
        actor_token_type: AT_TYPE,
      });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const other = await requestToken(server, agentB, { scope: 'tickets.read' });
      await refused(
        agentA,
        {
          subject_token: aliceIdToken,
          subject_token_type: JWT_TYPE,
          actor_token: other.body.access_token,
          actor_token_type: AT_TYPE,
        },
        'invalid_request',
        'actor_token_mismatch',
      );
    });

    it('refuses a resource the grant does not cover, and unsupported token types', async () => {
      const frank = await users.create(
        { username: 'frank', email: 'frank@example.test', roles: [] },
        undefined,
      );
      await grant(frank.id, agentA, ['tickets.read'], { resources: [GATEWAY] });
      const frankToken = await idp.idToken({ sub: 'idp-frank', email: 'frank@example.test' });
      await refused(
        agentA,
        { subject_token: frankToken, subject_token_type: JWT_TYPE, resource: mcp },
        'invalid_target',
        'resource_not_granted',
      );
      const ok = await exchangeToken(server, agentA, {
        subject_token: frankToken,
        subject_token_type: JWT_TYPE,
      });
      assert.equal(decodeJwt(ok.body.access_token).aud, GATEWAY, 'defaults to the granted resource');
      await refused(
        agentA,
        { subject_token: frankToken, subject_token_type: ID_TOKEN_TYPE },
        'invalid_request',
        'unsupported_subject_token_type',
      );
      await refused(
        agentA,
        { subject_token: await forged({ email_verified: false }), subject_token_type: JWT_TYPE },
        'invalid_request',
        'subject_email_unverified',
      );
    });

    it('revoking a grant makes its exchanged tokens inactive at introspection and refused at the gateway at once', async () => {
      const gina = await users.create({ username: 'gina', email: 'gina@example.test', roles: [] }, undefined);
      const g = await grant(gina.id, agentA, ['tickets.read']);
      await grant(gina.id, agentB, ['tickets.read']);
      const keys = await dpopKeys();
      const res = await exchangeToken(
        server,
        agentA,
        {
          subject_token: await idp.idToken({ sub: 'idp-gina', email: 'gina@example.test' }),
          subject_token_type: JWT_TYPE,
          resource: mcp,
        },
        { keys },
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const token = res.body.access_token as string;
      const nested = await exchangeToken(server, agentB, {
        subject_token: token,
        subject_token_type: AT_TYPE,
      });
      assert.equal(nested.status, 200);

      const callGateway = async () =>
        fetch(mcp, {
          method: 'POST',
          headers: {
            authorization: `DPoP ${token}`,
            dpop: await dpopProof(keys, {
              htm: 'POST',
              htu: mcp,
              ath: createHash('sha256').update(token).digest('base64url'),
            }),
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: {
              protocolVersion: '2025-06-18',
              capabilities: {},
              clientInfo: { name: 't', version: '1' },
            },
          }),
        });
      const before = await callGateway();
      assert.equal(before.status, 200, await before.text());

      const revoked = await tokens.revokeGrant(g.id, admin, undefined, 'user withdrew consent');
      const jti = decodeJwt(token).jti as string;
      assert.ok(revoked.revokedTokens.includes(jti));
      assert.ok(
        revoked.revokedTokens.includes(decodeJwt(nested.body.access_token).jti as string),
        'derived token too',
      );
      assert.deepEqual(await tokens.introspect(token), { active: false });
      assert.deepEqual(await tokens.introspect(nested.body.access_token), { active: false });
      const t0 = performance.now();
      for (;;) {
        const r = await callGateway();
        if (r.status === 401) break;
        assert.ok(performance.now() - t0 < 1000, 'refused by the gateway within a second');
        await sleep(20);
      }
      const gatewayRefusals = (await readEvents(store.db, auditor.partition, 0, 100_000)).filter(
        (e) => e.type === 'auth.request_refused' && e.error_code === 'ERR_TOKEN_REVOKED',
      );
      assert.ok(gatewayRefusals.length > 0);
      const again = await exchangeToken(server, agentB, {
        subject_token: token,
        subject_token_type: AT_TYPE,
      });
      assert.equal(again.body.error, 'invalid_request', 'a revoked token cannot be exchanged further');
    });

    it('refuses a malformed or missing subject token', async () => {
      await refused(agentA, { subject_token_type: JWT_TYPE }, 'invalid_request', 'missing_subject_token');
      await refused(
        agentA,
        { subject_token: `not-a-jwt-${randomUUID()}`, subject_token_type: JWT_TYPE },
        'invalid_request',
        'subject_token_malformed',
      );
    });
  });
