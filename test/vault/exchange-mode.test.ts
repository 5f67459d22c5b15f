import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as oauth from 'oauth4webapi';
import { readEvents } from '../../src/audit/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { AT_TYPE, EXCHANGE, exchangeToken, JWT_TYPE } from '../tokens/exchange-support.ts';
import { startExternalIdp } from '../tokens/external-idp.ts';
import { dpopKeys, freePort, GATEWAY, registerAgent, type TestAgent } from '../tokens/support.ts';
import { startUpstream } from './upstream.ts';

const HOUR = 3_600_000;
const insecure = { [oauth.allowInsecureRequests]: true } as const;
const ADMIN = { type: 'user' as const, id: 'test-admin' };
const VAULT_URN = 'urn:warden:vault:connection:';

for (const backend of BACKENDS)
  describe(`vault exchange mode (RFC 8693, connection as resource) on ${backend}`, async () => {
    const up = await startUpstream();
    after(() => up.close());
    const idp = await startExternalIdp();
    const port = await freePort();
    const server: TestServer = await startTestServer(backend, {
      env: {
        WARDEN_PORT: String(port),
        WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}`,
        WARDEN_TOKENS_RESOURCES: GATEWAY,
        WARDEN_TOKENS_TRUSTED_ISSUERS: JSON.stringify([
          { issuer: idp.issuer, jwksUri: `${idp.issuer}/jwks`, audience: idp.clientId },
        ]),
      },
    });
    const { tokens, identity, store, auditor, vault, policy } = server.warden;
    const scopes = ['tickets.read'];
    const agentA = await registerAgent(server, { scopes, lifetime: 600 });
    const agentB = await registerAgent(server, { scopes });
    const agentS = await registerAgent(server, { scopes });
    const alice = await identity.users.create(
      { username: 'alice', email: 'alice@example.test', roles: [] },
      undefined,
    );
    const bob = await identity.users.create(
      { username: 'bob', email: 'bob@example.test', roles: [] },
      undefined,
    );
    const grant = (userId: string, agent: TestAgent) =>
      tokens.createGrant(
        {
          userId,
          agentId: agent.id,
          scopes,
          purpose: 'read my CRM',
          source: 'api',
          expiresAt: Date.now() + HOUR,
        },
        ADMIN,
      );
    const aliceToA = await grant(alice.id, agentA);
    await grant(alice.id, agentB);
    await grant(alice.id, agentS);
    await grant(bob.id, agentA);

    const connection = (name: string, allowExchange: boolean) =>
      vault.createConnection(
        {
          name,
          issuer: up.issuer,
          clientId: up.clientId,
          clientSecret: up.clientSecret,
          scopes: ['openid', 'offline_access'],
          accessRule: { agents: [agentA.id, agentB.id, agentS.id], onBehalfOf: 'self' },
          allowExchange,
        },
        ADMIN,
      );
    const crm = await connection('crm', true);
    assert.equal(crm.allowExchange, true);
    assert.equal((await connection('crm-brokered', false)).allowExchange, false);
    for (const name of ['crm', 'crm-brokered']) {
      const { authorizationUrl } = await vault.beginConnect(name, alice.id, up.redirectUri);
      await vault.completeConnect(await up.authorize(authorizationUrl));
    }
    // Agents A and S may exchange on both connections; agent B on none (deny by default).
    const permits = [agentA, agentS]
      .flatMap((a) =>
        ['crm', 'crm-brokered'].map(
          (c) =>
            `permit (principal == Warden::Agent::"${a.id}", action == Warden::Action::"exchange_credential", resource == Warden::Credential::"${c}") when { context.delegation has grant };`,
        ),
      )
      .join('\n');
    const pushed = await policy.admin.push({ policies: permits }, ADMIN);
    await policy.admin.activate(pushed.version, ADMIN);
    await policy.engine.reload();

    /** A delegated Warden token (sub = user, act = agent) from the user's IdP token. */
    const delegated = async (agent: TestAgent, user: 'alice' | 'bob') => {
      const idToken = await idp.idToken({ sub: `idp-${user}`, email: `${user}@example.test` });
      const res = await exchangeToken(
        server,
        agent,
        {
          subject_token: idToken,
          subject_token_type: JWT_TYPE,
          scope: 'tickets.read',
          resource: GATEWAY,
        },
        { keys },
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.access_token as string;
    };
    const vaultParams = (subject: string, name = 'crm', subjectType = AT_TYPE) => ({
      subject_token: subject,
      subject_token_type: subjectType,
      requested_token_type: AT_TYPE,
      resource: `${VAULT_URN}${name}`,
    });
    const events = async () => readEvents(store.db, auditor.partition, 0, 1_000_000);
    const refusals = async (reason: string) =>
      (await events()).filter((e) => e.type === 'token.refused' && e.details?.reason === reason);
    const handedOut: string[] = [];
    // The agents' DPoP key: delegated tokens are bound to it, and exchange mode requires it.
    const keys = await dpopKeys();

    /** Exchanges and asserts the OAuth error and one audited refusal with the reason code. */
    const refused = async (
      agent: TestAgent,
      params: Record<string, string>,
      error: string,
      reason: string,
      status = 400,
      options: { keys?: oauth.CryptoKeyPair } = {},
    ) => {
      const before = (await refusals(reason)).length;
      const res = await exchangeToken(server, agent, params, { keys: options.keys ?? keys });
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.error, error, JSON.stringify(res.body));
      assert.equal(res.body.access_token, undefined);
      const after = await refusals(reason);
      assert.equal(after.length, before + 1, `one token.refused event with reason ${reason}`);
      // Refused before the grant ran (client authentication), the event cannot name the connection.
      if (status !== 401) {
        assert.equal(after.at(-1)?.details?.vault_connection, params.resource?.slice(VAULT_URN.length));
      }
      return { event: after.at(-1), body: res.body };
    };

    it('exchanges a delegated token for the user’s upstream token, which the upstream API accepts', async () => {
      const subject = await delegated(agentA, 'alice');
      const issuer = new URL(server.url);
      const as = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
      );
      const c: oauth.Client = { client_id: agentA.id };
      const auth = oauth.PrivateKeyJwt({
        key: agentA.privateKey.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']),
        kid: agentA.kid,
      });
      const DPoP = oauth.DPoP(c, keys);
      const attempt = async () =>
        oauth.processGenericTokenEndpointResponse(
          as,
          c,
          await oauth.genericTokenEndpointRequest(as, c, auth, EXCHANGE, vaultParams(subject), {
            DPoP,
            ...insecure,
          }),
        );
      let response: oauth.TokenEndpointResponse;
      try {
        response = await attempt();
      } catch (e) {
        if (!oauth.isDPoPNonceError(e)) throw e;
        response = await attempt();
      }
      assert.equal(response.token_type, 'bearer', 'upstream tokens are Bearer, not DPoP-bound');
      assert.equal(response.issued_token_type, AT_TYPE);
      assert.equal(response.refresh_token, undefined, 'never a refresh token');
      assert.ok(response.expires_in && response.expires_in > 0 && response.expires_in <= 600);
      handedOut.push(response.access_token);

      const api = await fetch(`${up.apiUrl}/me`, {
        headers: { authorization: `Bearer ${response.access_token}` },
      });
      assert.equal(api.status, 200);
      assert.ok(up.apiAccepted.includes(response.access_token));

      const ok = (await events()).filter((e) => e.type === 'vault.credential_exchanged');
      const last = ok.at(-1);
      assert.equal(last?.actor.id, agentA.id);
      assert.equal(last?.actor.on_behalf_of?.id, alice.id);
      assert.equal(last?.resource?.id, crm.id);
      assert.equal(last?.resource?.name, 'crm');
      assert.equal(last?.details?.grant_id, aliceToA.id);
      assert.equal(last?.details?.token_type, 'Bearer');
      assert.equal(last?.decision?.effect, 'permit');
      assert.equal(last?.outcome, 'success');
    });

    it('refuses a DPoP proof with another key than the subject token is bound to', async () => {
      const subject = await delegated(agentA, 'alice');
      await refused(agentA, vaultParams(subject), 'invalid_grant', 'vault_exchange_dpop_mismatch', 400, {
        keys: await dpopKeys(),
      });
    });

    it('refuses without a policy permit (deny by default)', async () => {
      const subject = await delegated(agentB, 'alice');
      const { event } = await refused(agentB, vaultParams(subject), 'invalid_grant', 'policy_denied');
      assert.equal(event?.actor.id, agentB.id);
    });

    it('refuses an external IdP token: brokering is for those', async () => {
      const idToken = await idp.idToken({ sub: 'idp-alice', email: 'alice@example.test' });
      await refused(
        agentA,
        vaultParams(idToken, 'crm', JWT_TYPE),
        'invalid_grant',
        'vault_exchange_not_delegated',
      );
    });

    it('refuses a token that does not speak for a user, and a delegated token of another actor', async () => {
      const own = await exchangeToken(server, agentA, { resource: GATEWAY });
      assert.equal(own.status, 400, 'no subject: the exchange needs one');
      const subjectOfA = await delegated(agentA, 'alice');
      await refused(agentB, vaultParams(subjectOfA), 'invalid_grant', 'vault_exchange_not_current_actor');
    });

    it('refuses when the subject user has no account of their own (never another user’s)', async () => {
      const subject = await delegated(agentA, 'bob');
      const { event, body } = await refused(
        agentA,
        vaultParams(subject),
        'invalid_grant',
        'vault_not_connected',
      );
      assert.match(body.error_description, /has not connected an account on crm/, 'a clear error');
      assert.equal(event?.details?.subject, bob.id);
      const vaultRefusal = (await events())
        .filter((e) => e.type === 'vault.credential_refused' && e.action === 'vault.exchange')
        .at(-1);
      assert.equal(vaultRefusal?.error_code, 'ERR_VAULT_NOT_CONNECTED');
      assert.equal(vaultRefusal?.actor.on_behalf_of?.id, bob.id);
    });

    it('refuses when the connection does not allow exchange', async () => {
      const subject = await delegated(agentA, 'alice');
      await refused(
        agentA,
        vaultParams(subject, 'crm-brokered'),
        'invalid_grant',
        'vault_exchange_not_allowed',
      );
      const brokered = await vault.getCredential({
        agentId: agentA.id,
        templateId: (await identity.agents.resolve(agentA.id)).agent.template_id,
        userId: alice.id,
        connectionOrCredentialId: 'crm-brokered',
      });
      assert.match(brokered.headers.authorization ?? '', /^Bearer /, 'brokered mode still works');
    });

    it('refuses an unknown connection (no permit names it) and a token type other than access_token', async () => {
      const subject = await delegated(agentA, 'alice');
      await refused(agentA, vaultParams(subject, 'nope'), 'invalid_grant', 'policy_denied');
      await refused(
        agentA,
        { ...vaultParams(subject), requested_token_type: JWT_TYPE },
        'invalid_request',
        'vault_exchange_requested_type',
      );
    });

    it('refuses a suspended agent', async () => {
      const subject = await delegated(agentS, 'alice');
      assert.equal(
        (await server.call('POST', `/v1/agents/${agentS.id}/suspend`, { reason: 'test' })).status,
        200,
      );
      await refused(agentS, vaultParams(subject), 'invalid_client', 'agent_suspended', 401);
    });

    it('refuses after the delegation grant is revoked', async () => {
      const subject = await delegated(agentA, 'alice');
      await tokens.revokeGrant(aliceToA.id, ADMIN, undefined, 'user withdrew consent');
      const reasons = ['subject_token_inactive', 'grant_inactive'];
      const count = async () => (await Promise.all(reasons.map(refusals))).flat().length;
      const before = await count();
      const res = await exchangeToken(server, agentA, vaultParams(subject), { keys });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.access_token, undefined);
      assert.ok(['invalid_request', 'invalid_grant'].includes(res.body.error), JSON.stringify(res.body));
      assert.equal(await count(), before + 1, 'the refusal is audited with its reason');
    });

    it('records no token in any audit event', async () => {
      assert.ok(handedOut.length > 0);
      const all = JSON.stringify(await events());
      for (const t of handedOut)
        assert.equal(all.includes(t), false, 'the upstream token is not in the ledger');
      assert.ok(all.includes('vault.credential_exchanged'));
    });
  });
