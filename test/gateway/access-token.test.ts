import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JSONWebKeySet, JWK } from 'jose';
import { currentJwks, JwtTokenVerifier, type TokenRefusal } from '../../src/gateway/index.ts';
import { issuerKey, mintAccessToken } from './support.ts';

const ISSUER = 'https://warden.test';
const AUDIENCE = 'https://warden.test/mcp';

/** A clock the test moves by hand. */
function manualClock() {
  let now = Date.now();
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

async function refusalCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as TokenRefusal).code;
  }
  return 'accepted';
}

describe('access-token verifier', () => {
  it('refuses a token it verified before once the token has expired', async () => {
    const key = await issuerKey();
    const clock = manualClock();
    const jwks: JSONWebKeySet = { keys: [key.jwks.keys[0] as JWK] };
    const verifier = new JwtTokenVerifier({ issuer: ISSUER, keys: currentJwks(() => jwks), clock });
    const token = await mintAccessToken(key, {
      issuer: ISSUER,
      audience: AUDIENCE,
      agentId: 'agent-1',
      expiresIn: 60,
      now: clock.now(),
    });
    assert.equal((await verifier.verify(token, AUDIENCE)).client_id, 'agent-1');
    assert.equal((await verifier.verify(token, AUDIENCE)).client_id, 'agent-1', 'a second presentation');
    clock.advance(66_000);
    assert.equal(await refusalCode(verifier.verify(token, AUDIENCE)), 'ERR_TOKEN_EXPIRED');
  });

  it('refuses a token it verified before once its signing key left the key set', async () => {
    const key = await issuerKey();
    const other = await issuerKey();
    let jwks: JSONWebKeySet = { keys: [key.jwks.keys[0] as JWK, other.jwks.keys[0] as JWK] };
    const verifier = new JwtTokenVerifier({
      issuer: ISSUER,
      keys: currentJwks(() => jwks),
      clock: { now: () => Date.now() },
    });
    const token = await mintAccessToken(key, { issuer: ISSUER, audience: AUDIENCE, agentId: 'agent-1' });
    await verifier.verify(token, AUDIENCE);
    jwks = { keys: [other.jwks.keys[0] as JWK] };
    assert.equal(await refusalCode(verifier.verify(token, AUDIENCE)), 'ERR_TOKEN_KEY');
    // A rotation that keeps the key (a new key added) still accepts the token.
    jwks = { keys: [key.jwks.keys[0] as JWK, other.jwks.keys[0] as JWK] };
    await verifier.verify(token, AUDIENCE);
    jwks = { keys: [other.jwks.keys[0] as JWK, key.jwks.keys[0] as JWK] };
    assert.equal((await verifier.verify(token, AUDIENCE)).client_id, 'agent-1');
  });

  it('refuses a token verified for one audience when it is presented to another', async () => {
    const key = await issuerKey();
    const verifier = new JwtTokenVerifier({
      issuer: ISSUER,
      keys: currentJwks(() => ({ keys: [key.jwks.keys[0] as JWK] })),
      clock: { now: () => Date.now() },
    });
    const token = await mintAccessToken(key, { issuer: ISSUER, audience: AUDIENCE, agentId: 'agent-1' });
    await verifier.verify(token, AUDIENCE);
    assert.equal(
      await refusalCode(verifier.verify(token, 'https://warden.test/proxy/billing')),
      'ERR_TOKEN_AUDIENCE',
    );
  });

  it('refuses a tampered copy of a token it verified before', async () => {
    const key = await issuerKey();
    const verifier = new JwtTokenVerifier({
      issuer: ISSUER,
      keys: currentJwks(() => ({ keys: [key.jwks.keys[0] as JWK] })),
      clock: { now: () => Date.now() },
    });
    const token = await mintAccessToken(key, { issuer: ISSUER, audience: AUDIENCE, agentId: 'agent-1' });
    await verifier.verify(token, AUDIENCE);
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, client_id: 'agent-2' })).toString('base64url')}.${s}`;
    assert.equal(await refusalCode(verifier.verify(forged, AUDIENCE)), 'ERR_TOKEN_SIGNATURE');
  });
});
