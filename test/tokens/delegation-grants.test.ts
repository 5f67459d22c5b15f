import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readEvents } from '../../src/audit/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { GATEWAY, registerAgent, startTokenServer } from './support.ts';

const HOUR = 3_600_000;

for (const backend of BACKENDS) {
  describe(`delegation grants on ${backend}`, async () => {
    const server = await startTokenServer(backend);
    const { tokens, identity, store, auditor } = server.warden;
    const agent = await registerAgent(server, { scopes: ['tickets.read', 'tickets.write'] });
    const admin = { type: 'user' as const, id: 'admin-test' };
    const alice = await identity.users.create({ username: `alice-${backend}`, roles: [] }, undefined);
    const bob = await identity.users.create({ username: `bob-${backend}`, roles: [] }, undefined);

    it('creates a grant with normalised fields and an audit event in the same transaction', async () => {
      const grant = await tokens.createGrant(
        {
          userId: alice.username,
          agentId: agent.name,
          scopes: ['tickets.read', 'tickets.read'],
          resources: [GATEWAY],
          purpose: 'triage my tickets',
          authorizationDetails: [{ type: 'ticket', actions: ['read'] }],
          source: 'api',
          expiresAt: Date.now() + HOUR,
        },
        admin,
      );
      assert.equal(grant.userId, alice.id, 'username resolved to the user id');
      assert.equal(grant.agentId, agent.id, 'agent name resolved to its id');
      assert.deepEqual(grant.scopes, ['tickets.read']);
      assert.deepEqual(grant.resources, [GATEWAY]);
      assert.deepEqual(grant.authorizationDetails, [{ type: 'ticket', actions: ['read'] }]);
      assert.equal(grant.createdBy, admin.id);
      assert.equal(grant.revokedAt, null);
      assert.deepEqual(await tokens.grants.find(grant.id), grant);
      const events = (await readEvents(store.db, auditor.partition, 0, 10_000)).filter(
        (e) => e.type === 'delegation.grant_created' && e.resource?.id === grant.id,
      );
      assert.equal(events.length, 1);
      assert.deepEqual(events[0]?.details?.scopes, ['tickets.read']);
    });

    it('refuses a grant for scopes outside the agent template', async () => {
      await assert.rejects(
        tokens.createGrant(
          {
            userId: alice.id,
            agentId: agent.id,
            scopes: ['tickets.read', 'payroll.write'],
            purpose: 'too much',
            source: 'api',
            expiresAt: Date.now() + HOUR,
          },
          admin,
        ),
        (e: any) => e.code === 'ERR_SCOPE_NOT_ALLOWED' && /payroll\.write/.test(e.message),
      );
      await assert.rejects(
        tokens.createGrant(
          {
            userId: alice.id,
            agentId: agent.id,
            scopes: ['tickets.read'],
            resources: ['https://elsewhere.example.test/'],
            purpose: 'unknown resource',
            source: 'api',
            expiresAt: Date.now() + HOUR,
          },
          admin,
        ),
        (e: any) => e.code === 'ERR_RESOURCE_NOT_ALLOWED',
      );
      await assert.rejects(
        tokens.createGrant(
          {
            userId: alice.id,
            agentId: agent.id,
            scopes: ['tickets.read'],
            purpose: 'already over',
            source: 'api',
            expiresAt: Date.now() - 1,
          },
          admin,
        ),
        (e: any) => e.code === 'ERR_GRANT_EXPIRY',
      );
    });

    it('finds only active grants of one user to one agent, and lists with filters and pages', async () => {
      const make = (userId: string, expiresAt: number) =>
        tokens.createGrant(
          {
            userId,
            agentId: agent.id,
            scopes: ['tickets.write'],
            purpose: 'p',
            source: 'consent',
            expiresAt,
          },
          { type: 'user', id: userId },
        );
      const active = await make(bob.id, Date.now() + HOUR);
      const soon = await make(bob.id, Date.now() + 1500);
      const revoked = await make(bob.id, Date.now() + HOUR);
      await tokens.revokeGrant(revoked.id, admin);
      await sleep(1600);
      const found = await tokens.grants.findActive(bob.id, agent.id);
      assert.deepEqual(
        found.map((g) => g.id),
        [active.id],
        'revoked and expired grants are not in force',
      );
      assert.equal(soon.source, 'consent');
      const all = await tokens.grants.list({ userId: bob.id, includeInactive: true, limit: 2 });
      assert.equal(all.items.length, 2);
      assert.ok(all.next_cursor);
      const rest = await tokens.grants.list({
        userId: bob.id,
        includeInactive: true,
        limit: 2,
        cursor: all.next_cursor,
      });
      assert.deepEqual(
        [...all.items, ...rest.items].map((g) => g.id),
        [active.id, soon.id, revoked.id],
      );
      const onlyActive = await tokens.grants.list({ userId: bob.id });
      assert.deepEqual(
        onlyActive.items.map((g) => g.id),
        [active.id],
      );
      assert.equal((await tokens.grants.list({ agentId: randomUUID() })).items.length, 0);
    });

    it('revokes a grant with every token issued under or derived from it, publishing each jti', async () => {
      const grant = await tokens.createGrant(
        {
          userId: alice.id,
          agentId: agent.id,
          scopes: ['tickets.read'],
          purpose: 'revocation',
          source: 'api',
          expiresAt: Date.now() + HOUR,
        },
        admin,
      );
      const now = Date.now();
      const base = {
        clientId: agent.id,
        sub: alice.id,
        aud: GATEWAY,
        scope: 'tickets.read',
        jkt: null,
        kid: 'k',
        templateId: randomUUID(),
        templateVersion: 1,
        issuedAt: now,
        expiresAt: now + 60_000,
      };
      const direct = randomUUID();
      const derived = randomUUID();
      const unrelated = randomUUID();
      await store.transaction(async (tx) => {
        await tokens.issued.record(tx, { ...base, jti: direct, grantId: grant.id });
        await tokens.issued.record(tx, {
          ...base,
          jti: derived,
          grantId: randomUUID(),
          grantChain: [grant.id],
        });
        await tokens.issued.record(tx, { ...base, jti: unrelated });
      });
      const published: string[] = [];
      const unsubscribe = store.changes.subscribe('tokens.revoked', (c) =>
        published.push(String(c.payload.jti)),
      );
      try {
        const result = await tokens.revokeGrant(grant.id, admin, undefined, 'user asked');
        assert.equal(result.changed, true);
        assert.deepEqual(result.revokedTokens.sort(), [direct, derived].sort());
        assert.notEqual(result.grant.revokedAt, null);
        assert.equal(result.grant.revokeReason, 'user asked');
        assert.equal(result.grant.revokedBy, admin.id);
        assert.notEqual((await tokens.issued.find(direct))?.revokedAt, null);
        assert.equal((await tokens.issued.find(direct))?.grantId, grant.id);
        assert.notEqual((await tokens.issued.find(derived))?.revokedAt, null);
        assert.equal((await tokens.issued.find(unrelated))?.revokedAt, null);
        const started = Date.now();
        while (published.length < 2 && Date.now() - started < 3000) await sleep(20);
        assert.deepEqual(published.sort(), [direct, derived].sort());
        const again = await tokens.revokeGrant(grant.id, admin);
        assert.equal(again.changed, false);
        assert.deepEqual(again.revokedTokens, []);
      } finally {
        unsubscribe();
      }
      const events = (await readEvents(store.db, auditor.partition, 0, 10_000)).filter(
        (e) => e.type === 'delegation.grant_revoked' && e.resource?.id === grant.id,
      );
      assert.equal(events.length, 2);
      assert.equal(events[0]?.details?.revoked_jti_count, 2);
      assert.equal(events[1]?.details?.already_revoked, true);
      await assert.rejects(
        tokens.revokeGrant(randomUUID(), admin),
        (e: any) => e.code === 'ERR_GRANT_NOT_FOUND',
      );
    });
  });
}
