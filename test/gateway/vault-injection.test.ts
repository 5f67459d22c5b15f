import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { after, describe, it } from 'node:test';
import { startTicketsServer } from '../../examples/tickets-server.ts';
import { GATEWAY_REQUESTER } from '../../src/gateway/index.ts';
import {
  agentKey,
  connectAgent,
  issuerKey,
  mintAccessToken,
  registerAgent,
  ScriptedDecider,
  startGatewayNode,
} from './support.ts';

describe('gateway with the real vault', () => {
  it('injects a vault API key into upstream calls and refuses agents the credential does not allow', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const upstream = await startTicketsServer({ onRequest: (h) => seen.push(h) });
    after(() => upstream.close());
    const issuer = await issuerKey();
    const node = await startGatewayNode('sqlite', {
      issuer,
      decider: new ScriptedDecider(),
      options: { toolsTtlMs: 0 },
    });
    const allowed = await registerAgent(node, 'vault-bot', { allowed_tools: ['tickets.*'] });
    const other = await registerAgent(node, 'other-bot', { allowed_tools: ['tickets.*'] });
    const actor = { type: 'system' as const, id: 'test' };
    await node.warden.vault.putCredential(
      {
        kind: 'api_key',
        name: 'tickets-key',
        value: 'vault-held-upstream-key-123',
        headerName: 'x-api-key',
        accessRule: { templates: [allowed.template_id, GATEWAY_REQUESTER.templateId], onBehalfOf: 'any' },
      },
      actor,
    );
    assert.equal(
      (
        await node.call('POST', '/v1/gateway/upstreams', {
          name: 'tickets',
          url: upstream.url,
          credential: 'tickets-key',
        })
      ).status,
      201,
    );
    const approved = await node.call('POST', '/v1/gateway/upstreams/tickets/approve');
    assert.equal(approved.status, 200, JSON.stringify(approved.body));

    const key = await agentKey();
    const token = await mintAccessToken(issuer, {
      issuer: node.url,
      audience: node.mcpUrl,
      agentId: allowed.id,
      jkt: key.jkt,
    });
    const client = await connectAgent(node.mcpUrl, key, token);
    const result = await client.callTool({ name: 'tickets.search', arguments: { query: 'fire' } });
    assert.equal(result.isError, undefined);
    assert.ok(seen.length > 0);
    for (const h of seen) {
      assert.equal(
        h['x-api-key'],
        'vault-held-upstream-key-123',
        'every upstream request carries the vault key',
      );
      assert.equal(h.authorization, undefined);
    }

    const otherKey = await agentKey();
    const otherToken = await mintAccessToken(issuer, {
      issuer: node.url,
      audience: node.mcpUrl,
      agentId: other.id,
      jkt: otherKey.jkt,
    });
    const otherClient = await connectAgent(node.mcpUrl, otherKey, otherToken);
    await assert.rejects(
      otherClient.callTool({ name: 'tickets.search', arguments: { query: 'fire' } }),
      (e: Error & { data?: { code: string } }) => {
        assert.match(e.message, /credential refused/);
        return true;
      },
    );
    const types = await node.warden.store.db
      .selectFrom('audit_events')
      .select('type')
      .orderBy('seq')
      .execute();
    const list = types.map((t) => t.type);
    assert.ok(list.includes('vault.credential_used'));
    assert.ok(list.includes('vault.credential_refused'));
    const events = await node.warden.store.db
      .selectFrom('audit_events')
      .select('body')
      .where('type', '=', 'tool.call')
      .orderBy('seq')
      .execute();
    const last = JSON.parse(events.at(-1)?.body as string);
    assert.equal(last.actor.id, other.id);
    assert.equal(last.outcome, 'denied');
    assert.ok(
      !JSON.stringify(events).includes('vault-held-upstream-key-123'),
      'the secret is never in the ledger',
    );
  });
});
