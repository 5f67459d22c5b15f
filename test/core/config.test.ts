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
