import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { sql } from 'kysely';
import { readEvents } from '../../src/audit/index.ts';
import { ManualClock } from '../../src/core/index.ts';
import { allMigrations } from '../../src/http/index.ts';
import { Store } from '../../src/store/index.ts';
import { ReplayCache, ReplayClaims, ReplayDetectedError } from '../../src/tokens/index.ts';
import { BACKENDS, freshDatabase } from '../support/databases.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import {
  clientAssertion,
  dpopKeys,
  dpopProof,
  freePort,
  GATEWAY,
  postForm,
  registerAgent,
  startTokenServer,
  type TestAgent,
} from './support.ts';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Sends `n` token requests at once (fresh assertion and DPoP proof each, nonce fetched first). */
async function burst(server: TestServer, agent: TestAgent, n: number) {
  const tokenUrl = `${server.url}/token`;
  const keys = await dpopKeys();
  const form = async () => ({
    grant_type: 'client_credentials',
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: await clientAssertion(agent, server.url),
  });
  const probe = await postForm(tokenUrl, await form(), {
    dpop: await dpopProof(keys, { htm: 'POST', htu: tokenUrl }),
  });
  const nonce = probe.headers.get('dpop-nonce') ?? undefined;
  const requests = await Promise.all(
    Array.from({ length: n }, async () => ({
      form: await form(),
      dpop: await dpopProof(keys, { htm: 'POST', htu: tokenUrl, ...(nonce ? { nonce } : {}) }),
    })),
  );
  const responses = await Promise.all(requests.map((r) => postForm(tokenUrl, r.form, { dpop: r.dpop })));
  return { responses, assertions: requests.map((r) => r.form.client_assertion) };
}

