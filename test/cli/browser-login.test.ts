import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WARDEN_BIN } from '../support/process.ts';
import { formField, JarBrowser } from '../tokens/browser-jar.ts';
import { createPerson } from '../tokens/code-flow-support.ts';
import { startTokenServer } from '../tokens/support.ts';

describe('warden login --browser', () => {
  it('signs in through the browser with PKCE on a loopback redirect and saves a short-lived API token', async () => {
    const server = await startTokenServer('sqlite');
    const erin = await createPerson(server, 'erin', ['approver', 'auditor']);
    const dir = mkdtempSync(join(tmpdir(), 'warden-cli-'));
    const child = spawn(process.execPath, [WARDEN_BIN, 'login', '--browser', '--role', 'auditor'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        WARDEN_URL: server.url,
        WARDEN_CLI_CONFIG_DIR: dir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    const authUrl = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /(http:\/\/\S+\/auth\?\S+)/.exec(stderr);
        if (m) resolve(m[1] as string);
      });
      child.on('exit', () => reject(new Error(`exited early: ${stderr}`)));
    });
    const url = new URL(authUrl);
    assert.equal(url.searchParams.get('client_id'), 'warden-console');
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(String(url.searchParams.get('redirect_uri')), /^http:\/\/127\.0\.0\.1:\d+\/callback$/);

    // The person's browser: sign in on Warden's page; the redirect lands on the CLI's listener.
    const browser = new JarBrowser('never:');
    const login = await browser.go(authUrl);
    assert.equal(login.status, 200);
    const done = await browser.post(`${login.url}/login`, [
      ['csrf', formField(login.body, 'csrf')],
      ['username', 'erin'],
      ['password', erin.password],
    ]);
    assert.match(done.url, /^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
    assert.match(done.body, /Signed in/);

    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0, stderr);
    assert.match(stdout, /Logged in to .* as erin \(auditor\)/);
    const saved = JSON.parse(
      (await import('node:fs')).readFileSync(join(dir, 'credentials.json'), 'utf8'),
    ) as { token: string };
    assert.match(saved.token, /^wdn_/);
    const me = await server.call('GET', '/v1/me', undefined, saved.token);
    assert.equal(me.status, 200);
    assert.equal(me.body.user.username, 'erin');
    assert.equal(me.body.role, 'auditor');
  });

  it('refuses to trade anything but an active console token for an API token', async () => {
    const server = await startTokenServer('sqlite');
    const res = await server.call(
      'POST',
      '/v1/login/console',
      { access_token: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl' },
      null,
    );
    assert.equal(res.status, 401);
    assert.equal(res.body.code, 'ERR_TOKEN_INVALID');
  });
});
