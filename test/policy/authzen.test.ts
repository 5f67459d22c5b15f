import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InvalidRequestError } from '../../src/core/index.ts';
import {
  authzenActionSearch,
  authzenEvaluation,
  authzenEvaluations,
  authzenMetadata,
  authzenResourceSearch,
  authzenSubjectSearch,
  compileTemplatePolicies,
  StaticEntityDirectory,
} from '../../src/policy/index.ts';
import { admin, type PolicyWorld, policyWorld } from './support.ts';

const POLICIES = [
  compileTemplatePolicies({
    id: 'support-bot',
    version: 1,
    allowedTools: ['crm/lookup', 'mail/send'],
    allowedScopes: ['crm.read'],
    approvalRules: [{ tool: 'mail/send', approvers: 'owner', reason: 'mails customers' }],
  }),
  '@id("ops-all-crm") permit (principal == Warden::Agent::"ops-1", action == Warden::Action::"call_tool", resource in Warden::Server::"crm");',
  '@id("everyone-lists") permit (principal, action == Warden::Action::"list_tools", resource);',
  '@id("risk") forbid (principal, action, resource) when { context.risk_score > 80 };',
].join('\n\n');

const directory = new StaticEntityDirectory([
  { type: 'Template', id: 'support-bot' },
  { type: 'Agent', id: 'sb-1', parents: [{ type: 'Template', id: 'support-bot' }] },
  { type: 'Agent', id: 'sb-2', parents: [{ type: 'Template', id: 'support-bot' }] },
  { type: 'Agent', id: 'ops-1', parents: [{ type: 'Template', id: 'ops' }] },
  { type: 'Agent', id: 'other', parents: [{ type: 'Template', id: 'sales' }] },
  { type: 'Tool', id: 'crm/lookup', parents: [{ type: 'Server', id: 'crm' }] },
  { type: 'Tool', id: 'crm/delete', parents: [{ type: 'Server', id: 'crm' }] },
  { type: 'Tool', id: 'mail/send', parents: [{ type: 'Server', id: 'mail' }] },
  { type: 'Tool', id: 'fs/read', parents: [{ type: 'Server', id: 'fs' }] },
]);

const sb1 = { type: 'agent', id: 'sb-1', properties: { template: 'support-bot', provider: 'acme' } };
const lookup = { type: 'tool', id: 'crm/lookup', properties: { server: 'crm' } };
const send = { type: 'tool', id: 'mail/send', properties: { server: 'mail' } };
const callTool = { name: 'call_tool' };

