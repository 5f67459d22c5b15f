import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { listPartitions, readEvents } from '../../src/audit/index.ts';
import { ConflictError, InvalidRequestError, NotFoundError } from '../../src/core/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { admin, agent, policyWorld, tool } from './support.ts';

const ALLOW_CRM =
  '@id("crm") permit (principal in Warden::Template::"support-bot", action == Warden::Action::"call_tool", resource in Warden::Server::"crm");';
const ALLOW_MAIL =
  '@id("mail") permit (principal in Warden::Template::"support-bot", action == Warden::Action::"call_tool", resource in Warden::Server::"mail");';

const crmCall = { principal: agent('a1'), action: 'call_tool', resource: tool('crm/lookup') };
const mailCall = { principal: agent('a1'), action: 'call_tool', resource: tool('mail/send') };

async function policyEvents(world: Awaited<ReturnType<typeof policyWorld>>) {
  const events = [];
  for (const { partition } of await listPartitions(world.store.db)) {
    for (const e of await readEvents(world.store.db, partition, 0, 1000))
      if (e.type === 'policy.changed') events.push(e);
  }
  return events;
}

for (const backend of BACKENDS) {
  describe(`policy versions on ${backend}`, () => {
    it('refuses an invalid policy set with Cedar diagnostics and writes nothing', async () => {
      const w = await policyWorld(backend);
      try {
        await assert.rejects(
          w.admin.push(
            { policies: '@id("bad") permit (principal, action, resource) when { context.no_such_field };' },
            admin,
          ),
          (e: unknown) =>
            e instanceof InvalidRequestError &&
            e.code === 'ERR_POLICY_INVALID' &&
            !!e.invalidParams?.some((p) => p.name === 'policies.bad' && /no_such_field/.test(p.reason)),
        );
        await assert.rejects(w.admin.push({ policies: 'permit (principal,' }, admin), InvalidRequestError);
        assert.deepEqual(await w.admin.list(), []);
        assert.deepEqual(await policyEvents(w), []);
        assert.equal(await w.admin.active(), undefined);
      } finally {
        await w.close();
      }
    });

    it('pushes, activates and rolls back versions, each change audited', async () => {
      const w = await policyWorld(backend);
      try {
        assert.equal(w.engine.decide(crmCall).decision, 'deny', 'no active version: deny');
        const v1 = await w.admin.push({ policies: ALLOW_CRM, description: 'crm only' }, admin);
        const v2 = await w.admin.push({ policies: `${ALLOW_CRM}\n${ALLOW_MAIL}` }, admin);
        assert.equal(v1.version, 1);
        assert.equal(v2.version, 2);
        assert.equal(v2.policy_count, 2);
        assert.equal(w.engine.decide(crmCall).decision, 'deny', 'pushing does not activate');

        await w.admin.activate(1, admin);
        await w.engine.reload();
        assert.equal(w.engine.version, 1);
        assert.equal(w.engine.decide(crmCall).decision, 'permit');
        assert.equal(w.engine.decide(mailCall).decision, 'deny');

        await w.admin.activate(2, admin);
        await w.engine.reload();
        assert.equal(w.engine.decide(mailCall).decision, 'permit');
        assert.equal(w.engine.decide(mailCall).policy_version, 2);

        const rolled = await w.admin.rollback(admin);
        assert.equal(rolled.version, 1);
        assert.equal(rolled.kind, 'rollback');
        await w.engine.reload();
        assert.equal(w.engine.decide(mailCall).decision, 'deny');
        assert.equal((await w.admin.active())?.version, 1);

        await assert.rejects(w.admin.activate(99, admin), NotFoundError);
        const history = await w.admin.history();
        assert.deepEqual(
          history.map((h) => [h.kind, h.version, h.previous_version]),
          [
            ['rollback', 1, 2],
            ['activate', 2, 1],
            ['activate', 1, null],
          ],
        );
        const events = await policyEvents(w);
        assert.deepEqual(
          events.map((e) => [e.action, e.resource?.id]),
          [
            ['policy.push', '1'],
            ['policy.push', '2'],
            ['policy.activate', '1'],
            ['policy.activate', '2'],
            ['policy.rollback', '1'],
          ],
        );
        assert.ok(events.every((e) => e.actor.id === admin.id && e.outcome === 'success'));
      } finally {
        await w.close();
      }
    });

    it('refuses a rollback when nothing was active before', async () => {
      const w = await policyWorld(backend);
      try {
        await assert.rejects(w.admin.rollback(admin), ConflictError);
        await w.admin.push({ policies: ALLOW_CRM }, admin);
        await w.admin.activate(1, admin);
        await assert.rejects(w.admin.rollback(admin), ConflictError);
      } finally {
        await w.close();
      }
    });

    it('compiles a template into the active set, replacing its earlier policies', async () => {
      const w = await policyWorld(backend);
      try {
        await w.admin.push(
          { policies: '@id("base") forbid (principal, action, resource) when { context.risk_score > 90 };' },
          admin,
        );
        await w.admin.activate(1, admin);
        await w.admin.pushTemplate(
          { id: 'support-bot', version: 1, allowedTools: ['crm/lookup', 'mail/send'], allowedScopes: [] },
          admin,
          { activate: true },
        );
        await w.admin.pushTemplate(
          { id: 'support-bot', version: 2, allowedTools: ['crm/lookup'], allowedScopes: [] },
          admin,
          { activate: true },
        );
        await w.engine.reload();
        assert.equal(w.engine.decide(crmCall).decision, 'permit');
        assert.equal(w.engine.decide(mailCall).decision, 'deny');
        assert.equal(w.engine.decide({ ...crmCall, context: { risk_score: 95 } }).decision, 'deny');
        const active = await w.admin.active();
        assert.equal(active?.policy_count, 2);
      } finally {
        await w.close();
      }
    });

    it('reaches a second node on the same database within a second', async () => {
      const a = await policyWorld(backend);
      const b = await policyWorld(backend, { url: a.url, dataDir: a.dataDir });
      try {
        await a.admin.push({ policies: ALLOW_CRM }, admin);
        assert.equal(b.engine.decide(crmCall).decision, 'deny');
        const started = Date.now();
        await a.admin.activate(1, admin);
        while (b.engine.version !== 1 && Date.now() - started < 3000) await sleep(10);
        const elapsed = Date.now() - started;
        assert.equal(b.engine.version, 1);
        assert.ok(elapsed < 1000, `reached the second node in ${elapsed} ms`);
        assert.equal(b.engine.decide(crmCall).decision, 'permit');
      } finally {
        await b.close();
        await a.close();
      }
    });
  });
}
