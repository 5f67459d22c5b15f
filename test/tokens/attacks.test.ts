import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, type JWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { readEvents } from '../../src/audit/index.ts';
import {
  clientAssertion,
  dpopKeys,
  dpopProof,
  GATEWAY,
  postForm,
  registerAgent,
  requestToken,
  startTokenServer,
} from './support.ts';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('token endpoint attack suite', async () => {
  const server = await startTokenServer('sqlite');
  const agent = await registerAgent(server, { scopes: ['tickets.read', 'tickets.write'] });
  const tokenUrl = `${server.url}/token`;
  const now = () => Math.floor(Date.now() / 1000);

  /** Asserts the token request with this assertion is refused as invalid_client. */
  async function refusedAsInvalidClient(assertion: string): Promise<void> {
    const res = await requestToken(server, agent, { assertion });
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(res.body.error, 'invalid_client');
    assert.equal(res.body.access_token, undefined);
  }

  it('refuses a client assertion with alg none', async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({
      iss: agent.id,
      sub: agent.id,
      aud: server.url,
      jti: randomUUID(),
      exp: now() + 60,
    })}.`;
    await refusedAsInvalidClient(unsigned);
  });

  it('refuses an HS256 assertion signed with the public key as the secret', async () => {
    const secrets = [
      Buffer.from(JSON.stringify(agent.publicJwk)),
      Buffer.from(agent.privateKey.export({ format: 'jwk' }).x as string),
    ];
    for (const secret of secrets) {
      const forged = await new SignJWT({ iss: agent.id, sub: agent.id, aud: server.url, jti: randomUUID() })
        .setProtectedHeader({ alg: 'HS256', kid: agent.kid })
        .setExpirationTime('1m')
        .sign(secret);
      await refusedAsInvalidClient(forged);
    }
  });

  it('refuses an assertion naming an unknown kid', async () => {
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await refusedAsInvalidClient(
      await clientAssertion(agent, server.url, { key: attacker, header: { kid: 'unknown-kid' } }),
    );
    // The agent's own key under a kid it never registered is no better.
    await refusedAsInvalidClient(
      await clientAssertion(agent, server.url, { header: { kid: 'unknown-kid' } }),
    );
  });

  it('ignores jku and x5u headers: keys come only from the registered JWKS', async () => {
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const attackerJwk = attacker.publicKey.export({ format: 'jwk' }) as JWK;
    const kid = await calculateJwkThumbprint(attackerJwk);
    const header = {
      kid,
      jku: 'https://attacker.example/jwks.json',
      x5u: 'https://attacker.example/cert.pem',
    };
    await refusedAsInvalidClient(
      await clientAssertion(agent, server.url, { key: attacker.privateKey, header }),
    );
    // The same headers on a genuinely signed assertion change nothing either way.
    const genuine = await requestToken(server, agent, {
      assertion: await clientAssertion(agent, server.url, { header: { jku: header.jku, x5u: header.x5u } }),
    });
    assert.equal(genuine.status, 200, JSON.stringify(genuine.body));
  });

  it('refuses an expired assertion', async () => {
    await refusedAsInvalidClient(
      await clientAssertion(agent, server.url, { claims: { iat: now() - 600, exp: now() - 300 } }),
    );
  });

  it('refuses an assertion without exp', async () => {
    await refusedAsInvalidClient(await clientAssertion(agent, server.url, { claims: { exp: undefined } }));
  });

  it('refuses an assertion whose nbf is in the future', async () => {
    await refusedAsInvalidClient(await clientAssertion(agent, server.url, { claims: { nbf: now() + 300 } }));
  });

  it('refuses an assertion for the wrong audience, including the token endpoint URL', async () => {
    await refusedAsInvalidClient(await clientAssertion(agent, 'https://evil.example.test'));
    await refusedAsInvalidClient(await clientAssertion(agent, tokenUrl));
    await refusedAsInvalidClient(
      await clientAssertion(agent, server.url, { claims: { aud: [server.url, 'x'] } }),
    );
  });

  it('refuses an assertion with the wrong issuer', async () => {
    const other = await registerAgent(server, { scopes: ['tickets.read'] });
    await refusedAsInvalidClient(await clientAssertion(agent, server.url, { claims: { iss: other.id } }));
  });

  it('refuses a replayed assertion jti', async () => {
    const assertion = await clientAssertion(agent, server.url);
    const first = await requestToken(server, agent, { assertion });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    await refusedAsInvalidClient(assertion);
  });

  it('refuses an oversized assertion', async () => {
    const padded = await clientAssertion(agent, server.url, { claims: { pad: 'x'.repeat(40_000) } });
    const res = await requestToken(server, agent, { assertion: padded });
    assert.equal(res.status, 413);
    assert.equal(res.body.error, 'invalid_request');
  });

  it('refuses a request without a DPoP proof when the template requires one', async () => {
    const res = await postForm(tokenUrl, {
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(agent, server.url),
    });
    // RFC 9449 §5.2 names no error code for this; oidc-provider answers invalid_grant.
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_grant');
    assert.equal(res.body.access_token, undefined);
  });

  it('demands a server nonce in DPoP proofs', async () => {
    const res = await postForm(
      tokenUrl,
      {
        grant_type: 'client_credentials',
        client_assertion_type: ASSERTION_TYPE,
        client_assertion: await clientAssertion(agent, server.url),
      },
      { dpop: await dpopProof(await dpopKeys(), { htm: 'POST', htu: tokenUrl }) },
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'use_dpop_nonce');
    assert.ok(res.headers.get('dpop-nonce'));
  });

  it('refuses a replayed DPoP proof', async () => {
    const keys = await dpopKeys();
    let proof: string | undefined;
    const first = await requestToken(server, agent, {
      keys,
      proof: async (nonce) => {
        proof = await dpopProof(keys, { htm: 'POST', htu: tokenUrl, ...(nonce ? { nonce } : {}) });
        return proof;
      },
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const replay = await requestToken(server, agent, { keys, proof: async () => proof as string });
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_dpop_proof');
  });

  it('refuses a DPoP proof with the wrong htm', async () => {
    const keys = await dpopKeys();
    const res = await requestToken(server, agent, {
      keys,
      proof: (nonce) => dpopProof(keys, { htm: 'GET', htu: tokenUrl, ...(nonce ? { nonce } : {}) }),
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_dpop_proof');
  });

  it('refuses a DPoP proof with the wrong htu', async () => {
    const keys = await dpopKeys();
    const res = await requestToken(server, agent, {
      keys,
      proof: (nonce) =>
        dpopProof(keys, { htm: 'POST', htu: `${server.url}/other`, ...(nonce ? { nonce } : {}) }),
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_dpop_proof');
  });

  it('binds the token to the DPoP key: a proof by another key fails the resource check', async () => {
    const keys = await dpopKeys();
    const res = await requestToken(server, agent, { keys, resource: GATEWAY });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const token = res.body.access_token as string;
    const thief = await dpopKeys();
    const url = `${GATEWAY}/tools`;
    const ath = createHash('sha256').update(token).digest('base64url');
    const issuer = new URL(server.url);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }),
    );
    const stolen = new Request(url, {
      headers: {
        authorization: `DPoP ${token}`,
        dpop: await dpopProof(thief, { htm: 'GET', htu: url, ath }),
      },
    });
    await assert.rejects(
      oauth.validateJwtAccessToken(as, stolen, GATEWAY, { [oauth.allowInsecureRequests]: true }),
      /confirmation mismatch/,
    );
    const asBearer = new Request(url, { headers: { authorization: `Bearer ${token}` } });
    await assert.rejects(
      oauth.validateJwtAccessToken(as, asBearer, GATEWAY, { [oauth.allowInsecureRequests]: true }),
    );
  });

  it('refuses a suspended agent with invalid_client', async () => {
    const victim = await registerAgent(server, { scopes: ['tickets.read'] });
    assert.equal((await server.call('POST', `/v1/agents/${victim.id}/suspend`, { reason: 'x' })).status, 200);
    const res = await requestToken(server, victim);
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_client');
  });

  it('refuses an agent of a distrusted provider with invalid_client', async () => {
    const victim = await registerAgent(server, { scopes: ['tickets.read'], provider: 'shady-vendor' });
    assert.equal(
      (await server.call('POST', '/v1/providers/shady-vendor/distrust', { reason: 'x' })).status,
      200,
    );
    const res = await requestToken(server, victim);
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_client');
    const events = await readEvents(server.warden.store.db, server.warden.nodeId, 0, 10_000);
    const refusal = events.filter((e) => e.type === 'token.refused' && e.actor.id === victim.id).at(-1);
    assert.ok(
      refusal?.details?.reason === 'provider_distrusted' || refusal?.details?.reason === 'agent_suspended',
    );
  });

  it('narrows a scope beyond the template, and refuses a request for only foreign scopes', async () => {
    const narrowed = await requestToken(server, agent, { scope: 'tickets.read payroll.write' });
    assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
    assert.equal(narrowed.body.scope, 'tickets.read');
    assert.equal(decodeJwt(narrowed.body.access_token).scope, 'tickets.read');
    const refused = await requestToken(server, agent, { scope: 'payroll.write' });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'invalid_scope');
  });

  it('refuses an unknown resource with invalid_target', async () => {
    const res = await requestToken(server, agent, { resource: 'https://unknown.example.test/' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_target');
  });

  it('refuses revocation of another client’s token', async () => {
    const issued = await requestToken(server, agent);
    assert.equal(issued.status, 200);
    const other = await registerAgent(server, { scopes: ['tickets.read'] });
    const res = await postForm(`${server.url}/token/revocation`, {
      token: issued.body.access_token,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(other, server.url),
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'unauthorized_client');
    const intro = await postForm(`${server.url}/token/introspection`, {
      token: issued.body.access_token,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(other, server.url),
    });
    assert.equal(intro.body.active, true, 'still active');
  });

  it('refuses introspection without client authentication', async () => {
    const issued = await requestToken(server, agent);
    const res = await postForm(`${server.url}/token/introspection`, { token: issued.body.access_token });
    assert.ok(res.status === 400 || res.status === 401);
    assert.equal(res.body.active, undefined);
    assert.ok(['invalid_request', 'invalid_client'].includes(res.body.error));
  });

  it('audits every refusal with its reason code and never the assertion', async () => {
    const events = await readEvents(server.warden.store.db, server.warden.nodeId, 0, 10_000);
    const refused = events.filter((e) => e.type === 'token.refused');
    assert.ok(refused.length >= 15, `only ${refused.length} refusals recorded`);
    for (const e of refused) assert.ok(e.error_code, 'each refusal has an error code');
    assert.ok(refused.some((e) => e.error_code === 'invalid_dpop_proof'));
    assert.ok(refused.some((e) => e.error_code === 'invalid_target'));
    assert.doesNotMatch(JSON.stringify(events), /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\./);
  });
});

describe('token endpoint rate limit', async () => {
  const server = await startTokenServer('sqlite', {
    WARDEN_TOKENS_RATE_LIMIT_BURST: '2',
    WARDEN_TOKENS_RATE_LIMIT_PER_SECOND: '0.1',
  });
  const agent = await registerAgent(server, { scopes: ['a'], requireDpop: false });

  it('answers 429 with Retry-After once a client exceeds its rate', async () => {
    const form = async () => ({
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(agent, server.url),
    });
    assert.equal((await postForm(`${server.url}/token`, await form())).status, 200);
    assert.equal((await postForm(`${server.url}/token`, await form())).status, 200);
    const limited = await postForm(`${server.url}/token`, await form());
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error, 'temporarily_unavailable');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    // Another client is not affected.
    const other = await registerAgent(server, { scopes: ['a'], requireDpop: false });
    const ok = await postForm(`${server.url}/token`, {
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(other, server.url),
    });
    assert.equal(ok.status, 200);
  });
});
