import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BACKENDS, tempDir } from '../support/databases.ts';
import { keyPair, templateSpec } from '../support/fixtures.ts';
import { runWarden } from '../support/process.ts';
import { startTestServer } from '../support/server.ts';

for (const backend of BACKENDS) {
  describe(`warden CLI against a running server on ${backend}`, () => {
    it('manages the registry end to end: login, providers, templates, agents and their lifecycle', async () => {
      const s = await startTestServer(backend);
      const dir = tempDir();
      const env = { WARDEN_URL: s.url, WARDEN_CLI_CONFIG_DIR: join(dir, 'cli') };
      const w = (args: string[], input?: string) => runWarden(args, env, input);

      const login = await w(['login', '--token-stdin'], s.adminToken);
      assert.equal(login.code, 0, login.stderr);
      assert.match(login.stdout, /Logged in to .* as admin \(admin\)/);
      assert.equal(statSync(join(dir, 'cli', 'credentials.json')).mode & 0o777, 0o600);

      writeFileSync(join(dir, 'jwks.json'), JSON.stringify((await keyPair()).jwks));
      writeFileSync(join(dir, 'spec.json'), JSON.stringify(templateSpec()));
      const provider = await w([
        'providers',
        'create',
        'acme',
        '--contact',
        'sec@acme.test',
        '--jwks',
        join(dir, 'jwks.json'),
        '--json',
      ]);
      assert.equal(provider.code, 0, provider.stderr);
      assert.equal(JSON.parse(provider.stdout).status, 'trusted');
      const template = await w([
        'templates',
        'create',
        'support',
        '--spec',
        join(dir, 'spec.json'),
        '--json',
      ]);
      assert.equal(template.code, 0, template.stderr);

      const keyFile = join(dir, 'bot.key.json');
      const agent = await w([
        'agents',
        'create',
        'bot',
        '--provider',
        'acme',
        '--template',
        'support',
        '--purpose',
        'triage',
        '--key-file',
        keyFile,
        '--json',
      ]);
      assert.equal(agent.code, 0, agent.stderr);
      const created = JSON.parse(agent.stdout);
      assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'the private key file is 0600');
      const privateJwk = JSON.parse(readFileSync(keyFile, 'utf8'));
      assert.ok(privateJwk.d, 'the private key stays in the local file');
      assert.equal(created.jwks.keys[0].kid, privateJwk.kid);
      assert.equal(created.jwks.keys[0].d, undefined, 'only the public key was registered');
      const stored = await s.warden.store.db
        .selectFrom('agents')
        .select('jwks')
        .where('id', '=', created.id)
        .executeTakeFirst();
      assert.doesNotMatch(
        String(stored?.jwks),
        new RegExp(privateJwk.d),
        'the server never saw the private key',
      );

      const list = await w(['agents', 'list']);
      assert.equal(list.code, 0);
      assert.match(list.stdout, /^ID\s+NAME\s+STATUS/m);
      assert.match(list.stdout, /bot\s+active/);

      assert.equal((await w(['agents', 'suspend', 'bot', '--reason', 'odd traffic'])).code, 0);
      const shown = JSON.parse((await w(['agents', 'show', 'bot', '--json'])).stdout);
      assert.equal(shown.status, 'suspended');
      assert.equal((await w(['agents', 'resume', 'bot', '--reason', 'cleared'])).code, 0);
      assert.equal((await w(['agents', 'retire', 'bot', '--reason', 'done'])).code, 0);
      const illegal = await w(['agents', 'resume', 'bot', '--reason', 'oops']);
      assert.equal(illegal.code, 1);
      assert.match(illegal.stderr, /agent bot is retired; it cannot resume \(ERR_ILLEGAL_TRANSITION\)/);

      const user = await w(['users', 'create', 'sam', '--role', 'security_analyst', '--json']);
      assert.equal(user.code, 0, user.stderr);
      const tok = await w(['tokens', 'create', 'ci', '--role', 'admin', '--json']);
      assert.match(JSON.parse(tok.stdout).token, /^wdn_/);
      const distrust = await w(['providers', 'distrust', 'acme', '--reason', 'breach', '--json']);
      assert.equal(JSON.parse(distrust.stdout).provider.status, 'distrusted');
    });
  });
}

describe('warden login with a password', () => {
  it('reads the password from stdin and saves a short-lived token', async () => {
    const s = await startTestServer('sqlite');
    const dir = tempDir();
    const env = { WARDEN_URL: s.url, WARDEN_CLI_CONFIG_DIR: dir };
    const login = await runWarden(
      ['login', '--username', 'admin', '--role', 'security_analyst'],
      env,
      `${s.adminPassword}\n`,
    );
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /as admin \(security_analyst\)/);
    const denied = await runWarden(
      ['providers', 'create', 'x', '--contact', 'c', '--jwks', '/dev/null'],
      env,
    );
    assert.equal(denied.code, 1);
    const wrong = await runWarden(['login', '--username', 'admin'], env, 'not-the-password\n');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong username or password \(ERR_BAD_CREDENTIALS\)/);
  });
});

describe('warden CLI errors', () => {
  it('exits non-zero with the server’s reason and the invalid fields', async () => {
    const s = await startTestServer('sqlite');
    const dir = tempDir();
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(templateSpec({ token_lifetime: 99999 })));
    const res = await runWarden(['templates', 'create', 'bad', '--spec', join(dir, 'spec.json')], {
      WARDEN_URL: s.url,
      WARDEN_TOKEN: s.adminToken,
    });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /ERR_VALIDATION/);
    assert.match(res.stderr, /body\.spec\.token_lifetime/);
  });

  it('says clearly when it cannot reach the server or is not logged in', async () => {
    const dir = tempDir();
    const unreachable = await runWarden(['agents', 'list'], {
      WARDEN_URL: 'http://127.0.0.1:1',
      WARDEN_TOKEN: 'x',
      WARDEN_CLI_CONFIG_DIR: dir,
    });
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach Warden at http:\/\/127\.0\.0\.1:1/);
    const anonymous = await runWarden(['agents', 'list'], { WARDEN_CLI_CONFIG_DIR: dir });
    assert.match(anonymous.stderr, /not logged in/);
  });

  it('refuses to overwrite an existing private key file', async () => {
    const s = await startTestServer('sqlite');
    const dir = tempDir();
    const keyFile = join(dir, 'exists.json');
    writeFileSync(keyFile, 'keep me');
    const res = await runWarden(
      [
        'agents',
        'create',
        'x',
        '--provider',
        'p',
        '--template',
        't',
        '--purpose',
        'p',
        '--key-file',
        keyFile,
      ],
      { WARDEN_URL: s.url, WARDEN_TOKEN: s.adminToken },
    );
    assert.equal(res.code, 1);
    assert.match(res.stderr, /refusing to overwrite/);
    assert.equal(readFileSync(keyFile, 'utf8'), 'keep me');
  });
});
