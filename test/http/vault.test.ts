import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BACKENDS, tempDir } from '../support/databases.ts';
import { runWarden } from '../support/process.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startUpstream, type Upstream } from '../vault/upstream.ts';

const PUBLIC_URL = 'https://warden.example';

// Started at the top level so they live until the file ends (hooks scope `after` to themselves).
const up: Upstream = await startUpstream({
  redirectUris: [`${PUBLIC_URL}/v1/vault/connect/github-like/callback`],
});
after(() => up.close());
const SERVERS: Record<string, TestServer> = {};
for (const backend of BACKENDS) {
  SERVERS[backend] = await startTestServer(backend, { env: { WARDEN_PUBLIC_URL: PUBLIC_URL } });
}

for (const backend of BACKENDS) {
  describe(`vault admin API on ${backend}`, () => {
    const server = SERVERS[backend] as TestServer;

    it('creates a connection, connects the caller through the callback, and never returns a secret', async () => {
      const created = await server.call('POST', '/v1/vault/connections', {
        name: 'github-like',
        issuer: up.issuer,
        clientId: up.clientId,
        clientSecret: up.clientSecret,
        scopes: ['openid', 'offline_access'],
        accessRule: { agents: ['agent-1'] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.tokenEndpoint, `${up.issuer}/token`);
      assert.equal(created.body.clientSecretVersion, 1);

      const started = await server.call('POST', '/v1/vault/connect/github-like/start');
      assert.equal(started.status, 200, JSON.stringify(started.body));
      assert.equal(started.body.redirectUri, `${PUBLIC_URL}/v1/vault/connect/github-like/callback`);
      const callback = new URL(await up.authorize(started.body.authorizationUrl));
      // The browser comes back without an API token: the state is the credential.
      const done = await server.call(
        'GET',
        `/v1/vault/connect/github-like/callback${callback.search}`,
        undefined,
        null,
      );
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.equal(done.body.status, 'active');
      const replay = await server.call(
        'GET',
        `/v1/vault/connect/github-like/callback${callback.search}`,
        undefined,
        null,
      );
      assert.equal(replay.status, 400);
      assert.equal(replay.body.code, 'ERR_VAULT_CONNECT_STATE');
      assert.match(replay.headers.get('content-type') ?? '', /application\/problem\+json/);

      const accounts = await server.call('GET', '/v1/vault/connections/github-like/accounts');
      assert.equal(accounts.body.items.length, 1);
      assert.equal(accounts.body.items[0].userId, done.body.userId);

      // The gateway path: mint for an agent acting for that user; the upstream API accepts it.
      const minted = await server.warden.vault.getCredential({
        agentId: 'agent-1',
        templateId: 'tpl',
        userId: done.body.userId,
        connectionOrCredentialId: 'github-like',
      });
      assert.equal((await fetch(`${up.apiUrl}/me`, { headers: minted.headers })).status, 200);

      const everything = JSON.stringify([
        created.body,
        started.body,
        done.body,
        accounts.body,
        (await server.call('GET', '/v1/vault/connections')).body,
        (await server.call('GET', '/v1/vault/connections/github-like')).body,
      ]);
      assert.ok(!everything.includes(up.clientSecret));
      assert.ok(!everything.includes(minted.headers.authorization?.slice(7) as string));
    });

    it('stores service credentials write-only and refuses bad input without echoing it', async () => {
      const put = await server.call('POST', '/v1/vault/credentials', {
        kind: 'bearer',
        name: 'crm',
        value: 'crm-secret-value-1',
        accessRule: { agents: ['agent-1'], onBehalfOf: 'any' },
      });
      assert.equal(put.status, 201, JSON.stringify(put.body));
      const again = await server.call('POST', '/v1/vault/credentials', {
        kind: 'bearer',
        name: 'crm',
        value: 'crm-secret-value-2',
        accessRule: { agents: ['agent-1'], onBehalfOf: 'any' },
      });
      assert.equal(again.body.secretVersion, 2);
      const shown = JSON.stringify([
        put.body,
        again.body,
        (await server.call('GET', '/v1/vault/credentials')).body,
      ]);
      assert.ok(!shown.includes('crm-secret-value'));

      const bad = await server.call('POST', '/v1/vault/credentials', {
        kind: 'bearer',
        name: 'bad',
        value: 'line-one\r\nX-Injected: yes',
        accessRule: { agents: ['agent-1'] },
      });
      assert.equal(bad.status, 400);
      assert.ok(!JSON.stringify(bad.body).includes('X-Injected'));
      const unknown = await server.call('POST', '/v1/vault/connections', {
        name: 'x',
        issuer: up.issuer,
        clientId: 'c',
        clientSecret: 's',
        accessRule: {},
        extra: true,
      });
      assert.equal(unknown.status, 400);
      assert.equal((await server.call('GET', '/v1/vault/credentials/nope')).status, 404);
      assert.equal((await server.call('DELETE', '/v1/vault/credentials/crm')).status, 204);
      assert.equal((await server.call('GET', '/v1/vault/credentials/crm')).status, 404);
    });

    if (backend === 'sqlite') {
      it('warden secrets put reads the value from stdin; warden scan exits 1 on a finding', async () => {
        const env = {
          WARDEN_URL: server.url,
          WARDEN_TOKEN: server.adminToken,
          WARDEN_CLI_CONFIG_DIR: tempDir(),
        };
        const put = await runWarden(
          [
            'secrets',
            'put',
            'from-cli',
            '--kind',
            'api_key',
            '--agent',
            'agent-1',
            '--on-behalf-of',
            'any',
            '--json',
          ],
          env,
          'cli-secret-value-42\n',
        );
        assert.equal(put.code, 0, put.stderr);
        assert.ok(!put.stdout.includes('cli-secret-value-42'));
        const minted = await server.warden.vault.getCredential({
          agentId: 'agent-1',
          templateId: 't',
          connectionOrCredentialId: 'from-cli',
        });
        assert.deepEqual(minted.headers, { 'x-api-key': 'cli-secret-value-42' });

        const dir = tempDir();
        mkdirSync(join(dir, 'cfg'));
        const token = ['ghp', '_wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx'].join('');
        writeFileSync(join(dir, 'cfg', 'settings.json'), `{"token": "${token}"}\n`);
        const found = await runWarden(['scan', dir], env);
        assert.equal(found.code, 1);
        assert.match(found.stdout, /cfg\/settings\.json:1:\d+ {2}GITHUB_TOKEN/);
        assert.match(
          found.stdout,
          /warden secrets put github-settings-json --from-file github-settings-json\.secret/,
        );
        assert.ok(!found.stdout.includes(token) && !found.stderr.includes(token));
        const clean = tempDir();
        writeFileSync(join(clean, 'a.ts'), 'export const a = 1;\n');
        assert.equal((await runWarden(['scan', clean], env)).code, 0);
      });
    }
  });
}
