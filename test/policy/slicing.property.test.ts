import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/core/index.ts';
import {
  decideWith,
  normalizeRequest,
  PolicyIndex,
  parsePolicySet,
  toCedarRequest,
} from '../../src/policy/index.ts';

const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
const AGENTS = ['a1', 'a2', 'a3'];
const TEMPLATES = ['t1', 't2'];
const PROVIDERS = ['p1', 'p2'];
const TOOLS = ['s1/x', 's1/y', 's2/z'];
const SERVERS = ['s1', 's2'];

const principal = fc.oneof(
  fc.constant('principal'),
  fc.constantFrom(...AGENTS).map((a) => `principal == Warden::Agent::"${a}"`),
  fc.constantFrom(...TEMPLATES).map((t) => `principal in Warden::Template::"${t}"`),
  fc.constantFrom(...PROVIDERS).map((p) => `principal in Warden::Provider::"${p}"`),
  fc.constant('principal is Warden::Agent'),
  fc.constant('principal is Warden::User'),
  fc.constantFrom(...TEMPLATES).map((t) => `principal is Warden::Agent in Warden::Template::"${t}"`),
  fc.constant('principal == Warden::User::"u1"'),
  fc.constantFrom(...TEMPLATES).map((t) => `principal == Warden::Template::"${t}"`),
);
const action = fc.oneof(
  fc.constant('action'),
  fc
    .constantFrom('call_tool', 'read_resource', 'list_tools', 'request_scope')
    .map((a) => `action == Warden::Action::"${a}"`),
  fc.constant('action in [Warden::Action::"call_tool", Warden::Action::"list_tools"]'),
  fc.constant('action in Warden::Action::"mcp"'),
);
const resource = fc.oneof(
  fc.constant('resource'),
  fc.constantFrom(...TOOLS).map((t) => `resource == Warden::Tool::"${t}"`),
  fc.constantFrom(...SERVERS).map((s) => `resource in Warden::Server::"${s}"`),
  fc.constantFrom(...SERVERS).map((s) => `resource == Warden::Server::"${s}"`),
  fc.constant('resource is Warden::Tool'),
  fc.constant('resource is Warden::Scope'),
  fc.constantFrom(...SERVERS).map((s) => `resource is Warden::Tool in Warden::Server::"${s}"`),
);
const condition = fc.oneof(
  fc.constant(''),
  fc.integer({ min: 0, max: 100 }).map((n) => ` when { context.risk_score > ${n} }`),
  fc.constantFrom('k1', 'k2').map((k) => ` when { context.args.hasTag("${k}") }`),
  fc.constant(' when { context.approval.state == "approved" }'),
  fc
    .integer({ min: 0, max: 10 })
    .map((n) => ` when { context.num_args.hasTag("k1") && context.num_args.getTag("k1") > ${n} }`),
  fc.constant(' when { context.num_args.getTag("k2") > 3 }'),
  fc.constant(' when { context has source_ip && context.source_ip.isInRange(ip("10.0.0.0/8")) }'),
  fc.constant(' when { context has http }'),
  fc.constant(' when { context["risk_score"] < 50 }'),
  fc.constant(' when { context == context }'),
  fc.constant(' when { Warden::Args::"request".hasTag("k2") }'),
  fc.constantFrom(...TEMPLATES).map((t) => ` when { principal in Warden::Template::"${t}" }`),
  fc.constantFrom(...SERVERS).map((s) => ` unless { resource in Warden::Server::"${s}" }`),
  fc.constant(' when { context.risk_score * 1000000000000000000 > 0 }'),
  fc.constant(' when { principal.risk_level == "low" }'),
);
const policy = fc
  .tuple(fc.constantFrom('permit', 'forbid', 'permit'), principal, action, resource, condition, fc.boolean())
  .map(
    ([effect, p, a, r, c, approval]) =>
      `${approval ? '@approval("required") ' : ''}${effect} (${p}, ${a}, ${r})${c};`,
  );

