import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type InclusionProof, verifyInclusionProof, verifyLedger } from '../../src/audit/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

async function tokenFor(s: TestServer, username: string, role: string): Promise<string> {
  const user = await s.call('POST', '/v1/users', { username, roles: [role] });
  assert.equal(user.status, 201, JSON.stringify(user.body));
  const token = await s.call('POST', '/v1/tokens', { name: username, role, user_id: user.body.id });
  assert.equal(token.status, 201, JSON.stringify(token.body));
  return token.body.token as string;
}

for (const backend of BACKENDS) {
  describe(`audit API on ${backend}`, () => {
    it('lets auditors, security analysts and admins read; refuses other roles; offers no write', async () => {
      const s = await startTestServer(backend);
      const auditor = await tokenFor(s, 'audrey', 'auditor');
      const analyst = await tokenFor(s, 'sam', 'security_analyst');
      const approver = await tokenFor(s, 'april', 'approver');
      for (const token of [s.adminToken, auditor, analyst]) {
        const res = await s.call('GET', '/v1/audit/events?type=user.created', undefined, token);
        assert.equal(res.status, 200);
        assert.equal(res.body.items.length, 4, 'three users and the bootstrap administrator');
      }
      const refused = await s.call('GET', '/v1/audit/events', undefined, approver);
      assert.equal(refused.status, 403);
      assert.equal((await s.call('GET', '/v1/audit/events', undefined, null)).status, 401);
      const before = (await s.call('GET', '/v1/audit/events?limit=1000')).body.items.length;
      for (const [method, path] of [
        ['POST', '/v1/audit/events'],
        ['DELETE', '/v1/audit/events'],
        ['PUT', '/v1/audit/checkpoints'],
      ] as const) {
        const res = await s.call(method, path, method === 'DELETE' ? undefined : {});
        assert.ok(res.status === 404 || res.status === 405, `${method} ${path} → ${res.status}`);
      }
      const after = (await s.call('GET', '/v1/audit/events?limit=1000')).body.items.length;
      assert.ok(after >= before, 'nothing was removed');
    });

    it('pages newest first with a cursor, filters by time, and refuses bad filters with a problem', async () => {
      const s = await startTestServer(backend);
      for (const name of ['u1', 'u2', 'u3'])
        await s.call('POST', '/v1/users', { username: name, roles: ['auditor'] });
      const seen: any[] = [];
      let cursor: string | null = null;
      do {
        const q: string = `/v1/audit/events?type=user.created&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
        const page = await s.call('GET', q);
        assert.equal(page.status, 200);
        seen.push(...page.body.items);
        cursor = page.body.next_cursor;
      } while (cursor);
      assert.equal(seen.length, 4, 'three users and the bootstrap administrator');
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i - 1].id > seen[i].id, 'newest first');
      const iso = new Date(seen[0].time).toISOString();
      const since = await s.call('GET', `/v1/audit/events?type=user.created&from=${encodeURIComponent(iso)}`);
      assert.ok(since.body.items.some((e: any) => e.id === seen[0].id));
      const bad = await s.call('GET', '/v1/audit/events?from=yesterday');
      assert.equal(bad.status, 400);
      assert.match(bad.headers.get('content-type') ?? '', /problem\+json/);
      assert.equal((await s.call('GET', '/v1/audit/events?cursor=zzz')).body.code, 'ERR_INVALID_CURSOR');
    });

    it('serves checkpoints, the public key and inclusion proofs that verify offline', async () => {
      const s = await startTestServer(backend);
      await s.call('POST', '/v1/users', { username: 'pat', roles: ['auditor'] });
      const event = (await s.call('GET', '/v1/audit/events?type=user.created')).body.items[0];
      const early = await s.call('GET', `/v1/audit/events/${event.id}/proof`);
      assert.equal(early.status, 409, 'not yet covered by a checkpoint');
      await s.warden.auditor.checkpoint();
      const key = await s.call('GET', '/v1/audit/public-key');
      assert.equal(key.status, 200);
      assert.match(key.body.public_key, /^warden\.audit\+[0-9a-f]{8}\+/);
      const cps = await s.call('GET', '/v1/audit/checkpoints');
      assert.equal(cps.body.items.length, 1);
      assert.match(cps.body.items[0].note, /^warden\.audit\//);
      const proof = await s.call('GET', `/v1/audit/events/${event.id}/proof`);
      assert.equal(proof.status, 200);
      assert.equal(verifyInclusionProof(proof.body as InclusionProof, key.body.public_key), true);
      assert.equal(
        (await s.call('GET', '/v1/audit/events/00000000-0000-7000-8000-000000000000/proof')).status,
        404,
      );
      const report = await verifyLedger(s.warden.store.db, key.body.public_key);
      assert.equal(report.ok, true, JSON.stringify(report.first_problem));
      const doc = (await s.call('GET', '/openapi.json', undefined, null)).body;
      const search = doc.paths['/v1/audit/events'].get;
      assert.deepEqual(search['x-roles'], ['admin', 'security_analyst', 'auditor']);
      assert.ok(search.parameters.some((p: any) => p.name === 'agent_id'));
      assert.equal(doc.paths['/v1/audit/events'].post, undefined, 'no write route');
    });
  });
}
