import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { ApprovalRequestInput } from '../../src/approvals/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { runWarden } from '../support/process.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { seedWorld, type World } from './harness.ts';

const SERVERS = { sqlite: await startTestServer('sqlite'), postgres: await startTestServer('postgres') };

for (const backend of BACKENDS) {
  describe(`approvals API and CLI (${backend})`, () => {
    let server: TestServer;
    let w: World;
    let bobToken: string;
    let oliviaToken: string;
    let n = 0;
    const payment = (): ApprovalRequestInput => ({
      agent_id: w.agentId,
      user_id: w.alice.id,
      intent: 'pay an invoice',
      tool: 'payments.send',
      arguments: { amount: 700, invoice: `INV-${++n}` },
    });

    before(async () => {
      server = SERVERS[backend];
      w = await seedWorld(server.warden.identity, server.warden.approvals);
      const token = async (user: string, role: 'approver' | 'agent_owner') =>
        (
          await server.warden.identity.users.createToken(
            { name: 'test', role, expires_in: 3600, user_id: user },
            w.admin,
          )
        ).token;
      bobToken = await token(w.approver.id, 'approver');
      oliviaToken = await token(w.owner.id, 'approver');
    });

    it('lists and shows requests; approves through the API; the grant is then consumable once', async () => {
      const { request } = await server.warden.approvals.request(payment());
      const list = await server.call('GET', '/v1/approvals?status=pending', undefined, bobToken);
      assert.equal(list.status, 200);
      assert.ok(list.body.items.some((v: { id: string }) => v.id === request.id));
      const shown = await server.call('GET', `/v1/approvals/${request.id}`, undefined, bobToken);
      assert.equal(shown.status, 200);
      assert.equal(shown.body.binding_message, request.binding_message);
      assert.equal(shown.body.authorization_details[0].type, 'warden_tool_call');

      const approved = await server.call(
        'POST',
        `/v1/approvals/${request.id}/approve`,
        { comment: 'ok' },
        bobToken,
      );
      assert.equal(approved.status, 200);
      assert.equal(approved.body.status, 'approved');
      const again = await server.call('POST', `/v1/approvals/${request.id}/deny`, {}, bobToken);
      assert.equal(again.status, 403);
      assert.equal(again.body.code, 'ERR_APPROVAL_DECIDED');
      assert.equal(again.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      const call = {
        agentId: w.agentId,
        userId: w.alice.id,
        tool: 'payments.send',
        arguments: request.arguments,
      };
      const used = await server.warden.approvals.consume(request.id, call);
      assert.equal(used.status, 'consumed');
    });

    it('refuses self-approval by the owner, an ineligible person, bad input and missing credentials', async () => {
      const { request } = await server.warden.approvals.request(payment());
      const self = await server.call('POST', `/v1/approvals/${request.id}/approve`, {}, oliviaToken);
      assert.equal(self.status, 403);
      assert.equal(self.body.code, 'ERR_APPROVAL_SELF');
      const admin = await server.call('POST', `/v1/approvals/${request.id}/approve`, {});
      assert.equal(admin.status, 403, 'the bootstrap admin is not in the finance group');
      assert.equal(admin.body.code, 'ERR_APPROVER_NOT_ELIGIBLE');
      const extra = await server.call(
        'POST',
        `/v1/approvals/${request.id}/approve`,
        { comment: 'x', force: true },
        bobToken,
      );
      assert.equal(extra.status, 400);
      const anon = await server.call('POST', `/v1/approvals/${request.id}/approve`, {}, null);
      assert.equal(anon.status, 401);
      const missing = await server.call(
        'GET',
        '/v1/approvals/0192f7a0-0000-7000-8000-000000000000',
        undefined,
        bobToken,
      );
      assert.equal(missing.status, 404);
      assert.equal((await server.warden.approvals.get(request.id)).status, 'pending');
    });

    it('manages channels (write-only secrets) and reports per-approver statistics', async () => {
      const bad = await server.call('POST', '/v1/approvals/channels', {
        name: 'plain',
        kind: 'webhook',
        url: 'http://hooks.example.com/x',
        secret: 'x'.repeat(40),
      });
      assert.equal(bad.status, 400);
      const made = await server.call('POST', '/v1/approvals/channels', {
        name: 'hook',
        kind: 'webhook',
        url: 'https://hooks.example.com/x',
        secret: 's'.repeat(40),
        enabled: false,
      });
      assert.equal(made.status, 201);
      assert.ok(!JSON.stringify(made.body).includes('s'.repeat(40)));
      const stats = await server.call('GET', '/v1/approvals/stats');
      assert.equal(stats.status, 200);
      const bob = stats.body.items.find((s: { approver_id: string }) => s.approver_id === w.approver.id);
      assert.equal(bob.approved, 1);
      const forbidden = await server.call('GET', '/v1/approvals/stats', undefined, bobToken);
      assert.equal(forbidden.status, 403);
    });

    // The CLI talks HTTP; the back end does not change it, so it runs once (process start-up is slow).
    if (backend === 'sqlite')
      it('CLI: warden approvals list, show, approve and deny', async () => {
        const env = { WARDEN_URL: server.url, WARDEN_TOKEN: bobToken, WARDEN_CLI_CONFIG_DIR: server.dataDir };
        const { request: r1 } = await server.warden.approvals.request(payment());
        const { request: r2 } = await server.warden.approvals.request(payment());
        const list = await runWarden(['approvals', 'list', '--status', 'pending', '--json'], env);
        assert.equal(list.code, 0, list.stderr);
        const ids = (JSON.parse(list.stdout) as { id: string }[]).map((v) => v.id);
        assert.ok(ids.includes(r1.id) && ids.includes(r2.id));
        const show = await runWarden(['approvals', 'show', r1.id], env);
        assert.equal(show.code, 0, show.stderr);
        assert.match(show.stdout, /intent\s+pay an invoice/);
        const approve = await runWarden(['approvals', 'approve', r1.id, '--comment', 'fine'], env);
        assert.equal(approve.code, 0, approve.stderr);
        assert.equal(approve.stdout.trim(), `${r1.id}: approved`);
        const deny = await runWarden(['approvals', 'deny', r2.id], env);
        assert.equal(deny.stdout.trim(), `${r2.id}: denied`);
        const twice = await runWarden(['approvals', 'approve', r2.id], env);
        assert.equal(twice.code, 1);
        assert.match(twice.stderr, /ERR_APPROVAL_DECIDED/);
        assert.equal((await server.warden.approvals.get(r1.id)).decision_comment, 'fine');
      });
  });
}
