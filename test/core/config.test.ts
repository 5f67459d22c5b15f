import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type ConfigError, loadConfig, publicUrlOf } from '../../src/core/index.ts';
import { tempDir } from '../support/databases.ts';

describe('configuration', () => {
  it('defaults to the embedded database on 127.0.0.1:8420', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8420);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.dataDir, './warden-data');
    assert.equal(c.databaseUrl, undefined);
    assert.equal(publicUrlOf(c), 'http://127.0.0.1:8420');
  });

  it('reads a JSON file and lets the environment override it', () => {
    const file = join(tempDir(), 'warden.json');
    writeFileSync(file, JSON.stringify({ port: 9000, audit: { failMode: 'open' } }));
    const c = loadConfig({ WARDEN_CONFIG: file, WARDEN_PORT: '9001' });
    assert.equal(c.port, 9001);
    assert.equal(c.audit.failMode, 'open');
  });

  it('names the key and the variable of a wrong value', () => {
    assert.throws(
      () => loadConfig({ WARDEN_AUDIT_FAIL_MODE: 'maybe' }),
      (e: ConfigError) => {
        assert.match(e.message, /audit\.failMode \(WARDEN_AUDIT_FAIL_MODE\)/);
        return true;
      },
    );
  });

  it('reads the console client redirect URIs, and refuses plain http off loopback', () => {
    const c = loadConfig({
      WARDEN_CONSOLE_REDIRECT_URIS: 'https://console.example/callback, http://127.0.0.1/callback',
      WARDEN_CONSOLE_ACCESS_TOKEN_LIFETIME: '600',
    });
    assert.deepEqual(c.console.redirectUris, [
      'https://console.example/callback',
      'http://127.0.0.1/callback',
    ]);
    assert.equal(c.console.accessTokenLifetimeSeconds, 600);
    assert.deepEqual(loadConfig({}).console, { redirectUris: [], accessTokenLifetimeSeconds: 900 });
    assert.throws(
      () => loadConfig({ WARDEN_CONSOLE_REDIRECT_URIS: 'http://console.example/callback' }),
      (e: ConfigError) => {
        assert.match(e.message, /console\.redirectUris/);
        return true;
      },
    );
  });

  it('reads how the gateway waits for approvals, and refuses an unknown mode', () => {
    assert.deepEqual(loadConfig({}).gateway, { approvalMode: 'hold', approvalWaitSeconds: 30 });
    const c = loadConfig({
      WARDEN_GATEWAY_APPROVAL_MODE: 'pending',
      WARDEN_GATEWAY_APPROVAL_WAIT_SECONDS: '5',
    });
    assert.deepEqual(c.gateway, { approvalMode: 'pending', approvalWaitSeconds: 5 });
    assert.throws(
      () => loadConfig({ WARDEN_GATEWAY_APPROVAL_MODE: 'later' }),
      /gateway\.approvalMode \(WARDEN_GATEWAY_APPROVAL_MODE\)/,
    );
  });

  it('reads trusted issuers for token exchange from JSON, and refuses ambiguous or unsafe entries', () => {
    const defaults = loadConfig({}).tokens;
    assert.equal(defaults.maxDelegationDepth, 3);
    assert.deepEqual(defaults.trustedIssuers, []);
    const c = loadConfig({
      WARDEN_TOKENS_MAX_DELEGATION_DEPTH: '2',
      WARDEN_TOKENS_TRUSTED_ISSUERS: JSON.stringify([
        { issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks', audience: 'warden' },
      ]),
    });
    assert.equal(c.tokens.maxDelegationDepth, 2);
    assert.deepEqual(c.tokens.trustedIssuers[0], {
      issuer: 'https://idp.example',
      jwksUri: 'https://idp.example/jwks',
      audience: 'warden',
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      userClaim: 'email',
      userMatch: 'email',
    });
    const bad = (entry: Record<string, unknown>) =>
      assert.throws(
        () => loadConfig({ WARDEN_TOKENS_TRUSTED_ISSUERS: JSON.stringify([entry]) }),
        /tokens\.trustedIssuers/,
      );
    const base = { issuer: 'https://idp.example', audience: 'warden' };
    bad(base);
    bad({ ...base, jwksUri: 'https://idp.example/jwks', jwks: { keys: [{ kty: 'EC' }] } });
    bad({ ...base, jwksUri: 'https://idp.example/jwks', algorithms: ['HS256'] });
    bad({ ...base, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } });
    bad({ ...base, jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' }] } });
    assert.throws(() => loadConfig({ WARDEN_TOKENS_TRUSTED_ISSUERS: 'not json' }), /tokens\.trustedIssuers/);
    assert.throws(() => loadConfig({ WARDEN_TOKENS_MAX_DELEGATION_DEPTH: '0' }), /maxDelegationDepth/);
  });

  it('refuses unknown keys in the file', () => {
    const file = join(tempDir(), 'warden.json');
    writeFileSync(file, JSON.stringify({ prot: 1 }));
    assert.throws(() => loadConfig({ WARDEN_CONFIG: file }), /prot/);
  });

  it('never echoes the value of a bad secret', () => {
    assert.throws(
      () => loadConfig({ WARDEN_ADMIN_TOKEN: 'short-secret' }),
      (e: Error) => {
        assert.doesNotMatch(e.message, /short-secret/);
        assert.match(e.message, /adminToken \(WARDEN_ADMIN_TOKEN\)/);
        return true;
      },
    );
  });
});
