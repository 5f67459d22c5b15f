import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApprovalRefusedError, type GatedCall } from '../../src/approvals/index.ts';
import { RateLimitedError } from '../../src/core/index.ts';
import { BACKENDS, freshDatabase } from '../support/databases.ts';
import {
  type ApprovalsNode,
  events,
  ManualClock,
  newKeyring,
  openNode,
  seedWorld,
  type World,
} from './harness.ts';

async function refused(p: Promise<unknown>, reason: string): Promise<ApprovalRefusedError> {
  try {
    await p;
  } catch (e) {
    assert.ok(
      e instanceof ApprovalRefusedError,
      `expected ApprovalRefusedError, got ${(e as Error).message}`,
    );
    assert.equal(e.reason, reason);
    assert.equal(e.status, 403);
    return e;
  }
  assert.fail(`expected a refusal (${reason})`);
}

const DATABASES = { sqlite: await freshDatabase('sqlite'), postgres: await freshDatabase('postgres') };

for (const backend of BACKENDS) {
  describe(`approvals (${backend})`, () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
    const keyring = newKeyring();
    let a: ApprovalsNode;
    let b: ApprovalsNode;
    let w: World;
    let n = 0;

    before(async () => {
      const db = DATABASES[backend];
      const settings = {
        rateLimit: { max: 50, windowSeconds: 60 },
        defaultTtlSeconds: 600,
        grantTtlSeconds: 120,
      };
      a = await openNode({ ...db, keyring, clock, nodeId: 'node-a', settings });
      // PostgreSQL: a second node with its own pool and change-feed listener.
      b = await openNode({
        ...db,
        keyring,
        clock,
        nodeId: 'node-b',
        settings,
        ...(backend === 'sqlite' ? { store: a.store } : {}),
      });
      w = await seedWorld(a.identity, a.approvals);
    });
    after(async () => {
      await a?.close();
      await b?.close();
    });

    /** A payment over the limit: needs the finance group. Each call gets distinct arguments. */
    const payment = (amount = 500) => {
      n++;
      return {
        agent_id: w.agentId,
        user_id: w.alice.id,
        intent: 'pay the March invoice',
        tool: 'payments.send',
        resource: 'mcp://payments',
        arguments: { amount, currency: 'EUR', to: `DE89-${n}` },
      };
    };
    const callOf = (input: ReturnType<typeof payment>): GatedCall => ({
      agentId: input.agent_id,
      userId: input.user_id,
      tool: input.tool,
      resource: input.resource,
      arguments: input.arguments,
    });
    const bob = () => ({
      type: 'user' as const,
      id: w.approver.id,
      name: w.approver.username,
      roles: ['approver' as const],
    });

    it('creates a request holding the exact call as authorization_details, routed by the template rule', async () => {
      const input = payment();
      const { request, grouped } = await a.approvals.request(input);
      assert.equal(grouped, false);
      assert.equal(request.status, 'pending');
      assert.deepEqual(request.approvers, { kind: 'group', group: 'finance', allow_owner: false });
      assert.deepEqual(request.authorization_details, [
        {
          type: 'warden_tool_call',
          tool: 'payments.send',
          arguments: input.arguments,
          resource: 'mcp://payments',
          locations: ['mcp://payments'],
        },
      ]);
      assert.equal(request.intent, 'pay the March invoice');
      assert.match(request.binding_message, /^pay-bot: payments.send \([0-9a-f]{8}\)$/);
      assert.equal(request.url, `https://warden.example/approvals/${request.id}`);
      assert.equal(request.expires_at, new Date(clock.now() + 600_000).toISOString());
    });

    it('approves, then the grant is consumed once; a second use is refused', async () => {
      const input = payment();
      const { request } = await a.approvals.request(input);
      const decided = await a.approvals.decide(request.id, 'approve', bob(), 'looks right');
      assert.equal(decided.status, 'approved');
      assert.equal(decided.decided_by?.id, w.approver.id);
      const used = await a.approvals.consume(request.id, callOf(input));
      assert.equal(used.status, 'consumed');
      await refused(a.approvals.consume(request.id, callOf(input)), 'consumed');
      await refused(b.approvals.consume(request.id, callOf(input)), 'consumed');
      const evs = (await events(a.store, 'node-a')).filter((e) => e.resource?.id === request.id);
      assert.deepEqual(
        evs.map((e) => `${e.type}:${e.outcome}`),
        [
          'approval.requested:success',
          'approval.decided:success',
          'approval.consumed:success',
          'approval.consumed:denied',
        ],
      );
      for (const e of evs) assert.equal(e.details?.call_hash, request.call_hash);
      assert.equal(evs[1]?.details?.comment, 'looks right');
    });

    it('refuses altered arguments, another tool or another agent user without spending the grant', async () => {
      const input = payment();
      const { request } = await a.approvals.request(input);
      await a.approvals.decide(request.id, 'approve', bob());
      const call = callOf(input);
      await refused(
        a.approvals.consume(request.id, { ...call, arguments: { ...call.arguments, amount: 5000 } }),
        'call_mismatch',
      );
      await refused(a.approvals.consume(request.id, { ...call, tool: 'payments.refund' }), 'call_mismatch');
      await refused(a.approvals.consume(request.id, { ...call, userId: w.owner.id }), 'call_mismatch');
      await refused(a.approvals.consume(request.id, { ...call, resource: 'mcp://other' }), 'call_mismatch');
      // Key order does not matter (canonical JSON); the grant is still there for the exact call.
      const reordered = { to: call.arguments.to, currency: 'EUR', amount: call.arguments.amount };
      assert.equal(
        (await a.approvals.consume(request.id, { ...call, arguments: reordered })).status,
        'consumed',
      );
    });

    it('refuses a denied request', async () => {
      const input = payment();
      const { request } = await a.approvals.request(input);
      const denied = await a.approvals.decide(request.id, 'deny', bob(), 'not this month');
      assert.equal(denied.status, 'denied');
      await refused(a.approvals.consume(request.id, callOf(input)), 'denied');
      await refused(a.approvals.decide(request.id, 'approve', bob()), 'already_decided');
    });

    it('refuses a pending request, then an expired one; expiry is an audit event', async () => {
      const input = payment();
      const { request } = await a.approvals.request(input);
      await refused(a.approvals.consume(request.id, callOf(input)), 'pending');
      clock.advance(600_001);
      await refused(a.approvals.consume(request.id, callOf(input)), 'expired');
      await refused(a.approvals.decide(request.id, 'approve', bob()), 'expired');
      assert.equal((await a.approvals.get(request.id)).status, 'expired');
      const expiredEvents = (await events(a.store, 'node-a')).filter(
        (e) => e.type === 'approval.expired' && e.resource?.id === request.id,
      );
      assert.equal(expiredEvents.length, 1);
      assert.equal(expiredEvents[0]?.details?.call_hash, request.call_hash);
    });

    it('refuses an approved grant used after its own expiry', async () => {
      const input = payment();
      const { request } = await a.approvals.request(input);
      const approved = await a.approvals.decide(request.id, 'approve', bob());
      assert.equal(approved.grant_expires_at, new Date(clock.now() + 120_000).toISOString());
      clock.advance(120_000);
      await refused(a.approvals.consume(request.id, callOf(input)), 'expired');
    });

    it('the expiry sweep marks overdue requests expired once, even when two nodes sweep', async () => {
      const { request } = await a.approvals.request(payment());
      clock.advance(600_001);
      const [x, y] = await Promise.all([a.approvals.expireDue(), b.approvals.expireDue()]);
      assert.ok(x + y >= 1);
      const all = [...(await events(a.store, 'node-a')), ...(await events(b.store, 'node-b'))];
      assert.equal(
        all.filter((e) => e.type === 'approval.expired' && e.resource?.id === request.id).length,
        1,
      );
    });

    it('separation of duties: the owner may not approve a group request for their own agent; agents never', async () => {
      const { request } = await a.approvals.request(payment());
      const olivia = { type: 'user' as const, id: w.owner.id, name: 'olivia', roles: ['approver' as const] };
      await refused(a.approvals.decide(request.id, 'approve', olivia), 'self_approval');
      const agent = { type: 'agent' as const, id: w.agentId, roles: ['admin' as const] };
      await refused(a.approvals.decide(request.id, 'approve', agent), 'agent_approver');
      const alice = { type: 'user' as const, id: w.alice.id, roles: ['approver' as const] };
      await refused(a.approvals.decide(request.id, 'approve', alice), 'not_eligible');
      // A group member whose credential lacks a deciding role is refused too.
      await refused(
        a.approvals.decide(request.id, 'approve', { ...bob(), roles: ['auditor'] }),
        'not_eligible',
      );
      const refusals = (await events(a.store, 'node-a')).filter(
        (e) => e.type === 'approval.decided' && e.resource?.id === request.id,
      );
      assert.deepEqual(
        refusals.map((e) => e.error_code),
        [
          'ERR_APPROVAL_SELF',
          'ERR_APPROVAL_BY_AGENT',
          'ERR_APPROVER_NOT_ELIGIBLE',
          'ERR_APPROVER_NOT_ELIGIBLE',
        ],
      );
      assert.equal((await a.approvals.get(request.id)).status, 'pending');
    });

    it('an owner rule allows the owner explicitly; a user rule allows only the delegating user', async () => {
      const ticket = { agent_id: w.agentId, tool: 'tickets.create', arguments: { title: `t${n++}` } };
      const { request: r1 } = await a.approvals.request(ticket);
      assert.deepEqual(r1.approvers, { kind: 'owner', allow_owner: true });
      await refused(a.approvals.decide(r1.id, 'approve', bob()), 'not_eligible');
      const olivia = { type: 'user' as const, id: w.owner.id, roles: ['agent_owner' as const] };
      assert.equal((await a.approvals.decide(r1.id, 'approve', olivia)).status, 'approved');

      const { request: r2 } = await a.approvals.request({
        ...payment(),
        approvers: { kind: 'user' },
      });
      assert.deepEqual(r2.approvers, { kind: 'user', allow_owner: false });
      await refused(a.approvals.decide(r2.id, 'approve', bob()), 'not_eligible');
      const alice = { type: 'user' as const, id: w.alice.id, roles: [] };
      assert.equal((await a.approvals.decide(r2.id, 'approve', alice)).status, 'approved');
      // A payment under the rule's threshold matches no rule: the owner decides (explicitly allowed).
      const { request: r3 } = await a.approvals.request(payment(50));
      assert.deepEqual(r3.approvers, { kind: 'owner', allow_owner: true });
    });

    it('groups identical pending requests (same call hash) into one', async () => {
      const input = payment();
      const first = await a.approvals.request(input);
      const again = await b.approvals.request({ ...input, arguments: { ...input.arguments } });
      assert.equal(again.grouped, true);
      assert.equal(again.request.id, first.request.id);
      const other = await a.approvals.request({ ...input, arguments: { ...input.arguments, amount: 501 } });
      assert.notEqual(other.request.id, first.request.id);
    });

    it('two nodes consuming the same grant at once: exactly one succeeds', async () => {
      for (let round = 0; round < 5; round++) {
        const input = payment();
        const { request } = await a.approvals.request(input);
        await a.approvals.decide(request.id, 'approve', bob());
        const results = await Promise.allSettled([
          a.approvals.consume(request.id, callOf(input)),
          b.approvals.consume(request.id, callOf(input)),
          a.approvals.consume(request.id, callOf(input)),
          b.approvals.consume(request.id, callOf(input)),
        ]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}`);
        for (const r of results) {
          if (r.status === 'rejected') assert.equal((r.reason as ApprovalRefusedError).reason, 'consumed');
        }
      }
    });

    it('a waiter on one node wakes when another node decides (hold mode), and the call runs once', async () => {
      const input = payment();
      const held = b.approvals.authorizeCall(input, { mode: 'hold', waitMs: 10_000 });
      let id: string | undefined;
      for (let i = 0; i < 100 && !id; i++) {
        await new Promise((r) => setTimeout(r, 20));
        id = (await a.approvals.list({ status: 'pending' })).find(
          (v) => JSON.stringify(v.arguments) === JSON.stringify(input.arguments),
        )?.id;
      }
      assert.ok(id, 'the held call created a request');
      await a.approvals.decide(id, 'approve', bob());
      const outcome = await held;
      assert.equal(outcome.status, 'granted');
      assert.equal(outcome.request.status, 'consumed');
      // A retry with the same id cannot run the call again.
      await refused(b.approvals.authorizeCall(input, { mode: 'pending', retryRequestId: id }), 'consumed');
    });

    it('pending mode answers at once; the retry with the request id consumes the grant once', async () => {
      const input = payment();
      const first = await a.approvals.authorizeCall(input, { mode: 'pending' });
      assert.equal(first.status, 'pending');
      const id = first.request.id;
      const early = await a.approvals.authorizeCall(input, { mode: 'pending', retryRequestId: id });
      assert.equal(early.status, 'pending');
      await a.approvals.decide(id, 'approve', bob());
      const retry = await b.approvals.authorizeCall(input, { mode: 'pending', retryRequestId: id });
      assert.equal(retry.status, 'granted');
      await refused(a.approvals.authorizeCall(input, { mode: 'pending', retryRequestId: id }), 'consumed');
      const altered = { ...input, arguments: { ...input.arguments, amount: 9999 } };
      await refused(
        a.approvals.authorizeCall(altered, { mode: 'pending', retryRequestId: id }),
        'call_mismatch',
      );
    });

    it('rate-limits new requests per agent (approval fatigue) and records per-approver statistics', async () => {
      const limited = await openNode({
        url: undefined,
        dataDir: (await freshDatabase('sqlite')).dataDir,
        keyring,
        clock,
        settings: { rateLimit: { max: 2, windowSeconds: 60 } },
      });
      try {
        const world = await seedWorld(limited.identity, limited.approvals);
        const mk = (i: number) => ({
          agent_id: world.agentId,
          tool: 'payments.send',
          arguments: { amount: 500 + i },
        });
        await limited.approvals.request(mk(1));
        await limited.approvals.request(mk(2));
        // An identical request is grouped, not counted.
        assert.equal((await limited.approvals.request(mk(2))).grouped, true);
        await assert.rejects(limited.approvals.request(mk(3)), RateLimitedError);
        clock.advance(61_000);
        await limited.approvals.request(mk(4));
      } finally {
        await limited.close();
      }

      const stats = await a.approvals.stats();
      const bobStats = stats.find((s) => s.approver_id === w.approver.id);
      assert.ok(bobStats);
      assert.ok(bobStats.approved >= 5);
      assert.ok(bobStats.denied >= 1);
      assert.equal(bobStats.approve_ratio, bobStats.approved / (bobStats.approved + bobStats.denied));
      const metrics = await a.metrics.metrics();
      assert.match(metrics, /warden_approval_decisions_total\{decision="approved"\} \d+/);
      assert.match(await b.metrics.metrics(), /warden_approval_requests_total\{outcome="grouped"\} \d+/);
      assert.match(metrics, /warden_approval_latency_seconds_count\{decision="denied"\} \d+/);
    });
  });
}
