import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BACKENDS } from '../support/databases.ts';
import { keyPair, templateSpec } from '../support/fixtures.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

async function registerAgents(s: TestServer) {
  const provider = await s.call('POST', '/v1/providers', {
    name: 'acme',
    contact: 'security@acme.test',
    jwks: (await keyPair()).jwks,
  });
  const template = await s.call('POST', '/v1/templates', { name: 'support', spec: templateSpec() });
  assert.equal(template.status, 201, JSON.stringify(template.body));
  const agents = [];
  for (const name of ['bot-1', 'bot-2']) {
    const res = await s.call('POST', '/v1/agents', {
      name,
      provider: 'acme',
      template: 'support',
      purpose: 'answers tickets',
      jwks: (await keyPair()).jwks,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    agents.push(res.body as { id: string; template_id: string; provider_id: string });
  }
  return { provider: provider.body as { id: string }, template: template.body as { id: string }, agents };
}

for (const backend of BACKENDS) {
  describe(`policy and AuthZEN over HTTP on ${backend}`, () => {
    it('validates, pushes, activates, decides, simulates and rolls back through the API', async () => {
      const s = await startTestServer(backend);
      const { template, agents } = await registerAgents(s);
      const bot = agents[0] as { id: string; template_id: string; provider_id: string };
      const subject = {
        type: 'agent',
        id: bot.id,
        properties: { template: bot.template_id, provider: bot.provider_id },
      };
      const tickets = { type: 'tool', id: 'tickets.search' };

      const bad = await s.call('POST', '/v1/policies', {
        policies: 'permit (principal, action, resource) when { context.nope };',
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'ERR_POLICY_INVALID');
      assert.match(bad.body['invalid-params'][0].reason, /nope/);
      assert.equal((await s.call('GET', '/v1/policies')).body.items.length, 0, 'nothing written');

      const text = `@id("tickets") permit (principal in Warden::Template::"${template.id}", action == Warden::Action::"call_tool", resource == Warden::Tool::"tickets.search");`;
      const valid = await s.call('POST', '/v1/policies/validate', { policies: text });
      assert.equal(valid.status, 200);
      assert.deepEqual(valid.body.policy_ids, ['tickets']);
      assert.equal((await s.call('POST', '/v1/policies', { policies: text })).status, 201);
      assert.equal((await s.call('POST', '/v1/policies', { policies: '' })).status, 201);

      const before = await s.call('POST', '/access/v1/evaluation', {
        subject,
        action: { name: 'call_tool' },
        resource: tickets,
      });
      assert.equal(before.status, 200);
      assert.equal(before.body.decision, false, 'nothing active: deny');

      assert.equal((await s.call('POST', '/v1/policies/1/activate')).status, 200);
      await s.warden.policy.engine.reload();
      const yes = await s.call('POST', '/access/v1/evaluation', {
        subject,
        action: { name: 'call_tool' },
        resource: tickets,
      });
      assert.equal(yes.body.decision, true);
      assert.deepEqual(yes.body.context.policies, ['tickets']);

      const batch = await s.call('POST', '/access/v1/evaluations', {
        subject,
        action: { name: 'call_tool' },
        options: { evaluations_semantic: 'deny_on_first_deny' },
        evaluations: [
          { resource: tickets },
          { resource: { type: 'tool', id: 'tickets.delete' } },
          { resource: tickets },
        ],
      });
      assert.equal(batch.status, 200);
      assert.deepEqual(
        batch.body.evaluations.map((e: { decision: boolean }) => e.decision),
        [true, false],
      );
      const malformed = await s.call('POST', '/access/v1/evaluation', { subject, resource: tickets });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.code, 'ERR_AUTHZEN_INVALID');

      const who = await s.call('POST', '/access/v1/search/subject', {
        subject: { type: 'agent' },
        action: { name: 'call_tool' },
        resource: tickets,
      });
      assert.equal(who.status, 200, JSON.stringify(who.body));
      assert.deepEqual(
        who.body.results.map((r: { id: string }) => r.id).sort(),
        agents.map((a) => a.id).sort(),
      );
      const bare = await s.call('POST', '/access/v1/evaluation', {
        subject: { type: 'agent', id: bot.id, properties: { template: 'claimed-other-template' } },
        action: { name: 'call_tool' },
        resource: tickets,
      });
      assert.equal(bare.body.decision, true, 'template and provider come from the registry, not the caller');
      const what = await s.call('POST', '/access/v1/search/action', { subject, resource: tickets });
      assert.deepEqual(what.body.results, [{ name: 'call_tool' }]);

      const explained = await s.call('POST', '/v1/policies/explain', {
        principal: { type: 'Agent', id: bot.id, parents: [{ type: 'Template', id: template.id }] },
        action: 'call_tool',
        resource: { type: 'Tool', id: 'tickets.search' },
      });
      assert.equal(explained.status, 200);
      assert.equal(explained.body.decision, 'permit');
      assert.deepEqual(explained.body.determining_policies[0].id, 'tickets');

      const from = new Date(Date.now() - 60_000).toISOString();
      const to = new Date(Date.now() + 60_000).toISOString();
      const sim = await s.call('POST', '/v1/policies/2/simulate', { from, to });
      assert.equal(sim.status, 200, JSON.stringify(sim.body));
      assert.ok(sim.body.allowed_to_denied.length >= 2, 'recorded permits would be denied by the empty set');
      assert.equal(sim.body.denied_to_allowed.length, 0);

      const effective = await s.call(
        'GET',
        `/v1/policies/effective?agent=${agents[1]?.id}&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
      );
      assert.equal(effective.status, 200, JSON.stringify(effective.body));
      assert.deepEqual(
        effective.body.unused.map((g: { policy_id: string }) => g.policy_id),
        ['tickets'],
      );

      const compiled = await s.call('POST', `/v1/policies/templates/${template.id}`, { activate: true });
      assert.equal(compiled.status, 201, JSON.stringify(compiled.body));
      await s.warden.policy.engine.reload();
      const create = await s.call('POST', '/access/v1/evaluation', {
        subject: { type: 'agent', id: bot.id },
        action: { name: 'call_tool' },
        resource: { type: 'tool', id: 'tickets.create' },
      });
      assert.equal(create.body.decision, true, 'the template allows tickets.create');
      assert.deepEqual(create.body.context.policies, [`template:${template.id}:tool:tickets.create`]);
      assert.equal((await s.call('POST', '/v1/policies/2/activate')).status, 200);
      const rolled = await s.call('POST', '/v1/policies/rollback', {});
      assert.equal(rolled.status, 200);
      assert.equal(rolled.body.version, 3, 'back to the compiled template version');
      const meta = await s.call('GET', '/.well-known/authzen-configuration', undefined, null);
      assert.equal(meta.status, 200);
      assert.equal(
        meta.body.access_evaluation_endpoint,
        `${s.warden.publicUrl.replace(/\/$/, '')}/access/v1/evaluation`,
      );
      assert.equal((await s.call('POST', '/access/v1/evaluation', {}, null)).status, 401);
    });
  });
}
