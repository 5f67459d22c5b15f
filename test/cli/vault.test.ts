import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, loadConfig } from '../../src/core/index.ts';
import { createWarden } from '../../src/http/index.ts';
import { tempDir } from '../support/databases.ts';
import { runWarden } from '../support/process.ts';

const ADMIN = { type: 'user', id: 'admin' } as const;

describe('warden keys rotate-master with vault secrets', () => {
  it('re-wraps every vault secret version; a node with only the new key still mints them', async () => {
    const env = { WARDEN_DATA_DIR: tempDir(), WARDEN_LOG_LEVEL: 'silent' };
    const open = () => createWarden(loadConfig(env), { logger: createLogger({ level: 'silent' }) });
    const first = await open();
    const rule = { agents: ['agent-1'], onBehalfOf: 'any' as const };
    await first.vault.putCredential(
      { kind: 'bearer', name: 'svc', value: 'svc-v1-secret', accessRule: rule },
      ADMIN,
    );
    await first.vault.putCredential(
      { kind: 'bearer', name: 'svc', value: 'svc-v2-secret', accessRule: rule },
      ADMIN,
    );
    const oldKid = first.keyring.current.kid;
    await first.close();

    const res = await runWarden(['keys', 'rotate-master', '--json'], env);
    assert.equal(res.code, 0, res.stderr);
    // The core key check, the audit ledger's signing key, both credential versions, and the token
    // service's signing key, DPoP nonce secret and attestation challenge secret.
    assert.equal(JSON.parse(res.stdout).rewrapped, 7);

    const second = await open();
    try {
      assert.notEqual(second.keyring.current.kid, oldKid);
      assert.deepEqual(second.keyring.kids, [second.keyring.current.kid], 'the old key is gone');
      const minted = await second.vault.getCredential({
        agentId: 'agent-1',
        templateId: 't',
        connectionOrCredentialId: 'svc',
      });
      assert.deepEqual(minted.headers, { authorization: 'Bearer svc-v2-secret' });
      const rows = await second.store.db.selectFrom('vault_secret_versions').select('sealed').execute();
      assert.equal(rows.length, 2);
      assert.ok(rows.every((r) => second.keyring.kidOf(r.sealed as string) === second.keyring.current.kid));
    } finally {
      await second.close();
    }
  });
});
