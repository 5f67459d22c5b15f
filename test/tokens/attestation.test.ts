import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, exportJWK, type JWK, SignJWT } from 'jose';
import type * as oauth from 'oauth4webapi';
import { canonicalJson, readEvents } from '../../src/audit/index.ts';
import { type Backend, tempDir } from '../support/databases.ts';
import { runWarden } from '../support/process.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import {
  clientAssertion,
  dpopKeys,
  dpopProof,
  freePort,
  GATEWAY,
  postForm,
  registerAgent,
  requestToken,
  startTokenServer,
  type TestAgent,
} from './support.ts';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const GOOD_IMAGE = `sha256:${'a1'.repeat(32)}`;
const OTHER_IMAGE = `sha256:${'b2'.repeat(32)}`;
const MODEL = 'claude-sonnet-4-5';
const now = () => Math.floor(Date.now() / 1000);

/** A provider registered with its public key; the test holds the private key it attests with. */
interface TestProvider {
  id: string;
  name: string;
  kid: string;
  privateKey: KeyObject;
}

/** An attested agent instance: its key pair is what the provider binds in `cnf.jwk`. */
interface Instance {
  keys: oauth.CryptoKeyPair;
  jwk: JWK;
}

type Overrides = { claims?: Record<string, unknown>; header?: Record<string, unknown>; key?: unknown };

let counter = 0;

