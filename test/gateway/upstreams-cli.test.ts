import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startTicketsServer } from '../../examples/tickets-server.ts';
import { toolDefinitionHash } from '../../src/gateway/index.ts';
import { tempDir } from '../support/databases.ts';
import { ROOT, runWarden } from '../support/process.ts';
import { startTestServer } from '../support/server.ts';

describe('warden upstreams (CLI and admin API)', () => {
  it('adds, approves (pinning tool hashes), lists, shows and removes upstreams, HTTP and stdio', async () => {
    const s = await startTestServer('sqlite');
    const upstream = await startTicketsServer();
    after(() => upstream.close());
    const dir = tempDir();
    const env = { WARDEN_URL: s.url, WARDEN_CLI_CONFIG_DIR: join(dir, 'cli') };
    const w = (args: string[], input?: string) => runWarden(args, env, input);
    assert.equal((await w(['login', '--token-stdin'], s.adminToken)).code, 0);

    const added = await s.call('POST', '/v1/gateway/upstreams', {
      name: 'tickets',
      url: upstream.url,
      credential: 'tickets-key',
      scopes: ['tickets:read'],
    });
    assert.equal(added.status, 201);
    assert.equal(added.body.status, 'pending');
    const approved = await s.call('POST', '/v1/gateway/upstreams/tickets/approve');
    // The gateway asks the upstream for its tools with the vault credential; no vault is wired in
    // this server, so approval fails closed and says why.
    assert.equal(approved.status, 400);
    assert.match(approved.body.detail, /could not be asked for its tools/);

    const plain = await w(['upstreams', 'add', 'desk', '--url', upstream.url, '--json']);
    assert.equal(plain.code, 0, plain.stderr);
    const ok = await w(['upstreams', 'approve', 'desk', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const pins = JSON.parse(ok.stdout).pins as Record<string, string>;
    assert.deepEqual(Object.keys(pins).sort(), ['create', 'refund', 'search', 'slow']);
    assert.equal(
      pins.create,
      toolDefinitionHash({
        name: 'create',
        description: 'Create a support ticket.',
        inputSchema: await listInputSchema(upstream.url, 'create'),
      }),
    );

    const stdio = await w([
      'upstreams',
      'add',
      'local',
      '--command',
      process.execPath,
      '--arg',
      join(ROOT, 'examples', 'tickets-stdio.ts'),
      '--json',
    ]);
    assert.equal(stdio.code, 0, stdio.stderr);
    const stdioApproved = await s.call('POST', '/v1/gateway/upstreams/local/approve');
    assert.equal(stdioApproved.status, 200, JSON.stringify(stdioApproved.body));
    assert.deepEqual(stdioApproved.body.pins, pins, 'the same server over stdio offers the same definitions');

    const list = await w(['upstreams', 'list']);
    assert.match(list.stdout, /desk\s+mcp\s+streamable_http\s+approved/);
    assert.match(list.stdout, /local\s+mcp\s+stdio\s+approved/);
    assert.match(list.stdout, /tickets\s+mcp\s+streamable_http\s+pending/);
    const removed = await w(['upstreams', 'remove', 'tickets']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((await s.call('GET', '/v1/gateway/upstreams/tickets')).status, 404);

    const bad = await s.call('POST', '/v1/gateway/upstreams', { name: 'has.dot', url: upstream.url });
    assert.equal(bad.status, 400);
    const secretInUrl = await s.call('POST', '/v1/gateway/upstreams', {
      name: 'leaky',
      url: 'https://user:hunter2@api.example.test/mcp',
    });
    assert.equal(secretInUrl.status, 400);
    assert.ok(!JSON.stringify(secretInUrl.body).includes('hunter2'), 'the refusal does not echo the secret');
    const noRoutes = await s.call('POST', '/v1/gateway/upstreams', {
      name: 'api',
      kind: 'http',
      url: 'http://127.0.0.1:1',
    });
    assert.equal(noRoutes.status, 400);
    assert.ok(noRoutes.body['invalid-params'].some((p: { name: string }) => p.name === 'body.routes'));
    const events = await s.warden.store.db
      .selectFrom('audit_events')
      .select('type')
      .where('type', 'like', 'upstream.%')
      .orderBy('seq')
      .execute();
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'upstream.created',
        'upstream.created',
        'upstream.approved',
        'upstream.created',
        'upstream.approved',
        'upstream.removed',
      ],
    );
  });
});

/** The input schema the upstream advertises for a tool, read with the SDK client. */
async function listInputSchema(url: string, name: string): Promise<unknown> {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import(
    '@modelcontextprotocol/sdk/client/streamableHttp.js'
  );
  const c = new Client({ name: 'probe', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  const { tools } = await c.listTools();
  await c.close();
  return tools.find((t) => t.name === name)?.inputSchema;
}
