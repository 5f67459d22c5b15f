import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../support/databases.ts';
import { runWarden, startServe } from '../support/process.ts';

function bannerToken(output: string): string {
  const m = /API token: (wdn_[A-Za-z0-9_-]+)/.exec(output);
  assert.ok(m, `no token in banner:\n${output}`);
  return m[1] as string;
}

describe('first start on the embedded default', () => {
  it('creates the data directory, a 0600 master key, the database and an administrator, and prints how to log in', async () => {
    const dataDir = join(tempDir(), 'warden-data');
    const serve = await startServe({ WARDEN_DATA_DIR: dataDir });
    const out = serve.output();
    assert.match(out, /Warden is ready at http:\/\/127\.0\.0\.1:\d+ \(sqlite/);
    assert.match(out, /warden login --token-stdin/);
    assert.match(out, /password: {2}\S+ {3}\(shown once\)/);
    assert.equal(statSync(join(dataDir, 'master.key')).mode & 0o777, 0o600);
    assert.ok(readdirSync(dataDir).includes('warden.db'));
    const token = bannerToken(out);
    const me = await fetch(`${serve.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } }).then(
      (r) => r.json() as Promise<{ user: { username: string }; role: string }>,
    );
    assert.equal(me.user.username, 'admin');
    assert.equal(me.role, 'admin');
    await serve.stop();

    const again = await startServe({ WARDEN_DATA_DIR: dataDir });
    assert.doesNotMatch(again.output(), /First start/);
    const me2 = await fetch(`${again.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me2.status, 200, 'a second start reuses keys, database and token');
  });

  it('makes WARDEN_ADMIN_TOKEN the bootstrap administrator token', async () => {
    const dataDir = tempDir();
    const token = 'automation-token-0123456789-abcdefghijklmnop';
    const serve = await startServe({ WARDEN_DATA_DIR: dataDir, WARDEN_ADMIN_TOKEN: token });
    assert.doesNotMatch(serve.output(), new RegExp(token), 'a preset token is never printed');
    const res = await fetch(`${serve.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
  });

  it('stores no secret in plaintext in the SQLite files', async () => {
    const dataDir = tempDir();
    const token = 'plaintext-probe-token-0123456789-abcdefghijk';
    const serve = await startServe({ WARDEN_DATA_DIR: dataDir, WARDEN_ADMIN_TOKEN: token });
    const password = /password: {2}(\S+)/.exec(serve.output())?.[1] as string;
    await serve.stop();
    const masterKey = readFileSync(join(dataDir, 'master.key'), 'utf8').trim();
    const bytes = Buffer.concat(
      readdirSync(dataDir)
        .filter((f) => f.startsWith('warden.db'))
        .map((f) => readFileSync(join(dataDir, f))),
    );
    assert.ok(bytes.length > 0);
    for (const secret of [token, password, masterKey, Buffer.from(masterKey, 'base64url').toString('hex')]) {
      assert.equal(bytes.indexOf(Buffer.from(secret)), -1, 'a secret was found in the database file');
    }
  });

  it('refuses to start with a master key other than the database was created with', async () => {
    const dataDir = tempDir();
    const first = await startServe({ WARDEN_DATA_DIR: dataDir, WARDEN_MASTER_KEY: 'a'.repeat(64) });
    await first.stop();
    await assert.rejects(
      startServe({ WARDEN_DATA_DIR: dataDir, WARDEN_MASTER_KEY: 'b'.repeat(64) }),
      (e: Error) => {
        assert.match(e.message, /master key does not match this database/);
        return true;
      },
    );
  });

  it('stops a start with a wrong configuration value, naming the key', async () => {
    const res = await runWarden(['serve'], { WARDEN_DATA_DIR: tempDir(), WARDEN_PORT: '99999' });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /port \(WARDEN_PORT\)/);
    const bad = await runWarden(['serve'], { WARDEN_DATA_DIR: tempDir(), WARDEN_MASTER_KEY: 'too-short' });
    assert.match(bad.stderr, /WARDEN_MASTER_KEY/);
    assert.doesNotMatch(bad.stderr, /too-short/, 'the value of a secret is never echoed');
  });
});
