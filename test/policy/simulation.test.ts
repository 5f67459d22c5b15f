import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError } from '../../src/core/index.ts';
import {
  decisionEvent,
  leastAgency,
  loadVersionIndex,
  normalizeRequest,
  simulate,
} from '../../src/policy/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { admin, agent, type PolicyWorld, policyWorld, tool } from './support.ts';

const CURRENT = [
  '@id("crm") permit (principal in Warden::Template::"support-bot", action == Warden::Action::"call_tool", resource in Warden::Server::"crm");',
  '@id("mail") permit (principal in Warden::Template::"support-bot", action == Warden::Action::"call_tool", resource == Warden::Tool::"mail/send");',
  '@id("scope") permit (principal in Warden::Template::"support-bot", action == Warden::Action::"request_scope", resource == Warden::Scope::"crm.read");',
].join('\n');

const PROPOSED = [
  '@id("crm") permit (principal in Warden::Template::"support-bot", action == Warden::Action::"call_tool", resource in Warden::Server::"crm");',
  '@id("mail") @approval("required") permit (principal in Warden::Template::"support-bot", action == Warden::Action::"call_tool", resource == Warden::Tool::"mail/send");',
  '@id("fs") permit (principal in Warden::Template::"support-bot", action == Warden::Action::"call_tool", resource == Warden::Tool::"fs/read");',
  '@id("no-delete") forbid (principal, action, resource == Warden::Tool::"crm/delete");',
].join('\n');

async function decideAndRecord(w: PolicyWorld, raw: unknown): Promise<void> {
  const req = normalizeRequest(raw, w.clock);
  const d = w.engine.decideNormalized(req);
  await w.auditor.record(decisionEvent(req, d));
}

for (const backend of BACKENDS) {
  describe(`policy simulation on ${backend}`, () => {
    it('replays recorded decisions against a proposed version and reports changed outcomes', async () => {
      const w = await policyWorld(backend);
      try {
        await w.admin.push({ policies: CURRENT }, admin);
        await w.admin.activate(1, admin);
        await w.engine.reload();
        const start = w.clock.now();
        const call = (id: string, t: string) => ({
          principal: agent(id),
          action: 'call_tool',
          resource: tool(t),
        });
        await decideAndRecord(w, call('a1', 'crm/lookup')); // permit → permit
        w.clock.advance(1000);
        await decideAndRecord(w, call('a1', 'crm/delete')); // permit → deny
        w.clock.advance(1000);
        await decideAndRecord(w, call('a2', 'fs/read')); // deny → permit
        w.clock.advance(1000);
        await decideAndRecord(w, call('a2', 'mail/send')); // permit → permit with approval
        w.clock.advance(60_000);
        await decideAndRecord(w, call('a1', 'crm/delete')); // outside the window
        const proposed = await w.admin.push({ policies: PROPOSED }, admin);
        const index = await loadVersionIndex(w.store, proposed.version);
        assert.ok(index);
        const report = await simulate(
          w.store,
          index,
          proposed.version,
          { from: start, to: start + 10_000 },
          w.clock,
        );
        index.dispose();
        assert.equal(report.evaluated, 4);
        assert.equal(report.unchanged, 1);
        assert.deepEqual(
          report.allowed_to_denied.map((c) => [c.principal.id, c.resource.id, c.after.policies]),
          [['a1', 'crm/delete', ['no-delete']]],
        );
        assert.deepEqual(
          report.denied_to_allowed.map((c) => [c.principal.id, c.resource.id, c.after.policies]),
          [['a2', 'fs/read', ['fs']]],
        );
        assert.deepEqual(
          report.approval_changed.map((c) => [
            c.resource.id,
            c.before.approval_required,
            c.after.approval_required,
          ]),
          [['mail/send', false, true]],
        );
        assert.deepEqual(report.failed, []);
        assert.equal(w.engine.version, 1, 'simulation does not activate anything');
        await assert.rejects(
          simulate(w.store, index, 2, { from: start + 1, to: start }, w.clock),
          InvalidRequestError,
        );
      } finally {
        await w.close();
      }
    });

    it('lists the grants an agent has not used as removal candidates', async () => {
      const w = await policyWorld(backend);
      try {
        await w.admin.push({ policies: CURRENT }, admin);
        await w.admin.activate(1, admin);
        await w.engine.reload();
        const start = w.clock.now();
        await decideAndRecord(w, {
          principal: agent('a1'),
          action: 'call_tool',
          resource: tool('crm/lookup'),
        });
        await decideAndRecord(w, {
          principal: agent('a1'),
          action: 'call_tool',
          resource: tool('crm/search'),
        });
        await decideAndRecord(w, {
          principal: agent('a2'),
          action: 'call_tool',
          resource: tool('mail/send'),
        });
        await decideAndRecord(w, { principal: agent('a1'), action: 'call_tool', resource: tool('fs/read') });
        const report = await leastAgency(
          w.store,
          w.engine.index,
          agent('a1'),
          { from: start, to: start + 10_000 },
          w.clock,
        );
        assert.deepEqual(
          report.grants.map((g) => [g.policy_id, g.actions, g.resource, g.uses]),
          [
            ['crm', ['call_tool'], 'in Server::"crm"', 2],
            ['mail', ['call_tool'], 'Tool::"mail/send"', 0],
            ['scope', ['request_scope'], 'Scope::"crm.read"', 0],
          ],
        );
        assert.deepEqual(
          report.unused.map((g) => g.policy_id),
          ['mail', 'scope'],
        );
        const other = await leastAgency(
          w.store,
          w.engine.index,
          agent('a9', 'sales-bot'),
          { from: start, to: start + 10_000 },
          w.clock,
        );
        assert.deepEqual(other.grants, []);
      } finally {
        await w.close();
      }
    });
  });
}