const request = fc
  .record({
    who: fc.oneof(
      fc.record({
        kind: fc.constant('agent' as const),
        id: fc.constantFrom(...AGENTS),
        template: fc.option(fc.constantFrom(...TEMPLATES), { nil: undefined }),
        provider: fc.option(fc.constantFrom(...PROVIDERS), { nil: undefined }),
        risk: fc.option(fc.constantFrom('low', 'high'), { nil: undefined }),
      }),
      fc.record({ kind: fc.constant('user' as const), id: fc.constantFrom('u1', 'u2') }),
    ),
    action: fc.constantFrom('call_tool', 'read_resource', 'list_tools', 'request_scope'),
    target: fc.constantFrom(...TOOLS),
    risk: fc.integer({ min: 0, max: 100 }),
    args: fc.subarray(['k1', 'k2']),
    approved: fc.boolean(),
    ip: fc.option(fc.constantFrom('10.1.2.3', '192.168.0.1'), { nil: undefined }),
    http: fc.boolean(),
  })
  .map((r) => {
    const principal =
      r.who.kind === 'agent'
        ? {
            type: 'Agent',
            id: r.who.id,
            parents: [
              ...(r.who.template ? [{ type: 'Template', id: r.who.template }] : []),
              ...(r.who.provider ? [{ type: 'Provider', id: r.who.provider }] : []),
            ],
            ...(r.who.risk ? { attrs: { risk_level: r.who.risk } } : {}),
          }
        : { type: 'User', id: r.who.id };
    const server = r.target.split('/')[0] as string;
    const resource =
      r.action === 'call_tool'
        ? { type: 'Tool', id: r.target, parents: [{ type: 'Server', id: server }] }
        : r.action === 'read_resource'
          ? { type: 'Resource', id: `${r.target}-doc`, parents: [{ type: 'Server', id: server }] }
          : r.action === 'list_tools'
            ? { type: 'Server', id: server }
            : { type: 'Scope', id: 'repo' };
    return {
      principal,
      action: r.action,
      resource,
      context: {
        risk_score: r.risk,
        args: Object.fromEntries(r.args.map((k, i) => [k, i === 0 ? r.risk % 12 : 'v'])),
        approval: { state: r.approved ? ('approved' as const) : ('none' as const) },
        ...(r.ip ? { source_ip: r.ip } : {}),
        ...(r.http ? { http: { method: 'GET', host: 'api.example.com', path: '/' } } : {}),
      },
    };
  });

describe('policy slicing', () => {
  it('decides exactly like naive full-set evaluation on random policies and requests', () => {
    fc.assert(
      fc.property(
        fc.array(policy, { minLength: 0, maxLength: 25 }),
        fc.array(request, { minLength: 1, maxLength: 6 }),
        (texts, requests) => {
          const index = new PolicyIndex(parsePolicySet(texts.join('\n')).policies);
          try {
            for (const raw of requests) {
              const req = normalizeRequest(raw, clock);
              const sliced = decideWith(index, 1, req);
              const naive = decideWith(index, 1, req, true);
              assert.deepEqual(sliced, naive);
            }
          } finally {
            index.dispose();
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('gives a request only the policies whose scope can match it', () => {
    const texts = [
      ...Array.from(
        { length: 50 },
        (_, i) =>
          `permit (principal in Warden::Template::"t${i}", action == Warden::Action::"call_tool", resource);`,
      ),
      'forbid (principal, action, resource) when { context.risk_score > 90 };',
    ];
    const index = new PolicyIndex(parsePolicySet(texts.join('\n')).policies);
    const req = normalizeRequest(
      {
        principal: { type: 'Agent', id: 'a', parents: [{ type: 'Template', id: 't7' }] },
        action: 'call_tool',
        resource: { type: 'Tool', id: 'x' },
      },
      clock,
    );
    assert.deepEqual(index.sliceIds(toCedarRequest(req)), ['policy50', 'policy7']);
    assert.equal(decideWith(index, 1, req).decision, 'permit');
    index.dispose();
  });
});