async function registerProvider(server: TestServer, name: string, kid: string): Promise<TestProvider> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const res = await server.call('POST', '/v1/providers', {
    name,
    contact: 'security@example.test',
    jwks: { keys: [{ ...jwk, kid, alg: 'ES256', use: 'sig' }] },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { id: res.body.id, name, kid, privateKey };
}

async function registerTemplate(
  server: TestServer,
  attestation: Record<string, unknown>,
  requireDpop = true,
): Promise<string> {
  counter += 1;
  const name = `attested-${counter}`;
  const res = await server.call('POST', '/v1/templates', {
    name,
    spec: {
      description: 'agents whose provider attests each instance',
      allowed_scopes: ['tickets.read'],
      require_dpop: requireDpop,
      attestation,
    },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return name;
}

/** Registers an agent (with its own key pair, as every agent has) under a provider and template. */
async function registerAgentUnder(
  server: TestServer,
  provider: TestProvider,
  template: string,
): Promise<TestAgent> {
  counter += 1;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(pub);
  const publicJwk = { ...pub, kid, alg: 'ES256', use: 'sig' };
  const name = `attested-agent-${counter}`;
  const res = await server.call('POST', '/v1/agents', {
    name,
    provider: provider.name,
    template,
    purpose: 'testing attestation-based client authentication',
    jwks: { keys: [publicJwk] },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { id: res.body.id, name, kid, privateKey, publicJwk, providerName: provider.name };
}

async function newInstance(): Promise<Instance> {
  const keys = await dpopKeys();
  return { keys, jwk: await exportJWK(keys.publicKey) };
}

/** The provider's Client Attestation JWT for an instance of the agent. */
function attestationFor(
  provider: TestProvider,
  agentId: string,
  instance: Instance,
  o: Overrides = {},
): Promise<string> {
  return new SignJWT({
    iss: provider.name,
    sub: agentId,
    iat: now(),
    exp: now() + 600,
    cnf: { jwk: instance.jwk },
    software_version: '1.4.2',
    image_digest: GOOD_IMAGE,
    model: MODEL,
    ...o.claims,
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'oauth-client-attestation+jwt', kid: provider.kid, ...o.header })
    .sign((o.key ?? provider.privateKey) as KeyObject);
}

/** The instance's Client Attestation PoP JWT for this server and challenge. */
function popFor(
  server: TestServer,
  agentId: string,
  instance: Instance,
  challenge: string,
  o: Overrides = {},
): Promise<string> {
  return new SignJWT({ iss: agentId, aud: server.url, jti: randomUUID(), iat: now(), challenge, ...o.claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'oauth-client-attestation-pop+jwt', ...o.header })
    .sign((o.key ?? instance.keys.privateKey) as oauth.CryptoKey);
}

/** A fresh attestation challenge and DPoP nonce from the challenge endpoint. */
async function challengeFrom(server: TestServer): Promise<{ challenge: string; nonce: string }> {
  const res = await fetch(`${server.url}/challenge`, { method: 'POST' });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { attestation_challenge: string };
  assert.equal(res.headers.get('oauth-client-attestation-challenge'), body.attestation_challenge);
  return { challenge: body.attestation_challenge, nonce: res.headers.get('dpop-nonce') as string };
}

describe('attestation-based client authentication', async () => {
  const server = await startTokenServer('sqlite');
  const tokenUrl = `${server.url}/token`;
  const acme = await registerProvider(server, 'acme', 'acme-2026');
  const rival = await registerProvider(server, 'rival', 'rival-1');
  const strict = await registerTemplate(server, {
    required: true,
    image_digests: [GOOD_IMAGE],
    models: [MODEL],
    min_software_version: '1.2.0',
  });
  const agent = await registerAgentUnder(server, acme, strict);
  const instance = await newInstance();
  // Another agent (private_key_jwt) introspects the attested agent's tokens.
  const observer = await registerAgent(server, { scopes: ['tickets.read'] });

  /** A token request with attestation headers (and a DPoP proof by `dpop`, another key by default). */
  async function attested(
    o: {
      who?: TestAgent;
      from?: TestProvider;
      inst?: Instance;
      attestation?: Overrides;
      pop?: Overrides | ((challenge: string) => Promise<string>);
      combined?: boolean;
      dpop?: oauth.CryptoKeyPair;
      noPop?: boolean;
    } = {},
  ): Promise<{ status: number; body: any; headers: Headers }> {
    const who = o.who ?? agent;
    const inst = o.inst ?? instance;
    const { challenge, nonce } = await challengeFrom(server);
    const dpop = o.combined ? inst.keys : (o.dpop ?? (await dpopKeys()));
    const headers: Record<string, string> = {
      'oauth-client-attestation': await attestationFor(o.from ?? acme, who.id, inst, o.attestation),
      dpop: await dpopProof(dpop, { htm: 'POST', htu: tokenUrl, nonce }),
    };
    if (!o.combined && !o.noPop) {
      headers['oauth-client-attestation-pop'] =
        typeof o.pop === 'function'
          ? await o.pop(challenge)
          : await popFor(server, who.id, inst, challenge, o.pop);
    }
    return postForm(tokenUrl, { grant_type: 'client_credentials', resource: GATEWAY }, headers);
  }

  async function events() {
    return readEvents(server.warden.store.db, server.warden.nodeId, 0, 100_000);
  }

  /** Asserts an invalid_client refusal, audited with `reason` as the latest refusal of `who`. */
  async function refused(
    res: { status: number; body: any },
    reason: string,
    who: TestAgent = agent,
  ): Promise<void> {
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(res.body.error, 'invalid_client');
    assert.equal(res.body.access_token, undefined);
    const refusal = (await events())
      .filter((e) => e.type === 'token.refused' && e.actor.id === who.id)
      .at(-1);
    assert.equal(refusal?.details?.reason, reason);
    assert.equal(refusal?.error_code, 'invalid_client');
  }

  it('advertises the attestation methods and a challenge endpoint', async () => {
    const meta = (await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()) as any;
    assert.ok(meta.token_endpoint_auth_methods_supported.includes('attest_jwt_client_auth'));
    assert.ok(!meta.token_endpoint_auth_methods_supported.some((m: string) => m.startsWith('client_secret')));
    assert.equal(meta.challenge_endpoint, `${server.url}/challenge`);
    assert.ok(meta.client_attestation_signing_alg_values_supported.includes('ES256'));
    assert.ok(
      !meta.client_attestation_signing_alg_values_supported.some((a: string) => /^(HS|none)/.test(a)),
    );
  });

  it('issues a DPoP-bound token carrying the digest of the attested claims, and records them', async () => {
    const dpop = await dpopKeys();
    const res = await attested({ dpop });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.token_type, 'DPoP');
    const claims = decodeJwt(res.body.access_token) as Record<string, any>;
    assert.equal(claims.client_id, agent.id);
    const expected = createHash('sha256')
      .update(canonicalJson({ image_digest: GOOD_IMAGE, model: MODEL, software_version: '1.4.2' }))
      .digest('base64url');
    assert.deepEqual(claims.agent_attestation, { digest: expected, iss: acme.id });
    // DPoP with its own key: the token is bound to the DPoP key, not the instance key.
    assert.equal(claims.cnf.jkt, await calculateJwkThumbprint(await exportJWK(dpop.publicKey)));

    const issued = (await events())
      .filter((e) => e.type === 'token.issued' && e.actor.id === agent.id)
      .at(-1);
    assert.deepEqual(issued?.details?.attestation, {
      method: 'attestation_pop_jwt',
      provider_id: acme.id,
      kid: 'acme-2026',
      instance_id: await calculateJwkThumbprint(instance.jwk),
      software_version: '1.4.2',
      image_digest: GOOD_IMAGE,
      model: MODEL,
      digest: expected,
      exp: (issued?.details?.attestation as { exp?: number } | undefined)?.exp,
    });
    // Claims and key ids only: never the instance key or the provider's.
    const serialized = JSON.stringify(issued);
    assert.doesNotMatch(serialized, new RegExp(String(instance.jwk.x)));
    assert.doesNotMatch(serialized, /eyJ[A-Za-z0-9_-]+\.eyJ/);

    const [row] = await server.warden.identity.agents.instances.list(agent.id);
    assert.equal(row?.instance_id, await calculateJwkThumbprint(instance.jwk));
    assert.equal(row?.image_digest, GOOD_IMAGE);
    assert.equal(row?.model, MODEL);
    assert.equal(row?.software_version, '1.4.2');
    assert.equal(row?.provider_kid, 'acme-2026');
    assert.equal(row?.digest, expected);

    const intro = await postForm(`${server.url}/token/introspection`, {
      token: res.body.access_token,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(observer, server.url),
    });
    assert.equal(intro.body.active, true, JSON.stringify(intro.body));
    assert.deepEqual(intro.body.agent_attestation, { digest: expected, iss: acme.id });
  });

  it('accepts the DPoP proof as the PoP (combined mode): the token is bound to the instance key', async () => {
    const res = await attested({ combined: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const claims = decodeJwt(res.body.access_token) as Record<string, any>;
    assert.equal(claims.cnf.jkt, await calculateJwkThumbprint(instance.jwk));
    assert.equal(typeof claims.agent_attestation.digest, 'string');
    const issued = (await events())
      .filter((e) => e.type === 'token.issued' && e.actor.id === agent.id)
      .at(-1);
    assert.equal((issued?.details?.attestation as { method?: string } | undefined)?.method, 'dpop_combined');
  });

  it('issues no token that outlives its attestation', async () => {
    const res = await attested({ attestation: { claims: { exp: now() + 90 } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const claims = decodeJwt(res.body.access_token) as { exp: number; iat: number };
    assert.ok(claims.exp <= now() + 91, `token exp ${claims.exp} after the attestation's`);
    assert.ok(res.body.expires_in <= 90 && res.body.expires_in > 60, String(res.body.expires_in));
  });

  it('authenticates the agent by attestation at the revocation endpoint too', async () => {
    const issued = await attested();
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    const { challenge } = await challengeFrom(server);
    const res = await postForm(
      `${server.url}/token/revocation`,
      { token: issued.body.access_token },
      {
        'oauth-client-attestation': await attestationFor(acme, agent.id, instance),
        'oauth-client-attestation-pop': await popFor(server, agent.id, instance, challenge),
      },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const intro = await postForm(`${server.url}/token/introspection`, {
      token: issued.body.access_token,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(observer, server.url),
    });
    assert.deepEqual(intro.body, { active: false });
    // Without an attestation the agent cannot use the endpoint at all.
    const bare = await postForm(`${server.url}/token/revocation`, {
      token: issued.body.access_token,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(agent, server.url),
    });
    assert.equal(bare.status, 401);
    assert.equal(bare.body.error, 'invalid_client');
  });

  it('keeps one row per instance with its latest claims', async () => {
    const second = await newInstance();
    assert.equal((await attested({ inst: second })).status, 200);
    const rows = await server.warden.identity.agents.instances.list(agent.id);
    assert.equal(rows.length, 2);
    assert.equal(rows[0]?.instance_id, await calculateJwkThumbprint(second.jwk));
  });

  it('lists the agent’s attested instances over the admin API and the CLI', async () => {
    const api = await server.call('GET', `/v1/agents/${agent.name}/instances`);
    assert.equal(api.status, 200, JSON.stringify(api.body));
    assert.ok(api.body.items.length >= 1);
    assert.equal(api.body.items[0].image_digest, GOOD_IMAGE);
    const cli = await runWarden(['agents', 'instances', agent.name, '--json'], {
      WARDEN_URL: server.url,
      WARDEN_TOKEN: server.adminToken,
      WARDEN_CLI_CONFIG_DIR: join(tempDir(), 'cli'),
    });
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(JSON.parse(cli.stdout), api.body);
    assert.equal((await server.call('GET', '/v1/agents/no-such-agent/instances')).status, 404);
  });

  it('answers a PoP without a server challenge with use_attestation_challenge, not as a refusal', async () => {
    const before = (await events()).filter((e) => e.type === 'token.refused').length;
    const res = await attested({ pop: { claims: { challenge: undefined } } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'use_attestation_challenge');
    assert.ok(res.headers.get('oauth-client-attestation-challenge'));
    assert.equal((await events()).filter((e) => e.type === 'token.refused').length, before);
  });

  it('refuses an agent whose template requires attestation when it uses private_key_jwt', async () => {
    await refused(await requestToken(server, agent), 'attestation_required');
  });

  it('refuses a forged attestation (not signed by the provider key it names)', async () => {
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await refused(await attested({ attestation: { key: attacker } }), 'attestation_signature_invalid');
  });

  it('refuses an attestation with alg none or a MAC', async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const { challenge, nonce } = await challengeFrom(server);
    const dpop = await dpopKeys();
    const unsigned = `${enc({ alg: 'none', typ: 'oauth-client-attestation+jwt', kid: acme.kid })}.${enc({
      iss: acme.name,
      sub: agent.id,
      iat: now(),
      exp: now() + 600,
      cnf: { jwk: instance.jwk },
    })}.`;
    const res = await postForm(
      tokenUrl,
      { grant_type: 'client_credentials' },
      {
        'oauth-client-attestation': unsigned,
        'oauth-client-attestation-pop': await popFor(server, agent.id, instance, challenge),
        dpop: await dpopProof(dpop, { htm: 'POST', htu: tokenUrl, nonce }),
      },
    );
    await refused(res, 'attestation_alg_not_allowed');
    const mac = await attested({ attestation: { header: { alg: 'HS256' }, key: Buffer.alloc(32, 1) } });
    await refused(mac, 'attestation_alg_not_allowed');
  });

  it('refuses an expired attestation', async () => {
    const res = await attested({ attestation: { claims: { iat: now() - 1200, exp: now() - 600 } } });
    await refused(res, 'attestation_expired');
  });

  it('refuses an attestation valid for more than a day', async () => {
    const res = await attested({ attestation: { claims: { exp: now() + 2 * 86_400 } } });
    await refused(res, 'attestation_lifetime_too_long');
  });

  it('refuses an attestation with the wrong typ', async () => {
    await refused(await attested({ attestation: { header: { typ: 'JWT' } } }), 'attestation_typ_invalid');
  });

  it('refuses a PoP signed by a key other than the attested cnf key', async () => {
    const other = await newInstance();
    await refused(
      await attested({ pop: { key: other.keys.privateKey } }),
      'attestation_pop_signature_invalid',
    );
  });

  it('refuses a DPoP proof as PoP when its key is not the attested key', async () => {
    const { challenge: _c, nonce } = await challengeFrom(server);
    const stranger = await dpopKeys();
    const res = await postForm(
      tokenUrl,
      { grant_type: 'client_credentials' },
      {
        'oauth-client-attestation': await attestationFor(acme, agent.id, instance),
        dpop: await dpopProof(stranger, { htm: 'POST', htu: tokenUrl, nonce }),
      },
    );
    await refused(res, 'attestation_dpop_key_mismatch');
  });

  it('refuses a replayed PoP', async () => {
    let spent = '';
    const first = await attested({
      pop: async (challenge) => {
        spent = await popFor(server, agent.id, instance, challenge);
        return spent;
      },
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    await refused(await attested({ pop: async () => spent }), 'attestation_pop_replayed');
  });

  it('refuses a PoP for another audience, including the token endpoint URL', async () => {
    await refused(
      await attested({ pop: { claims: { aud: 'https://evil.example.test' } } }),
      'attestation_pop_aud_invalid',
    );
    await refused(await attested({ pop: { claims: { aud: tokenUrl } } }), 'attestation_pop_aud_invalid');
  });

  it('refuses a PoP issued for another client, or made too long ago', async () => {
    await refused(
      await attested({ pop: { claims: { iss: observer.id } } }),
      'attestation_pop_issuer_mismatch',
    );
    await refused(await attested({ pop: { claims: { iat: now() - 600 } } }), 'attestation_pop_stale');
  });

  it('refuses an attestation header without a PoP', async () => {
    const res = await postForm(
      tokenUrl,
      { grant_type: 'client_credentials' },
      { 'oauth-client-attestation': await attestationFor(acme, agent.id, instance) },
    );
    await refused(res, 'attestation_pop_missing');
  });

  it('refuses an attestation from a provider other than the agent’s', async () => {
    // Signed by the rival and saying so.
    await refused(
      await attested({ from: rival, attestation: { claims: { iss: rival.name } } }),
      'attestation_issuer_mismatch',
    );
    // Signed by the rival, claiming to be the agent's provider: the rival's key is not acme's.
    await refused(
      await attested({ from: rival, attestation: { claims: { iss: acme.name } } }),
      'attestation_key_unknown',
    );
    // Signed by the rival under acme's key id.
    await refused(
      await attested({ attestation: { key: rival.privateKey } }),
      'attestation_signature_invalid',
    );
  });

  it('refuses attestations from a distrusted provider', async () => {
    const shady = await registerProvider(server, 'shady', 'shady-1');
    const victim = await registerAgentUnder(server, shady, strict);
    const ok = await attested({ who: victim, from: shady });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const res = await server.call('POST', '/v1/providers/shady/distrust', { reason: 'signing key leaked' });
    assert.equal(res.status, 200);
    await refused(await attested({ who: victim, from: shady }), 'provider_distrusted', victim);
  });

  it('refuses an image digest the template does not allow, or none at all', async () => {
    await refused(
      await attested({ attestation: { claims: { image_digest: OTHER_IMAGE } } }),
      'attestation_image_digest_not_allowed',
    );
    await refused(
      await attested({ attestation: { claims: { image_digest: undefined } } }),
      'attestation_image_digest_not_allowed',
    );
  });

  it('refuses a model the template does not allow', async () => {
    await refused(
      await attested({ attestation: { claims: { model: 'unreviewed-model' } } }),
      'attestation_model_not_allowed',
    );
  });

  it('refuses software older than the template’s minimum version', async () => {
    await refused(
      await attested({ attestation: { claims: { software_version: '1.1.9' } } }),
      'attestation_software_version_too_old',
    );
  });

  it('refuses malformed attested claims', async () => {
    await refused(
      await attested({ attestation: { claims: { image_digest: 'sha256:not-hex' } } }),
      'attestation_claims_invalid',
    );
  });

  describe('voluntary attestation (template does not require it)', async () => {
    const relaxed = await registerTemplate(server, { required: false, image_digests: [GOOD_IMAGE] });
    const volunteer = await registerAgentUnder(server, acme, relaxed);

    it('still accepts private_key_jwt, and the token has no attestation claim', async () => {
      const res = await requestToken(server, volunteer);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(decodeJwt(res.body.access_token).agent_attestation, undefined);
    });

    it('accepts an attestation instead, and records and carries its claims', async () => {
      const res = await attested({ who: volunteer });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const claims = decodeJwt(res.body.access_token) as Record<string, any>;
      assert.equal(claims.agent_attestation.iss, acme.id);
      const rows = await server.warden.identity.agents.instances.list(volunteer.id);
      assert.equal(rows.length, 1);
    });

    it('still holds a voluntary attestation to the template’s allow-lists', async () => {
      await refused(
        await attested({ who: volunteer, attestation: { claims: { image_digest: OTHER_IMAGE } } }),
        'attestation_image_digest_not_allowed',
        volunteer,
      );
    });

    it('refuses both an assertion and an attestation in one request', async () => {
      const { challenge, nonce } = await challengeFrom(server);
      const res = await postForm(
        tokenUrl,
        {
          grant_type: 'client_credentials',
          client_assertion_type: ASSERTION_TYPE,
          client_assertion: await clientAssertion(volunteer, server.url),
        },
        {
          'oauth-client-attestation': await attestationFor(acme, volunteer.id, instance),
          'oauth-client-attestation-pop': await popFor(server, volunteer.id, instance, challenge),
          dpop: await dpopProof(await dpopKeys(), { htm: 'POST', htu: tokenUrl, nonce }),
        },
      );
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'invalid_request');
    });
  });
});

for (const backend of ['postgres'] as Backend[]) {
  describe(`attestation-based client authentication (${backend})`, async () => {
    const server = await startTokenServer(backend);
    const acme = await registerProvider(server, 'acme', 'k1');
    const template = await registerTemplate(server, { required: true, image_digests: [GOOD_IMAGE] }, false);
    const agent = await registerAgentUnder(server, acme, template);
    const instance = await newInstance();

    it('issues attested tokens and updates the instance row in place', async () => {
      for (const version of ['1.0.0', '1.0.1']) {
        const { challenge } = await challengeFrom(server);
        const res = await postForm(
          `${server.url}/token`,
          { grant_type: 'client_credentials' },
          {
            'oauth-client-attestation': await attestationFor(acme, agent.id, instance, {
              claims: { software_version: version },
            }),
            'oauth-client-attestation-pop': await popFor(server, agent.id, instance, challenge),
          },
        );
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.token_type, 'Bearer');
      }
      const rows = await server.warden.identity.agents.instances.list(agent.id);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.software_version, '1.0.1');
    });

    it('shares challenges and single-use PoPs across two nodes on one database', async () => {
      const nodeB = await startTestServer(backend, {
        databaseUrl: server.warden.config.databaseUrl ?? `sqlite:${server.dataDir}/warden.db`,
        dataDir: server.dataDir,
        env: {
          WARDEN_NODE_ID: 'node-b',
          WARDEN_PORT: String(await freePort()),
          WARDEN_PUBLIC_URL: server.url,
          WARDEN_TOKENS_RESOURCES: GATEWAY,
        },
      });
      // The challenge comes from node A; the PoP is spent on node A, then replayed on node B.
      const { challenge } = await challengeFrom(server);
      const headers = {
        'oauth-client-attestation': await attestationFor(acme, agent.id, instance),
        'oauth-client-attestation-pop': await popFor(server, agent.id, instance, challenge),
      };
      const form = { grant_type: 'client_credentials' };
      const onA = await postForm(`${server.url}/token`, form, headers);
      assert.equal(onA.status, 200, JSON.stringify(onA.body));
      const onB = await postForm(`${nodeB.url}/token`, form, headers);
      assert.equal(onB.status, 401);
      assert.equal(onB.body.error, 'invalid_client');
      const events = await readEvents(nodeB.warden.store.db, nodeB.warden.nodeId, 0, 1000);
      const refusal = events.filter((e) => e.type === 'token.refused').at(-1);
      assert.equal(refusal?.details?.reason, 'attestation_pop_replayed');
      // A fresh PoP with node A's challenge works on node B: the refusal was the replay.
      const fresh = await postForm(`${nodeB.url}/token`, form, {
        ...headers,
        'oauth-client-attestation-pop': await popFor(server, agent.id, instance, challenge),
      });
      assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    });

    it('forgets instances not attested for a long time', async () => {
      const instances = server.warden.identity.agents.instances;
      assert.equal(await instances.purge(3_600_000), 0, 'attested a moment ago: kept');
      assert.equal(await instances.purge(-1000), 1, 'as if the maximum age had passed');
      assert.deepEqual(await instances.list(agent.id), []);
    });
  });
}