describe('AuthZEN API', () => {
  let w: PolicyWorld;
  before(async () => {
    w = await policyWorld('sqlite');
    await w.admin.push({ policies: POLICIES }, admin);
    await w.admin.activate(1, admin);
    await w.engine.reload();
  });
  after(async () => {
    await w.close();
  });

  const refusedWith = (code: string) => (e: unknown) => e instanceof InvalidRequestError && e.code === code;

  it('evaluates one request and explains it in the context', () => {
    const yes = authzenEvaluation(w.engine, { subject: sb1, action: callTool, resource: lookup });
    assert.equal(yes.decision, true);
    assert.deepEqual(yes.context?.policies, ['template:support-bot:tool:crm/lookup']);
    const no = authzenEvaluation(w.engine, {
      subject: sb1,
      action: callTool,
      resource: lookup,
      context: { risk_score: 95 },
    });
    assert.equal(no.decision, false);
    assert.deepEqual(no.context?.policies, ['risk']);
  });

  it('answers false with approval_required for a permit that needs approval', () => {
    const r = authzenEvaluation(w.engine, { subject: sb1, action: callTool, resource: send });
    assert.equal(r.decision, false);
    assert.equal(r.context?.approval_required, true);
    assert.deepEqual(r.context?.approvers, ['owner']);
  });

  it('refuses malformed bodies, unknown types and unknown actions', () => {
    assert.throws(
      () => authzenEvaluation(w.engine, { subject: sb1, action: callTool }),
      refusedWith('ERR_AUTHZEN_INVALID'),
    );
    assert.throws(() => authzenEvaluation(w.engine, 'nope'), refusedWith('ERR_AUTHZEN_INVALID'));
    assert.throws(
      () =>
        authzenEvaluation(w.engine, {
          subject: { type: 'robot', id: 'r' },
          action: callTool,
          resource: lookup,
        }),
      refusedWith('ERR_AUTHZEN_INVALID'),
    );
    assert.throws(
      () => authzenEvaluation(w.engine, { subject: sb1, action: { name: 'fly' }, resource: lookup }),
      refusedWith('ERR_AUTHZEN_INVALID'),
    );
    assert.throws(
      () =>
        authzenEvaluation(w.engine, {
          subject: sb1,
          action: callTool,
          resource: lookup,
          context: { risk_score: 'x' },
        }),
      refusedWith('ERR_POLICY_REQUEST_INVALID'),
    );
  });

  it('applies top-level defaults with per-item overrides in a batch', () => {
    const r = authzenEvaluations(w.engine, {
      subject: sb1,
      action: callTool,
      evaluations: [
        { resource: lookup },
        { resource: { type: 'tool', id: 'crm/delete', properties: { server: 'crm' } } },
        {
          subject: { type: 'agent', id: 'ops-1' },
          resource: { type: 'tool', id: 'crm/delete', properties: { server: 'crm' } },
        },
        { resource: lookup, context: { risk_score: 99 } },
        { action: { name: 'list_tools' }, resource: { type: 'server', id: 'crm' } },
      ],
    });
    assert.ok('evaluations' in r);
    assert.deepEqual(
      r.evaluations.map((e) => e.decision),
      [true, false, true, false, true],
    );
  });

  it('stops at the first deny or the first permit when asked', () => {
    const items = [{ resource: lookup }, { resource: { type: 'tool', id: 'fs/read' } }, { resource: lookup }];
    const all = authzenEvaluations(w.engine, { subject: sb1, action: callTool, evaluations: items });
    const firstDeny = authzenEvaluations(w.engine, {
      subject: sb1,
      action: callTool,
      options: { evaluations_semantic: 'deny_on_first_deny' },
      evaluations: items,
    });
    const firstPermit = authzenEvaluations(w.engine, {
      subject: sb1,
      action: callTool,
      options: { evaluations_semantic: 'permit_on_first_permit' },
      evaluations: items,
    });
    assert.ok('evaluations' in all && 'evaluations' in firstDeny && 'evaluations' in firstPermit);
    assert.deepEqual(
      all.evaluations.map((e) => e.decision),
      [true, false, true],
    );
    assert.deepEqual(
      firstDeny.evaluations.map((e) => e.decision),
      [true, false],
    );
    assert.deepEqual(
      firstPermit.evaluations.map((e) => e.decision),
      [true],
    );
  });

  it('answers a batch without items as a single evaluation, and reports a bad item in place', () => {
    const single = authzenEvaluations(w.engine, { subject: sb1, action: callTool, resource: lookup });
    assert.deepEqual(Object.keys(single).sort(), ['context', 'decision']);
    const r = authzenEvaluations(w.engine, {
      subject: sb1,
      action: callTool,
      evaluations: [{ resource: { type: 'spaceship', id: 'x' } }, { resource: lookup }],
    });
    assert.ok('evaluations' in r);
    assert.equal(r.evaluations[0]?.decision, false);
    assert.equal(
      (r.evaluations[0]?.context?.error as { code?: string } | undefined)?.code,
      'ERR_AUTHZEN_INVALID',
    );
    assert.equal(r.evaluations[1]?.decision, true);
  });

  it('refuses oversized batches and bad semantics', () => {
    const evaluations = Array.from({ length: 101 }, () => ({ resource: lookup }));
    assert.throws(
      () => authzenEvaluations(w.engine, { subject: sb1, action: callTool, evaluations }),
      refusedWith('ERR_AUTHZEN_BATCH_TOO_LARGE'),
    );
    assert.throws(
      () =>
        authzenEvaluations(w.engine, {
          subject: sb1,
          action: callTool,
          options: { evaluations_semantic: 'sometimes' },
          evaluations: [{ resource: lookup }],
        }),
      refusedWith('ERR_AUTHZEN_INVALID'),
    );
  });

  it('finds which agents may call a tool by partial evaluation', async () => {
    const r = await authzenSubjectSearch(
      w.engine,
      { subject: { type: 'agent' }, action: callTool, resource: lookup },
      { directory },
    );
    assert.deepEqual(
      r.results.map((s) => s.id),
      ['ops-1', 'sb-1', 'sb-2'],
    );
    assert.equal(r.page.total, 3);
    const approval = await authzenSubjectSearch(
      w.engine,
      { subject: { type: 'agent' }, action: callTool, resource: send },
      { directory },
    );
    assert.deepEqual(approval.results, [
      { type: 'agent', id: 'sb-1', properties: { approval_required: true } },
      { type: 'agent', id: 'sb-2', properties: { approval_required: true } },
    ]);
    const paged = await authzenSubjectSearch(
      w.engine,
      { subject: { type: 'agent' }, action: callTool, resource: lookup, page: { limit: 2 } },
      { directory },
    );
    assert.equal(paged.results.length, 2);
    assert.ok(paged.page.next_token);
    const rest = await authzenSubjectSearch(
      w.engine,
      {
        subject: { type: 'agent' },
        action: callTool,
        resource: lookup,
        page: { limit: 2, token: paged.page.next_token },
      },
      { directory },
    );
    assert.deepEqual(
      rest.results.map((s) => s.id),
      ['sb-2'],
    );
    assert.equal(rest.page.next_token, undefined);
  });

  it('finds which tools an agent may call by partial evaluation', async () => {
    const r = await authzenResourceSearch(
      w.engine,
      { subject: sb1, action: callTool, resource: { type: 'tool' } },
      { directory },
    );
    assert.deepEqual(r.results, [
      { type: 'tool', id: 'crm/lookup' },
      { type: 'tool', id: 'mail/send', properties: { approval_required: true } },
    ]);
    const ops = await authzenResourceSearch(
      w.engine,
      { subject: { type: 'agent', id: 'ops-1' }, action: callTool, resource: { type: 'tool' } },
      { directory },
    );
    assert.deepEqual(
      ops.results.map((t) => t.id),
      ['crm/delete', 'crm/lookup'],
    );
    const risky = await authzenResourceSearch(
      w.engine,
      { subject: sb1, action: callTool, resource: { type: 'tool' }, context: { risk_score: 90 } },
      { directory },
    );
    assert.deepEqual(risky.results, []);
  });

  it('finds which actions an agent may take on a resource', async () => {
    const r = await authzenActionSearch(w.engine, { subject: sb1, resource: { type: 'server', id: 'crm' } });
    assert.deepEqual(r.results, [{ name: 'list_tools' }]);
    const t = await authzenActionSearch(w.engine, { subject: sb1, resource: lookup });
    assert.deepEqual(t.results, [{ name: 'call_tool' }]);
    await assert.rejects(authzenActionSearch(w.engine, { subject: sb1 }), InvalidRequestError);
  });

  it('publishes the PDP metadata', () => {
    assert.deepEqual(authzenMetadata('https://warden.example.com/'), {
      policy_decision_point: 'https://warden.example.com',
      access_evaluation_endpoint: 'https://warden.example.com/access/v1/evaluation',
      access_evaluations_endpoint: 'https://warden.example.com/access/v1/evaluations',
      search_subject_endpoint: 'https://warden.example.com/access/v1/search/subject',
      search_resource_endpoint: 'https://warden.example.com/access/v1/search/resource',
      search_action_endpoint: 'https://warden.example.com/access/v1/search/action',
    });
  });
});
