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

describe('gateway and attested agents', () => {
  it('lets a template that requires attestation act only with a token issued on its provider’s attestation', async () => {
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
    const agent = await registerAgent(node, 'attested-bot', {
      allowed_tools: ['tickets.search'],
      attestation: { required: true },
    });
    const { admin } = node.warden.policy;
    await admin.pushTemplate(
      {
        id: agent.template_id,
        version: 1,
        allowedTools: ['tickets.search'],
        allowedScopes: [],
        approvalRules: [],
        requireAttestation: true,
      },
      ADMIN,
      { activate: true },
    );
    await node.warden.policy.engine.reload();

    const search = async (extra?: Record<string, unknown>) => {
      const key = await agentKey();
      const token = await mintAccessToken(issuer, {
        issuer: node.url,
        audience: node.mcpUrl,
        agentId: agent.id,
        jkt: key.jkt,
        ...(extra ? { extra } : {}),
      });
      const client = await connectAgent(node.mcpUrl, key, token);
      return client.callTool({ name: 'tickets.search', arguments: { query: 'refund' } });
    };
    const denied = (e: Error & { data?: { code: string } }) => {
      assert.equal(e.data?.code, 'ERR_POLICY_DENIED');
      assert.match(e.message, /a verified attestation is required/);
      return true;
    };

    await assert.rejects(search(), denied);
    const ok = await search({ agent_attestation: { digest: 'abc', iss: agent.provider_id } });
    assert.equal(ok.isError, undefined);
    // An attestation by another provider does not count.
    await assert.rejects(
      search({ agent_attestation: { digest: 'abc', iss: '00000000-0000-7000-8000-000000000000' } }),
      denied,
    );
  });
});
