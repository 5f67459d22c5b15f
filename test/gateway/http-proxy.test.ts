import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import { after, describe, it } from 'node:test';
import {
  agentKey,
  dpopFetch,
  dpopProof,
  issuerKey,
  mintAccessToken,
  registerAgent,
  ScriptedDecider,
  StaticCredentials,
  startGatewayNode,
} from './support.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  sha256: string;
  bytes: number;
}

/** A plain REST API on node:http that records what reaches it and echoes a digest of the body. */
async function startApi() {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.on('end', () => {
      const entry = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        sha256: hash.digest('hex'),
        bytes,
      };
      seen.push(entry);
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'crm', connection: 'close' });
      // Stream the answer in pieces.
      res.write('{"ok":true,');
      setTimeout(() => res.end(`"sha256":"${entry.sha256}","bytes":${bytes}}`), 5);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/api`, seen };
}

describe('HTTP proxy', () => {
  it('maps route rules to policy, injects the vault credential, streams bodies and strips the agent credentials', async () => {
    const api = await startApi();
    const issuer = await issuerKey();
    const decider = new ScriptedDecider();
    const credentials = new StaticCredentials({ authorization: 'Bearer upstream-service-token' });
    const node = await startGatewayNode('sqlite', { issuer, decider, credentials });
    const created = await node.call('POST', '/v1/gateway/upstreams', {
      name: 'crm',
      kind: 'http',
      url: api.url,
      credential: 'crm-token',
      routes: [
        { method: 'GET', path: '/tickets/:id', endpoint: 'tickets.read' },
        { method: 'POST', path: '/tickets', endpoint: 'tickets.create' },
        { method: 'PUT', path: '/files/*', endpoint: 'files.write' },
      ],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await node.call('POST', '/v1/gateway/upstreams/crm/approve')).status, 200);
    const agent = await registerAgent(node, 'crm-bot', { allowed_tools: [] });
    const key = await agentKey();
    const resource = `${node.url}/proxy/crm`;
    const token = await mintAccessToken(issuer, {
      issuer: node.url,
      audience: resource,
      agentId: agent.id,
      jkt: key.jkt,
    });
    const agentFetch = dpopFetch(key, () => token);

    const read = await agentFetch(`${resource}/tickets/42?expand=1`, {
      headers: { 'x-warden-intent': 'look up the ticket', cookie: 'session=1' },
    });
    assert.equal(read.status, 200);
    assert.equal(read.headers.get('x-upstream'), 'crm');
    assert.equal(((await read.json()) as any).ok, true);
    const first = api.seen[0] as Seen;
    assert.equal(first.url, '/api/tickets/42?expand=1');
    assert.equal(
      first.headers.authorization,
      'Bearer upstream-service-token',
      'the vault credential replaces the agent token',
    );
    assert.equal(first.headers.dpop, undefined);
    assert.equal(first.headers.cookie, undefined);
    assert.equal(first.headers['x-warden-intent'], undefined);
    assert.ok(!JSON.stringify(first.headers).includes(token));
    const decided = decider.requests.at(-1);
    assert.equal(decided?.action, 'http_request');
    assert.equal(decided?.resource.id, 'tickets.read');
    assert.deepEqual(decided?.context.args, { id: '42' });
    assert.deepEqual(decided?.context.http, {
      method: 'GET',
      host: new URL(api.url).host,
      path: '/tickets/42',
    });
    assert.deepEqual(decided?.context.intent, { text: 'look up the ticket' });

    // A 3 MiB body (beyond the JSON body limit) streams through untouched.
    const body = randomBytes(3 * 1024 * 1024);
    const created2 = await agentFetch(`${resource}/tickets`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    assert.equal(created2.status, 200);
    const echoed = (await created2.json()) as any;
    assert.equal(echoed.bytes, body.length);
    assert.equal(echoed.sha256, createHash('sha256').update(body).digest('hex'));

    // Headers named in Connection are hop-by-hop (fetch cannot send them: use node:http).
    const hopUrl = `${resource}/tickets/7`;
    const hop = request(hopUrl, {
      headers: {
        authorization: `DPoP ${token}`,
        dpop: await dpopProof(key, 'GET', hopUrl, token),
        connection: 'keep-alive, x-hop',
        'x-hop': 'secret',
        'keep-alive': 'timeout=5',
      },
    });
    hop.end();
    const [hopRes] = (await once(hop, 'response')) as [IncomingMessage];
    hopRes.resume();
    assert.equal(hopRes.statusCode, 200);
    const hopSeen = api.seen.at(-1) as Seen;
    assert.equal(hopSeen.url, '/api/tickets/7');
    assert.equal(hopSeen.headers['x-hop'], undefined, 'headers named in Connection are not forwarded');
    assert.equal(hopSeen.headers['keep-alive'], undefined);

    const before = api.seen.length;
    const unmatched = await agentFetch(`${resource}/tickets/42`, { method: 'DELETE' });
    assert.equal(unmatched.status, 403);
    assert.equal(((await unmatched.json()) as any).code, 'ERR_NO_ROUTE_RULE');
    const traversal = await agentFetch(`${resource}/files/..%2F..%2Fetc/passwd`, {
      method: 'PUT',
      body: 'x',
    });
    assert.equal(traversal.status, 403);
    decider.deny.add('tickets.create');
    const forbidden = await agentFetch(`${resource}/tickets`, { method: 'POST', body: '{}' });
    assert.equal(forbidden.status, 403);
    assert.equal(((await forbidden.json()) as any).code, 'ERR_POLICY_DENIED');
    assert.equal(api.seen.length, before, 'refused requests never reach the API');

    const mcpToken = await mintAccessToken(issuer, {
      issuer: node.url,
      audience: node.mcpUrl,
      agentId: agent.id,
      jkt: key.jkt,
    });
    const wrongAudience = await dpopFetch(key, () => mcpToken)(`${resource}/tickets/1`);
    assert.equal(wrongAudience.status, 401);
    assert.match(wrongAudience.headers.get('www-authenticate') ?? '', /oauth-protected-resource\/proxy\/crm/);

    const metadata = await node.call('GET', '/.well-known/oauth-protected-resource/proxy/crm');
    assert.equal(metadata.body.resource, resource);

    const events = await node.warden.store.db
      .selectFrom('audit_events')
      .select('body')
      .where('type', '=', 'http.call')
      .orderBy('seq')
      .execute();
    const parsed = events.map((e) => JSON.parse(e.body as string));
    assert.deepEqual(
      parsed.map((e) => [e.action, e.outcome, e.error_code ?? null]),
      [
        ['GET /tickets/42', 'success', null],
        ['POST /tickets', 'success', null],
        ['GET /tickets/7', 'success', null],
        ['DELETE /tickets/42', 'denied', 'ERR_NO_ROUTE_RULE'],
        ['PUT /files/..%2F..%2Fetc/passwd', 'denied', 'ERR_NO_ROUTE_RULE'],
        ['POST /tickets', 'denied', 'ERR_POLICY_DENIED'],
      ],
    );
    assert.deepEqual(parsed[0].intent, { text: 'look up the ticket' });
    assert.equal(credentials.requests.length, 3, 'credentials are minted only for allowed calls');
  });
});