async function issuedRecords(server: TestServer, agentId: string): Promise<number> {
  const row = await server.warden.store.db
    .selectFrom('oauth_access_tokens')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('client_id', '=', agentId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function auditedIssuances(server: TestServer, agentId: string): Promise<string[]> {
  const events = await readEvents(server.warden.store.db, server.warden.auditor.partition, 0, 100_000);
  return events
    .filter((e) => e.type === 'token.issued' && e.actor.id === agentId)
    .map((e) => e.resource?.id as string);
}

for (const backend of BACKENDS) {
  describe(`group-committed token issuance on ${backend}`, async () => {
    const server = await startTokenServer(backend);

    it('issues a concurrent burst of N tokens with N records, N token.issued events and every jti spent', async () => {
      const agent = await registerAgent(server, { scopes: ['a'] });
      const n = 24;
      const { responses, assertions } = await burst(server, agent, n);
      for (const r of responses) assert.equal(r.status, 200, JSON.stringify(r.body));
      const jtis = responses.map((r) => decodeJwt(r.body.access_token as string).jti as string);
      assert.equal(new Set(jtis).size, n);
      assert.equal(await issuedRecords(server, agent.id), n);
      assert.deepEqual((await auditedIssuances(server, agent.id)).sort(), [...jtis].sort());
      // Every assertion of the burst was spent with its token: a replay is refused.
      const replay = await postForm(`${server.url}/token`, {
        grant_type: 'client_credentials',
        client_assertion_type: ASSERTION_TYPE,
        client_assertion: assertions[0] as string,
      });
      assert.equal(replay.status, 401);
      assert.equal(replay.body.error, 'invalid_client');
    });

    it('withholds every token of a group commit that fails, and records none of them', async () => {
      const agent = await registerAgent(server, { scopes: ['a'] });
      const db = server.warden.store.db;
      // The ledger cannot be written: every batch transaction fails at its audit insert.
      await sql`ALTER TABLE audit_events RENAME TO audit_events_away`.execute(db);
      let responses: Awaited<ReturnType<typeof burst>>['responses'];
      try {
        ({ responses } = await burst(server, agent, 12));
      } finally {
        await sql`ALTER TABLE audit_events_away RENAME TO audit_events`.execute(db);
      }
      for (const r of responses) {
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.equal(r.body.error, 'temporarily_unavailable');
        assert.equal(r.body.access_token, undefined);
      }
      assert.equal(await issuedRecords(server, agent.id), 0);
      assert.deepEqual(await auditedIssuances(server, agent.id), []);
      // The ledger is back: issuance works again.
      const again = await burst(server, agent, 2);
      for (const r of again.responses) assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(await issuedRecords(server, agent.id), 2);
    });
  });

  describe(`a client assertion raced on two nodes on ${backend}`, async () => {
    const nodeA = await startTokenServer(backend);
    const nodeB = await startTestServer(backend, {
      databaseUrl: nodeA.warden.config.databaseUrl ?? `sqlite:${nodeA.dataDir}/warden.db`,
      dataDir: nodeA.dataDir,
      env: {
        WARDEN_NODE_ID: 'node-b',
        WARDEN_PORT: String(await freePort()),
        WARDEN_PUBLIC_URL: nodeA.url,
        WARDEN_TOKENS_RESOURCES: GATEWAY,
      },
    });

    it('yields exactly one token and one record however the two requests interleave', async () => {
      const agent = await registerAgent(nodeA, { scopes: ['a'], requireDpop: false });
      for (let round = 0; round < 5; round += 1) {
        const form = {
          grant_type: 'client_credentials',
          client_assertion_type: ASSERTION_TYPE,
          client_assertion: await clientAssertion(agent, nodeA.url),
        };
        const both = await Promise.all([
          postForm(`${nodeA.url}/token`, form),
          postForm(`${nodeB.url}/token`, form),
        ]);
        const ok = both.filter((r) => r.status === 200);
        const refused = both.filter((r) => r.status !== 200);
        assert.equal(ok.length, 1, JSON.stringify(both.map((r) => r.body)));
        assert.equal(refused[0]?.status, 401);
        assert.equal(refused[0]?.body.error, 'invalid_client');
        assert.equal(refused[0]?.body.access_token, undefined);
      }
      assert.equal(await issuedRecords(nodeA, agent.id), 5);
    });
  });

  describe(`reserved single-use ids on ${backend}`, () => {
    it('refuses at commit an id another node won after both reserved it', async () => {
      const { url, dataDir } = await freshDatabase(backend);
      const a = await Store.open({ url, dataDir });
      await a.migrate(allMigrations);
      const b = await Store.open({ url, dataDir });
      try {
        const clock = new ManualClock(Date.now());
        const nodeA = new ReplayCache(a, clock);
        const nodeB = new ReplayCache(b, clock);
        const exp = Math.floor(clock.now() / 1000) + 60;
        const claimsA = new ReplayClaims();
        const claimsB = new ReplayClaims();
        assert.equal(await nodeA.reserve(claimsA, 'client', 'jti-1', exp, 'client_assertion'), true);
        assert.equal(
          await nodeA.reserve(new ReplayClaims(), 'client', 'jti-1', exp, 'client_assertion'),
          false,
          'the same node sees its own reservation',
        );
        // Node B cannot see A's reservation yet: the store decides when they are written.
        assert.equal(await nodeB.reserve(claimsB, 'client', 'jti-1', exp, 'client_assertion'), true);
        await a.transaction((tx) => nodeA.write(tx, claimsA, true));
        await assert.rejects(
          b.transaction((tx) => nodeB.write(tx, claimsB, true)),
          (e: unknown) => e instanceof ReplayDetectedError && e.kind === 'client_assertion',
        );
        // Written ids are refused at reservation from then on, on every node.
        assert.equal(await nodeB.reserve(new ReplayClaims(), 'client', 'jti-1', exp, 'dpop_proof'), false);
        assert.equal(await nodeA.reserve(new ReplayClaims(), 'client', 'jti-1', exp, 'dpop_proof'), false);
        // A refusal's write does not fail on an id someone else holds.
        const late = new ReplayClaims();
        assert.equal(await nodeB.reserve(late, 'client', 'jti-2', exp, 'dpop_proof'), true);
        await nodeA.claim('client', 'jti-2', exp);
        await b.transaction((tx) => nodeB.write(tx, late, false));
        // Issuance loses one id of two: its transaction rolls back, and the refusal that follows
        // spends the id it did win.
        const mixed = new ReplayClaims();
        assert.equal(await nodeB.reserve(mixed, 'client', 'jti-4', exp, 'client_assertion'), true);
        assert.equal(await nodeB.reserve(mixed, 'client', 'jti-5', exp, 'dpop_proof'), true);
        await nodeA.claim('client', 'jti-5', exp);
        await assert.rejects(
          b.transaction((tx) => nodeB.write(tx, mixed, true)),
          (e: unknown) => e instanceof ReplayDetectedError && e.kind === 'dpop_proof',
        );
        assert.equal(mixed.settled, false, 'nothing of a rolled-back write counts as written');
        await b.transaction((tx) => nodeB.write(tx, mixed, false));
        mixed.markSettled();
        assert.equal(await nodeA.claim('client', 'jti-4', exp), false, 'the won id is spent');
        // A rolled-back write frees the id for the next request.
        const rolledBack = new ReplayClaims();
        assert.equal(await nodeA.reserve(rolledBack, 'client', 'jti-3', exp, 'other'), true);
        await assert.rejects(
          a.transaction(async (tx) => {
            await nodeA.write(tx, rolledBack, true);
            throw new Error('the outcome could not be recorded');
          }),
        );
        assert.equal(await nodeB.reserve(new ReplayClaims(), 'client', 'jti-3', exp, 'other'), true);
      } finally {
        await b.close();
        await a.close();
      }
    });

    it('writes reservations no outcome took on their own, and reports a lost one', async () => {
      const { url, dataDir } = await freshDatabase(backend);
      const store = await Store.open({ url, dataDir });
      await store.migrate(allMigrations);
      try {
        const clock = new ManualClock(Date.now());
        const cache = new ReplayCache(store, clock);
        const exp = Math.floor(clock.now() / 1000) + 60;
        const claims = new ReplayClaims();
        assert.equal(await cache.reserve(claims, 'client', 'jti-1', exp, 'dpop_proof'), true);
        assert.equal(claims.settled, false);
        await cache.settle(claims);
        assert.equal(claims.settled, true);
        assert.equal(await cache.claim('client', 'jti-1', exp), false, 'settled ids are spent');
        const lost = new ReplayClaims();
        assert.equal(await cache.reserve(lost, 'client', 'jti-2', exp, 'dpop_proof'), true);
        assert.equal(await cache.claim('client', 'jti-2', exp), true);
        await assert.rejects(
          cache.settle(lost),
          (e: unknown) => e instanceof ReplayDetectedError && e.kind === 'dpop_proof',
        );
      } finally {
        await store.close();
      }
    });
  });
}
