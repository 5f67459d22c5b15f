import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BACKENDS, tempDir } from '../support/databases.ts';
import { runWarden } from '../support/process.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { waitFor } from './support/ledger.ts';
import { httpReceiver } from './support/receivers.ts';

const HMAC_KEY = 'admin-api-hmac-key-0123456789-abcdefghij';

async function tokenFor(s: TestServer, username: string, role: string): Promise<string> {
  await s.call('POST', '/v1/users', { username, roles: [role] });
  const user = (await s.call('GET', `/v1/users/${username}`)).body;
  const token = await s.call('POST', '/v1/tokens', { name: username, role, user_id: user.id });
  assert.equal(token.status, 201, JSON.stringify(token.body));
  return token.body.token;
}

for (const backend of BACKENDS) {
  describe(`export admin API and CLI (${backend})`, () => {
    it('manages sinks over /v1/export/sinks: admin writes, security_analyst reads, secrets never returned', async () => {
      const s = await startTestServer(backend);
      const hook = await httpReceiver(() => ({ status: 204 }));
      const created = await s.call('POST', '/v1/export/sinks', {
        name: 'hook',
        type: 'webhook',
        url: `${hook.url}/in`,
        hmacKey: HMAC_KEY,
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.format, 'ocsf');
      assert.deepEqual(created.body.secrets_set, ['hmacKey']);
      assert.ok(!JSON.stringify(created.body).includes(HMAC_KEY));

      const analyst = await tokenFor(s, 'sam', 'security_analyst');
      const list = await s.call('GET', '/v1/export/sinks', undefined, analyst);
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.items.map((i: { name: string }) => i.name),
        ['hook'],
      );
      assert.ok(!JSON.stringify(list.body).includes(HMAC_KEY));
      const denied = await s.call('DELETE', '/v1/export/sinks/hook', undefined, analyst);
      assert.equal(denied.status, 403);
      assert.equal(denied.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      const auditor = await tokenFor(s, 'aud', 'auditor');
      assert.equal((await s.call('GET', '/v1/export/sinks', undefined, auditor)).status, 403);

      // The node's exporter runs the sink: events arrive, and status shows health and lag.
      await waitFor(
        async () => (await s.call('GET', '/v1/export/sinks/hook/status')).body.lag.events === 0,
        15_000,
        'delivery',
      );
      const status = await s.call('GET', '/v1/export/sinks/hook/status', undefined, analyst);
      assert.equal(status.status, 200);
      assert.equal(status.body.health, 'healthy');
      assert.equal(status.body.running, true);
      assert.ok(hook.requests.length > 0);
      const delivered = JSON.parse(hook.requests[0]!.body.toString('utf8')).events;
      assert.ok(delivered.some((e: any) => e.metadata.event_code === 'export.sink_changed'));

      const metrics = await fetch(`${s.url}/metrics`).then((r) => r.text());
      assert.match(metrics, /warden_export_lag_events\{sink="hook"\} 0/);
      assert.match(metrics, /warden_export_sink_health\{sink="hook",state="healthy"\} 1/);
      assert.match(metrics, /warden_export_lag_seconds\{sink="hook"\} 0/);

      const bad = await s.call('POST', '/v1/export/sinks', {
        name: 'x',
        type: 'webhook',
        url: 'ftp://x',
        hmacKey: 'short',
      });
      assert.equal(bad.status, 400);
      assert.ok(!JSON.stringify(bad.body).includes('short'));
      const patched = await s.call('PATCH', '/v1/export/sinks/hook', { format: 'ecs' });
      assert.equal(patched.status, 200);
      assert.equal(patched.body.format, 'ecs');
      assert.deepEqual(patched.body.secrets_set, ['hmacKey']);
      assert.equal((await s.call('PATCH', '/v1/export/sinks/hook', { type: 'file' })).status, 400);
      assert.equal((await s.call('DELETE', '/v1/export/sinks/hook')).status, 204);
      assert.equal((await s.call('GET', '/v1/export/sinks/hook')).status, 404);
      const rows = await s.warden.store.db
        .selectFrom('audit_events')
        .select('body')
        .where('type', '=', 'export.sink_changed')
        .execute();
      assert.equal(rows.length, 3);
      assert.ok(!JSON.stringify(rows).includes(HMAC_KEY));

      const openapi = await s.call('GET', '/openapi.json', undefined, null);
      assert.ok(openapi.body.paths['/v1/export/sinks']);
    });
  });
}

// The CLI is a thin client of the API tested above on both back ends; one back end suffices here.
describe('warden sinks CLI', () => {
  it('warden sinks create|list|status|delete drive the same API, secrets read from a file', async () => {
    const s = await startTestServer('sqlite');
    const dir = tempDir();
    const env = { WARDEN_URL: s.url, WARDEN_CLI_CONFIG_DIR: join(dir, 'cli') };
    const w = (args: string[], input?: string) => runWarden(args, env, input);
    assert.equal((await w(['login', '--token-stdin'], s.adminToken)).code, 0);
    const out = join(dir, 'audit.jsonl');
    writeFileSync(join(dir, 'sink.json'), JSON.stringify({ type: 'file', path: out, format: 'cef' }));
    const created = await w(['sinks', 'create', 'local', '--file', join(dir, 'sink.json'), '--json']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(JSON.parse(created.stdout).type, 'file');
    const hook = await w(
      ['sinks', 'create', 'hook', '--stdin', '--json'],
      JSON.stringify({ type: 'webhook', url: 'http://127.0.0.1:9/x', hmacKey: HMAC_KEY }),
    );
    assert.equal(hook.code, 0, hook.stderr);
    assert.ok(!hook.stdout.includes(HMAC_KEY));
    const list = await w(['sinks', 'list']);
    assert.match(list.stdout, /NAME\s+TYPE\s+FORMAT/);
    assert.match(list.stdout, /local\s+file\s+cef/);
    assert.ok(!list.stdout.includes(HMAC_KEY));
    await waitFor(
      async () => (await s.call('GET', '/v1/export/sinks/local/status')).body.lag.events === 0,
      15_000,
      'file delivery',
    );
    assert.match(readFileSync(out, 'utf8'), /^CEF:0\|Warden\|Warden\|/);
    const status = await w(['sinks', 'status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /hook\s+webhook\s+(healthy|degraded|failing)/);
    assert.equal((await w(['sinks', 'delete', 'hook'])).code, 0);
    const gone = await w(['sinks', 'delete', 'hook']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no export sink named hook/);
  });
});
