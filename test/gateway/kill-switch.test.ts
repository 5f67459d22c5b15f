import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { startTicketsServer } from '../../examples/tickets-server.ts';
import { throwawayPostgres } from '../support/databases.ts';
import {
  agentKey,
  connectAgent,
  issuerKey,
  mintAccessToken,
  registerAgent,
  ScriptedDecider,
  StaticCredentials,
  startGatewayNode,
} from './support.ts';

/** Calls until the call is refused; returns how long after `since` the refusal came. */
async function refusedWithin(
  call: () => Promise<unknown>,
  since: number,
  limitMs: number,
): Promise<{ ms: number; error: Error }> {
  for (;;) {
    try {
      await call();
    } catch (e) {
      return { ms: performance.now() - since, error: e as Error };
    }
    if (performance.now() - since > limitMs) throw new Error(`still allowed ${limitMs} ms after the change`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('kill switch across two gateway nodes on one PostgreSQL', () => {
  it('refuses a suspended agent, and the agents of a distrusted provider, on the other node within a second', async () => {
    const databaseUrl = await throwawayPostgres();
    const issuer = await issuerKey();
    const upstream = await startTicketsServer();
    after(() => upstream.close());
    const common = {
      issuer,
      decider: new ScriptedDecider(),
      credentials: new StaticCredentials({}),
      databaseUrl,
      masterKey: randomBytes(32).toString('hex'),
      // Stopped at the end of the test, before its throwaway database is dropped.
      cleanup: (fn: () => Promise<void>) => {
        stops.push(fn);
      },
    };
    const stops: (() => Promise<void>)[] = [];
    const node1 = await startGatewayNode('postgres', { ...common, nodeId: 'node-1' });
    const node2 = await startGatewayNode('postgres', { ...common, nodeId: 'node-2' });
    const admin = (method: string, path: string, body?: unknown) => node1.call(method, path, body);
    assert.equal(
      (await admin('POST', '/v1/gateway/upstreams', { name: 'tickets', url: upstream.url })).status,
      201,
    );
    assert.equal((await admin('POST', '/v1/gateway/upstreams/tickets/approve')).status, 200);
    const spec = { allowed_tools: ['tickets.search'] };
    const a = await registerAgent(node1, 'bot-a', spec);
    const b = await registerAgent(node1, 'bot-b', spec);
    const clientOn = async (agentId: string) => {
      const key = await agentKey();
      // The gateway's audience is its public URL, which differs per node: mint for node 2.
      const token = await mintAccessToken(issuer, {
        issuer: node2.url,
        audience: node2.mcpUrl,
        agentId,
        jkt: key.jkt,
      });
      return connectAgent(node2.mcpUrl, key, token, common.cleanup);
    };
    const clientA = await clientOn(a.id);
    const clientB = await clientOn(b.id);
    const search = (c: typeof clientA) =>
      c.callTool({ name: 'tickets.search', arguments: { query: 'fire' } });
    await search(clientA);
    await search(clientB);

    const t0 = performance.now();
    const suspended = await admin('POST', `/v1/agents/${a.id}/suspend`, { reason: 'compromised key' });
    assert.equal(suspended.status, 200, JSON.stringify(suspended.body));
    const refusal = await refusedWithin(() => search(clientA), t0, 1000);
    assert.match(refusal.error.message, /401|agent is suspended/);
    await search(clientB);

    const t1 = performance.now();
    const distrusted = await admin('POST', '/v1/providers/acme/distrust', { reason: 'vendor breach' });
    assert.equal(distrusted.status, 200, JSON.stringify(distrusted.body));
    await refusedWithin(() => search(clientB), t1, 1000);

    const refused = await node2.warden.store.db
      .selectFrom('audit_events')
      .select(['body'])
      .where('type', '=', 'auth.request_refused')
      .where('partition', '=', 'node-2')
      .execute();
    const codes = refused.map((r) => JSON.parse(r.body as string).error_code);
    assert.ok(codes.includes('ERR_AGENT_INACTIVE'), codes.join());
    for (const stop of stops.reverse()) await stop();
  });
});
