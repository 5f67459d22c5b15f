import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError, ManualClock } from '../../src/core/index.ts';
import {
  compileTemplatePolicies,
  decideRaw,
  decisionEvent,
  normalizeRequest,
  PolicyIndex,
  validatePolicySet,
} from '../../src/policy/index.ts';
import { agent, tool } from './support.ts';

const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));

function index(text: string): PolicyIndex {
  return new PolicyIndex(validatePolicySet(text).policies);
}

function call(principal: object, toolId: string, context: object = {}) {
  return { principal, action: 'call_tool', resource: tool(toolId), context };
}

describe('policy decisions', () => {
  it('denies by default when no policy permits', () => {
    const d = decideRaw(index(''), null, call(agent('a1'), 'github/create_issue'), clock);
    assert.equal(d.decision, 'deny');
    assert.equal(d.approval_required, false);
    assert.deepEqual(d.determining_policies, []);
    assert.match(d.reason, /default deny/);
  });

  it('lets a forbid win over a permit', () => {
    const idx = index(`
      @id("allow-all-tools") permit (principal, action == Warden::Action::"call_tool", resource);
      @id("no-risky") @reason("risk above 80") forbid (principal, action, resource) when { context.risk_score > 80 };
    `);
    assert.equal(
      decideRaw(idx, 1, call(agent('a1'), 'fs/read', { risk_score: 10 }), clock).decision,
      'permit',
    );
    const d = decideRaw(idx, 1, call(agent('a1'), 'fs/read', { risk_score: 90 }), clock);
    assert.equal(d.decision, 'deny');
    assert.deepEqual(
      d.determining_policies.map((p) => p.id),
      ['no-risky'],
    );
    assert.equal(d.determining_policies[0]?.annotations.reason, 'risk above 80');
    assert.match(d.reason, /forbidden by policy no-risky: risk above 80/);
  });

  it('applies a template policy to every agent of the template and only to them', () => {
    const idx = index(
      compileTemplatePolicies({
        id: 'support-bot',
        version: 3,
        allowedTools: ['crm/*', 'mail/send'],
        allowedScopes: ['crm.read'],
      }),
    );
    const ours = agent('a1', 'support-bot');
    const other = agent('a2', 'sales-bot');
    assert.equal(decideRaw(idx, 1, call(ours, 'crm/lookup'), clock).decision, 'permit');
    assert.equal(decideRaw(idx, 1, call(ours, 'mail/send'), clock).decision, 'permit');
    assert.equal(decideRaw(idx, 1, call(ours, 'mail/delete'), clock).decision, 'deny');
    assert.equal(decideRaw(idx, 1, call(other, 'crm/lookup'), clock).decision, 'deny');
    const scope = { principal: ours, action: 'request_scope', resource: { type: 'Scope', id: 'crm.read' } };
    assert.equal(decideRaw(idx, 1, scope, clock).decision, 'permit');
    assert.equal(decideRaw(idx, 1, { ...scope, principal: other }, clock).decision, 'deny');
  });

  it('lets a template grant the vault exchange mode on named connections only', () => {
    const idx = index(
      compileTemplatePolicies({
        id: 'crm-bot',
        version: 1,
        allowedTools: [],
        allowedScopes: [],
        exchangeConnections: ['salesforce'],
      }),
    );
    const req = (principal: object, connection: string, grant?: string) => ({
      principal,
      action: 'exchange_credential',
      resource: { type: 'Credential', id: connection, attrs: { kind: 'oauth_connection' } },
      context: { delegation: { user: 'alice', agents: ['a1'], ...(grant ? { grant } : {}) } },
    });
    const ours = agent('a1', 'crm-bot');
    assert.equal(decideRaw(idx, 1, req(ours, 'salesforce', 'g-1'), clock).decision, 'permit');
    assert.equal(decideRaw(idx, 1, req(ours, 'github'), clock).decision, 'deny');
    assert.equal(decideRaw(idx, 1, req(agent('a2', 'other-bot'), 'salesforce'), clock).decision, 'deny');
    const byGrant = index(`
      @id("only-grant-g1") permit (principal, action == Warden::Action::"exchange_credential", resource)
        when { context.delegation has grant && context.delegation.grant == "g-1" };
    `);
    assert.equal(decideRaw(byGrant, 1, req(ours, 'github', 'g-1'), clock).decision, 'permit');
    assert.equal(decideRaw(byGrant, 1, req(ours, 'github', 'g-2'), clock).decision, 'deny');
    assert.equal(decideRaw(byGrant, 1, req(ours, 'github'), clock).decision, 'deny');
  });

  it('matches provider membership and delegation context', () => {
    const idx = index(`
      @id("acme-reads") permit (principal in Warden::Provider::"acme", action == Warden::Action::"read_resource", resource)
        when { context.delegation has user && context.delegation.user == Warden::User::"alice" };
    `);
    const req = (user?: string) => ({
      principal: agent('a1'),
      action: 'read_resource',
      resource: { type: 'Resource', id: 'doc-1' },
      context: user ? { delegation: { user, agents: ['a1'] } } : {},
    });
    assert.equal(decideRaw(idx, 1, req('alice'), clock).decision, 'permit');
    assert.equal(decideRaw(idx, 1, req('bob'), clock).decision, 'deny');
    assert.equal(decideRaw(idx, 1, req(), clock).decision, 'deny');
  });

  it('matches an action group and a source address range', () => {
    const idx = index(`
      @id("mcp-from-office") permit (principal in Warden::Template::"support-bot", action in Warden::Action::"mcp", resource)
        when { context has source_ip && context.source_ip.isInRange(ip("10.0.0.0/8")) };
    `);
    const req = (action: string, resource: object, source_ip?: string) => ({
      principal: agent('a1'),
      action,
      resource,
      context: source_ip ? { source_ip } : {},
    });
    assert.equal(decideRaw(idx, 1, req('call_tool', tool('crm/x'), '10.1.2.3'), clock).decision, 'permit');
    assert.equal(
      decideRaw(idx, 1, req('list_tools', { type: 'Server', id: 'crm' }, '10.1.2.3'), clock).decision,
      'permit',
    );
    assert.equal(decideRaw(idx, 1, req('call_tool', tool('crm/x'), '192.168.1.1'), clock).decision, 'deny');
    assert.equal(decideRaw(idx, 1, req('call_tool', tool('crm/x')), clock).decision, 'deny');
    assert.equal(
      decideRaw(idx, 1, req('http_request', { type: 'Api', id: 'github' }, '10.1.2.3'), clock).decision,
      'deny',
      'http_request is not in the mcp group',
    );
  });

  it('turns @approval("required") on the determining permit into an approval obligation', () => {
    const idx = index(
      compileTemplatePolicies({
        id: 'support-bot',
        version: 1,
        allowedTools: ['mail/send', 'crm/lookup'],
        allowedScopes: [],
        approvalRules: [{ tool: 'mail/send', approvers: 'owner', reason: 'sends mail to customers' }],
      }),
    );
    const d = decideRaw(idx, 1, call(agent('a1'), 'mail/send'), clock);
    assert.equal(d.decision, 'permit');
    assert.equal(d.approval_required, true);
    assert.deepEqual(d.approvers, ['owner']);
    assert.equal(d.reason, 'sends mail to customers');
    assert.equal(d.determining_policies[0]?.annotations.approval, 'required');
    const plain = decideRaw(idx, 1, call(agent('a1'), 'crm/lookup'), clock);
    assert.equal(plain.approval_required, false);
  });

  it('compiles conditional approvals, wildcard rules, intent and attestation requirements', () => {
    const idx = index(
      compileTemplatePolicies({
        id: 'pay-bot',
        version: 2,
        allowedTools: ['payments.*', 'mail/send'],
        allowedScopes: [],
        approvalRules: [
          { tool: 'payments.transfer', argument: 'amount', above: 100, approvers: 'group', group: 'finance' },
          { tool: 'mail/send', argument: 'recipients', above: 10 },
        ],
        requireIntent: ['payments.*'],
        requireAttestation: true,
      }),
    );
    const bot = agent('p1', 'pay-bot');
    const ok = { attestation: { verified: true }, intent: { text: 'pay invoice 42' } };
    const pay = (args: Record<string, unknown>, context: object = ok) =>
      decideRaw(
        idx,
        1,
        {
          principal: bot,
          action: 'call_tool',
          resource: { type: 'Tool', id: 'payments.transfer', parents: [{ type: 'Server', id: 'payments' }] },
          context: { ...context, args },
        },
        clock,
      );
    assert.deepEqual(
      [
        pay({ amount: 50 }),
        pay({ amount: 100 }),
        pay({ amount: 100.5 }),
        pay({ amount: 5000 }),
        pay({ amount: 'lots' }),
        pay({}),
      ].map((d) => [d.decision, d.approval_required]),
      [
        ['permit', false],
        ['permit', false],
        ['permit', true],
        ['permit', true],
        ['permit', true],
        ['permit', false],
      ],
    );
    assert.deepEqual(pay({ amount: 5000 }).approvers, ['group:finance']);
    assert.equal(pay({ amount: 5 }, { attestation: { verified: true } }).decision, 'deny', 'intent required');
    assert.equal(pay({ amount: 5 }, { intent: { text: 'x' } }).decision, 'deny', 'attestation required');
    const mail = (n: number) =>
      decideRaw(idx, 1, call(bot, 'mail/send', { ...ok, args: { recipients: n } }), clock);
    assert.equal(mail(3).approval_required, false);
    assert.equal(mail(11).approval_required, true);
    assert.equal(mail(11).decision, 'permit');
    assert.throws(
      () =>
        compileTemplatePolicies({
          id: 't',
          version: 1,
          allowedTools: ['a.*'],
          allowedScopes: [],
          approvalRules: [{ tool: 'b.x' }],
        }),
      (e: unknown) => e instanceof InvalidRequestError && e.code === 'ERR_POLICY_TEMPLATE_INVALID',
    );
  });

  it('reports policies that fail to evaluate as errors', () => {
    const idx = index(`
      @id("overflows") permit (principal, action == Warden::Action::"call_tool", resource)
        when { context.risk_score * 1000000000000000000 > 0 };
      @id("public-repo") permit (principal, action == Warden::Action::"call_tool", resource)
        when { context.args.hasTag("repo") && context.args.getTag("repo") == "public" };
    `);
    const d = decideRaw(idx, 1, call(agent('a1'), 'git/push', { risk_score: 50, args: {} }), clock);
    assert.equal(d.decision, 'deny');
    assert.equal(d.errors.length, 1);
    assert.equal(d.errors[0]?.policy_id, 'overflows');
    assert.match(d.reason, /1 policy failed to evaluate/);
    const ok = decideRaw(
      idx,
      1,
      call(agent('a1'), 'git/push', { risk_score: 50, args: { repo: 'public' } }),
      clock,
    );
    assert.equal(ok.decision, 'permit');
    assert.deepEqual(
      ok.determining_policies.map((p) => p.id),
      ['public-repo'],
    );
  });

  it('refuses an invalid policy with Cedar diagnostics', () => {
    assert.throws(
      () => validatePolicySet('@id("bad") permit (principal == Warden::Robot::"x", action, resource);'),
      (e: unknown) =>
        e instanceof InvalidRequestError &&
        e.code === 'ERR_POLICY_INVALID' &&
        !!e.invalidParams?.some((p) => p.name === 'policies.bad' && /Warden::Robot/.test(p.reason)),
    );
    assert.throws(
      () => validatePolicySet('permit (principal, action, resource) when { context.nope };'),
      (e: unknown) =>
        e instanceof InvalidRequestError && !!e.invalidParams?.some((p) => /nope/.test(p.reason)),
    );
    assert.throws(
      () => validatePolicySet('permit (principal, action'),
      (e: unknown) => e instanceof InvalidRequestError && (e.invalidParams?.length ?? 0) > 0,
    );
    assert.throws(
      () =>
        validatePolicySet(
          '@id("x") permit (principal, action, resource); @id("x") forbid (principal, action, resource);',
        ),
      (e: unknown) =>
        e instanceof InvalidRequestError && !!e.invalidParams?.some((p) => /duplicate/.test(p.reason)),
    );
  });

  it('refuses unknown entity types, unknown actions and schema-violating requests', () => {
    const idx = index('permit (principal, action, resource);');
    const refused = (req: unknown) =>
      assert.throws(
        () => decideRaw(idx, 1, req, clock),
        (e: unknown) => e instanceof InvalidRequestError && e.code === 'ERR_POLICY_REQUEST_INVALID',
      );
    refused({ principal: { type: 'Robot', id: 'r' }, action: 'call_tool', resource: tool('x') });
    refused({ principal: agent('a'), action: 'launch_missiles', resource: tool('x') });
    refused({ principal: agent('a'), action: 'call_tool', resource: { type: 'Scope', id: 'x' } });
    refused({
      principal: { type: 'Agent', id: 'a', attrs: { colour: 'red' } },
      action: 'call_tool',
      resource: tool('x'),
    });
    refused({
      principal: agent('a'),
      action: 'call_tool',
      resource: tool('x'),
      context: { risk_score: 'high' },
    });
    refused({
      principal: agent('a'),
      action: 'call_tool',
      resource: tool('x'),
      context: { source_ip: 'not-an-ip' },
    });
    refused({ principal: agent('a'), action: 'call_tool' });
    refused({
      principal: agent('a'),
      action: 'call_tool',
      resource: { ...tool('x'), parents: [{ type: 'Template', id: 't' }] },
    });
    refused({
      principal: { type: 'Agent', id: 'a', attrs: { status: 3 } },
      action: 'call_tool',
      resource: tool('x'),
    });
    refused({
      principal: agent('a'),
      action: 'call_tool',
      resource: tool('x'),
      entities: [{ type: 'Action', id: 'call_tool' }],
    });
  });

  it('builds a policy.decision audit event carrying the request for replay', () => {
    const idx = index('@id("p") permit (principal, action, resource);');
    const req = normalizeRequest(
      call(agent('a1'), 'fs/read', {
        delegation: { user: 'alice', agents: ['a1'] },
        intent: { text: 'read a file' },
      }),
      clock,
    );
    const d = decideRaw(idx, 7, req, clock);
    const event = decisionEvent(req, d, { latency_ms: 1 });
    assert.equal(event.type, 'policy.decision');
    assert.deepEqual(event.actor.on_behalf_of, { type: 'user', id: 'alice' });
    assert.deepEqual(event.decision, {
      effect: 'permit',
      approval_required: false,
      policies: ['p'],
      reason: d.reason,
    });
    assert.equal(event.outcome, 'success');
    assert.deepEqual((event.details as { request: unknown }).request, req);
    assert.equal((event.details as { policy_version: number }).policy_version, 7);
  });
});
