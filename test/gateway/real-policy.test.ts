import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startTicketsServer } from '../../examples/tickets-server.ts';
import {
  agentKey,
  connectAgent,
  issuerKey,
  mintAccessToken,
  registerAgent,
  StaticCredentials,
  startGatewayNode,
} from './support.ts';

const ADMIN = { type: 'user' as const, id: 'test-admin' };

describe('gateway with the Cedar policy engine', () => {
  it('lists and calls only what the active policy set permits, with its reasons and policy ids', async () => {
    const upstream = await startTicketsServer();
    after(() => upstream.close());
    const issuer = await issuerKey();
    const node = await startGatewayNode('sqlite', {
      issuer,
      credentials: new StaticCredentials({}),
      options: { approvalMode: 'pending' },
    });
    assert.equal(
      (await node.call('POST', '/v1/gateway/upstreams', { name: 'tickets', url: upstream.url })).status,
      201,
    );
    assert.equal((await node.call('POST', '/v1/gateway/upstreams/tickets/approve')).status, 200);
    const agent = await registerAgent(node, 'policy-bot', {
      allowed_tools: ['tickets.search', 'tickets.create', 'tickets.refund', 'tickets.slow'],
    });
    const { admin } = node.warden.policy;
    const limit = await admin.push(
      {
        policies:
          '@id("refund-limit") @reason("refunds above 1000 need the finance team")\n' +
          'forbid (principal, action == Warden::Action::"call_tool", resource == Warden::Tool::"tickets.refund") ' +
          'when { context.num_args.hasTag("amount") && context.num_args.getTag("amount") > 1000 };',
      },
      ADMIN,
    );
    await admin.activate(limit.version, ADMIN);
    await admin.pushTemplate(
      {
        id: agent.template_id,
        version: 1,
        allowedTools: ['tickets.search', 'tickets.refund', 'tickets.slow'],
        allowedScopes: [],
        approvalRules: [{ tool: 'tickets.slow', approvers: 'owner', reason: 'slow calls need the owner' }],
      },
      ADMIN,
      { activate: true },
    );
    await node.warden.policy.engine.reload();

    const key = await agentKey();
    const token = await mintAccessToken(issuer, {
      issuer: node.url,
      audience: node.mcpUrl,
      agentId: agent.id,
      jkt: key.jkt,
    });
    const client = await connectAgent(node.mcpUrl, key, token);
    assert.deepEqual(
      (await client.listTools()).tools.map((t) => t.name).sort(),
      ['tickets.refund', 'tickets.search', 'tickets.slow'],
      'tickets.create is in the identity template but no policy permits it',
    );
    const ok = await client.callTool({ name: 'tickets.refund', arguments: { payment_id: 'p1', amount: 20 } });
    assert.equal(ok.isError, undefined);
    await assert.rejects(
      client.callTool({ name: 'tickets.refund', arguments: { payment_id: 'p1', amount: 5000 } }),
      (e: Error & { data?: { code: string; policies: string[] } }) => {
        assert.match(e.message, /refunds above 1000 need the finance team/);
        assert.deepEqual(e.data?.policies, ['refund-limit']);
        return true;
      },
    );
    await assert.rejects(
      client.callTool({ name: 'tickets.create', arguments: { title: 'x' } }),
      (e: Error & { data?: { code: string } }) => e.data?.code === 'ERR_POLICY_DENIED',
    );
    const held = await client.callTool({ name: 'tickets.slow', arguments: {} });
    assert.equal(held.isError, true, 'a call under approval is answered as pending, not run');
    const pending = (held._meta as Record<string, { request_id: string }>)['warden/approval'];
    const view = await node.warden.approvals.get(pending?.request_id as string);
    assert.equal(view.status, 'pending');
    assert.deepEqual(view.approvers, { kind: 'owner', allow_owner: true }, "from the rule's @approvers");
    assert.ok(view.policies.some((id) => id.startsWith(`template:${agent.template_id}:`)));
    const events = await node.warden.store.db
      .selectFrom('audit_events')
      .select('body')
      .where('type', '=', 'tool.call')
      .orderBy('seq')
      .execute();
    const first = JSON.parse(events[0]?.body as string);
    assert.equal(first.decision.effect, 'permit');
    assert.ok(first.decision.policies[0].startsWith(`template:${agent.template_id}:`));
  });
});
