import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { generateMasterKey, Keyring, ManualClock } from '../../src/core/index.ts';
import { allMigrations } from '../../src/http/index.ts';
import { Store } from '../../src/store/index.ts';
import {
  MAX_TOKEN_LIFETIME_MS,
  ReplayCache,
  rewrapTokenKeys,
  SigningKeyStore,
} from '../../src/tokens/index.ts';
import { BACKENDS, freshDatabase } from '../support/databases.ts';
import { registerAgent, requestToken, startTokenServer } from './support.ts';

async function openStore(backend: (typeof BACKENDS)[number]): Promise<Store> {
  const { url, dataDir } = await freshDatabase(backend);
  const store = await Store.open({ url, dataDir });
  await store.migrate(allMigrations);
  return store;
}

for (const backend of BACKENDS) {
  describe(`signing keys on ${backend}`, () => {
    it('creates one key at first load and stores its private half sealed', async () => {
      const store = await openStore(backend);
      try {
        const keyring = new Keyring(generateMasterKey().key);
        const keys = new SigningKeyStore(store, keyring, new ManualClock());
        const loaded = await keys.load('ES256');
        assert.equal(loaded.length, 1);
        const [key] = loaded;
        assert.equal(key?.alg, 'ES256');
        assert.equal(key?.publicJwk.d, undefined);
        assert.equal(typeof key?.privateJwk.d, 'string');
        const row = await store.db.selectFrom('oauth_signing_keys').selectAll().executeTakeFirstOrThrow();
        assert.match(row.private_jwk_sealed, /^wdn1\./);
        assert.ok(!row.private_jwk_sealed.includes(key?.privateJwk.d as string));
        assert.ok(!JSON.stringify(row).includes(key?.privateJwk.d as string), 'no plaintext private key');
        assert.deepEqual(
          (await keys.load('ES256')).map((k) => k.kid),
          [key?.kid],
          'loaded again, not regenerated',
        );
        // Another master key cannot open it.
        const stranger = new SigningKeyStore(store, new Keyring(generateMasterKey().key), new ManualClock());
        await assert.rejects(stranger.load('ES256'), /sealed under master key/);
      } finally {
        await store.close();
      }
    });

    it('rotates: the new key signs, the old one stays published until its tokens have expired', async () => {
      const store = await openStore(backend);
      try {
        const clock = new ManualClock();
        const keys = new SigningKeyStore(store, new Keyring(generateMasterKey().key), clock);
        const [first] = await keys.load('ES256');
        clock.advance(1000);
        const second = await keys.rotate('ES256');
        let loaded = await keys.load('ES256');
        assert.deepEqual(
          loaded.map((k) => k.kid),
          [second, first?.kid],
        );
        assert.equal(loaded[1]?.publishUntil, clock.now() + MAX_TOKEN_LIFETIME_MS + 5 * 60 * 1000);
        clock.advance(MAX_TOKEN_LIFETIME_MS);
        assert.equal((await keys.load('ES256')).length, 2, 'still published while a token could be alive');
        clock.advance(5 * 60 * 1000 + 1);
        loaded = await keys.load('ES256');
        assert.deepEqual(
          loaded.map((k) => k.kid),
          [second],
        );
      } finally {
        await store.close();
      }
    });

    it('rotates on schedule only when the active key is older than the interval', async () => {
      const store = await openStore(backend);
      try {
        const clock = new ManualClock();
        const keys = new SigningKeyStore(store, new Keyring(generateMasterKey().key), clock);
        await keys.load('ES256');
        assert.equal(await keys.rotateIfDue('ES256', 3600_000), undefined);
        clock.advance(3600_000);
        const kid = await keys.rotateIfDue('ES256', 3600_000);
        assert.equal(typeof kid, 'string');
        assert.equal((await keys.load('ES256'))[0]?.kid, kid);
      } finally {
        await store.close();
      }
    });

    it('makes EdDSA and RS256 keys when configured', async () => {
      const store = await openStore(backend);
      try {
        const keys = new SigningKeyStore(store, new Keyring(generateMasterKey().key), new ManualClock());
        const [ed] = await keys.load('EdDSA');
        assert.equal(ed?.publicJwk.kty, 'OKP');
        assert.equal(ed?.publicJwk.crv, 'Ed25519');
        await keys.rotate('RS256');
        const [rsa] = await keys.load('RS256');
        assert.equal(rsa?.publicJwk.kty, 'RSA');
        assert.equal(rsa?.alg, 'RS256');
      } finally {
        await store.close();
      }
    });

    it('re-wraps sealed keys and secrets under a new master key', async () => {
      const store = await openStore(backend);
      try {
        const oldKey = generateMasterKey().key;
        const keys = new SigningKeyStore(store, new Keyring(oldKey), new ManualClock());
        const [before] = await keys.load('ES256');
        const newKey = generateMasterKey().key;
        const count = await rewrapTokenKeys(store, new Keyring(newKey, [oldKey]));
        assert.equal(count, 1);
        const after = await new SigningKeyStore(store, new Keyring(newKey), new ManualClock()).load('ES256');
        assert.deepEqual(after[0]?.privateJwk, before?.privateJwk);
      } finally {
        await store.close();
      }
    });

    it('lets exactly one of many concurrent claims of a jti win', async () => {
      const store = await openStore(backend);
      try {
        const clock = new ManualClock(Date.now());
        const cache = new ReplayCache(store, clock);
        const exp = Math.floor(clock.now() / 1000) + 60;
        const results = await Promise.all(
          Array.from({ length: 8 }, () => cache.claim('client', 'jti-1', exp)),
        );
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal(await cache.claim('other-client', 'jti-1', exp), true, 'scoped by issuer');
        clock.advance(61_000);
        assert.equal(
          await cache.claim('client', 'jti-1', exp + 120),
          true,
          'an expired claim can be retaken',
        );
        assert.equal(await cache.claim('client', 'jti-1', exp + 120), false);
        clock.advance(200_000);
        assert.ok((await cache.purge()) >= 1);
      } finally {
        await store.close();
      }
    });
  });
}

describe('key rotation in a running server', async () => {
  const server = await startTokenServer('sqlite');
  const agent = await registerAgent(server, { scopes: ['a'] });

  it('keeps tokens signed by the old key valid and publishes both keys', async () => {
    const before = await requestToken(server, agent);
    assert.equal(before.status, 200, JSON.stringify(before.body));
    const oldKid = decodeProtectedHeader(before.body.access_token).kid;
    const newKid = await server.warden.tokens.rotateKeys();
    assert.notEqual(newKid, oldKid);
    const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as any;
    assert.deepEqual(
      jwks.keys.map((k: { kid: string }) => k.kid),
      [newKid, oldKid],
    );
    const after = await requestToken(server, agent);
    assert.equal(after.status, 200, JSON.stringify(after.body));
    assert.equal(decodeProtectedHeader(after.body.access_token).kid, newKid);
    assert.equal((await server.warden.tokens.introspect(before.body.access_token)).active, true);
    assert.equal((await server.warden.tokens.introspect(after.body.access_token)).active, true);
  });
});
