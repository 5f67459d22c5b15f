import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BACKENDS } from '../support/databases.ts';
import { keyPair, templateSpec } from '../support/fixtures.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

async function seed(s: TestServer, suffix = '') {
  const provider = await s.call('POST', '/v1/providers', {
    name: `acme${suffix}`,
    contact: 'security@acme.test',
    jwks: (await keyPair()).jwks,
  });
  assert.equal(provider.status, 201, JSON.stringify(provider.body));
  const template = await s.call('POST', '/v1/templates', { name: `support${suffix}`, spec: templateSpec() });
  assert.equal(template.status, 201, JSON.stringify(template.body));
  return { provider: provider.body, template: template.body };
}

async function createAgent(s: TestServer, name: string, provider = 'acme', template = 'support') {
  const { jwks } = await keyPair();
  return s.call('POST', '/v1/agents', { name, provider, template, purpose: 'answers tickets', jwks });
}

async function auditCount(s: TestServer): Promise<number> {
  const row = await s.warden.store.db
    .selectFrom('audit_events')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirst();
  return Number(row?.n);
}

for (const backend of BACKENDS) {
  describe(`registry admin API on ${backend}`, () => {
    it('registers a provider, a template and an agent, and lists them with cursor paging', async () => {
      const s = await startTestServer(backend);
      await seed(s);
      for (const n of ['a1', 'a2', 'a3']) assert.equal((await createAgent(s, n)).status, 201);
      const page1 = await s.call('GET', '/v1/agents?limit=2');
      assert.equal(page1.status, 200);
      assert.deepEqual(
        page1.body.items.map((a: { name: string }) => a.name),
        ['a1', 'a2'],
      );
      assert.ok(page1.body.next_cursor);
      const page2 = await s.call('GET', `/v1/agents?limit=2&cursor=${page1.body.next_cursor}`);
      assert.deepEqual(
        page2.body.items.map((a: { name: string }) => a.name),
        ['a3'],
      );
      assert.equal(page2.body.next_cursor, null);
      const agent = page1.body.items[0];
      assert.equal(agent.status, 'active');
      assert.equal(agent.template_version, 1);
      assert.equal(agent.risk_tier, 'medium');
      const me = await s.call('GET', '/v1/me');
      assert.equal(agent.owner_id, me.body.user.id, 'the caller owns an agent by default');
    });

    it('records every registry change in the audit ledger', async () => {
      const s = await startTestServer(backend);
      await seed(s);
      const agent = (await createAgent(s, 'bot')).body;
      await s.call('POST', `/v1/agents/${agent.id}/suspend`, { reason: 'investigating' });
      const events = await s.warden.store.db
        .selectFrom('audit_events')
        .select(['type', 'actor_id', 'agent_id'])
        .orderBy('time')
        .execute();
      const types = events.map((e) => e.type);
      for (const t of [
        'user.created',
        'api_token.created',
        'provider.created',
        'template.created',
        'agent.created',
        'agent.suspended',
      ]) {
        assert.ok(types.includes(t), `missing ${t} in ${types.join(',')}`);
      }
      const suspended = events.find((e) => e.type === 'agent.suspended');
      assert.equal(suspended?.agent_id, agent.id);
    });

    it('keeps agents on their template version until moved', async () => {
      const s = await startTestServer(backend);
      await seed(s);
      const agent = (await createAgent(s, 'bot')).body;
      const v2 = await s.call('POST', '/v1/templates/support/versions', {
        spec: templateSpec({ token_lifetime: 600 }),
      });
      assert.equal(v2.status, 201);
      assert.equal(v2.body.latest_version, 2);
      assert.equal((await s.call('GET', `/v1/agents/${agent.id}`)).body.template_version, 1);
      const moved = await s.call('PATCH', `/v1/agents/${agent.id}`, { template_version: 2 });
      assert.equal(moved.body.template_version, 2);
      const versions = await s.call('GET', '/v1/templates/support/versions');
      assert.deepEqual(
        versions.body.items.map((v: { spec: { token_lifetime: number } }) => v.spec.token_lifetime),
        [300, 600],
      );
    });

    it('suspends, resumes and retires an agent; a retired agent cannot be resumed', async () => {
      const s = await startTestServer(backend);
      await seed(s);
      const agent = (await createAgent(s, 'bot')).body;
      assert.equal(
        (await s.call('POST', `/v1/agents/${agent.id}/suspend`, { reason: 'r' })).body.status,
        'suspended',
      );
      assert.equal(
        (await s.call('POST', `/v1/agents/${agent.id}/resume`, { reason: 'r' })).body.status,
        'active',
      );
      assert.equal(
        (await s.call('POST', `/v1/agents/${agent.id}/retire`, { reason: 'r' })).body.status,
        'retired',
      );
      const before = await auditCount(s);
      const resume = await s.call('POST', `/v1/agents/${agent.id}/resume`, { reason: 'undo' });
      assert.equal(resume.status, 409);
      assert.equal(resume.body.code, 'ERR_ILLEGAL_TRANSITION');
      assert.match(resume.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal((await s.call('GET', `/v1/agents/${agent.id}`)).body.status, 'retired');
      assert.equal(await auditCount(s), before, 'a refused move records no change event');
    });

    it('distrusting a provider suspends all its agents at once and announces it to every node', async () => {
      const s = await startTestServer(backend);
      await seed(s);
      const a = (await createAgent(s, 'a')).body;
      const b = (await createAgent(s, 'b')).body;
      const seen: unknown[] = [];
      s.warden.store.changes.subscribe('identity.provider', (c) => seen.push(c.payload));
      const res = await s.call('POST', '/v1/providers/acme/distrust', { reason: 'compromised signing key' });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.suspended.sort(), [a.id, b.id].sort());
      for (const id of [a.id, b.id]) {
        const agent = (await s.call('GET', `/v1/agents/${id}`)).body;
        assert.equal(agent.status, 'suspended');
        assert.match(agent.status_reason, /provider distrusted: compromised signing key/);
      }
      const resume = await s.call('POST', `/v1/agents/${a.id}/resume`, { reason: 'try' });
      assert.equal(resume.body.code, 'ERR_PROVIDER_DISTRUSTED');
      const create = await createAgent(s, 'c');
      assert.equal(create.body.code, 'ERR_PROVIDER_DISTRUSTED');
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal((seen[0] as { status: string }).status, 'distrusted');
    });
  });
}

describe('registry refuses bad input and changes nothing', () => {
  it('refuses malformed JSON', async () => {
    const s = await startTestServer('sqlite');
    const res = await s.call('POST', '/v1/providers', '{"name": "x",');
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'ERR_MALFORMED_JSON');
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(res.body.status, 400);
    assert.ok(res.body.type && res.body.title && res.body.detail);
  });

  it('refuses unknown fields, naming them', async () => {
    const s = await startTestServer('sqlite');
    const res = await s.call('POST', '/v1/templates', { name: 't', spec: templateSpec(), admin: true });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'ERR_VALIDATION');
    assert.ok(res.body['invalid-params'].some((p: { reason: string }) => /admin/.test(p.reason)));
    assert.equal((await s.call('GET', '/v1/templates')).body.items.length, 0);
  });

  it('refuses wrong types', async () => {
    const s = await startTestServer('sqlite');
    const res = await s.call('POST', '/v1/templates', {
      name: 't',
      spec: templateSpec({ token_lifetime: 'long' }),
    });
    assert.equal(res.status, 400);
    assert.ok(
      res.body['invalid-params'].some((p: { name: string }) => p.name === 'body.spec.token_lifetime'),
    );
  });

  it('refuses a token lifetime above one hour', async () => {
    const s = await startTestServer('sqlite');
    const res = await s.call('POST', '/v1/templates', {
      name: 't',
      spec: templateSpec({ token_lifetime: 7200 }),
    });
    assert.equal(res.status, 400);
  });

  it('refuses oversize bodies with 413', async () => {
    const s = await startTestServer('sqlite');
    const res = await s.call('POST', '/v1/providers', {
      name: 'x',
      contact: 'c',
      jwks: { keys: [] },
      pad: 'x'.repeat(2 * 1024 * 1024),
    });
    assert.equal(res.status, 413);
    assert.equal(res.body.code, 'ERR_BODY_TOO_LARGE');
  });

  it('answers 404 problems for unknown ids and names', async () => {
    const s = await startTestServer('sqlite');
    const res = await s.call('GET', '/v1/agents/018f0000-0000-7000-8000-000000000000');
    assert.equal(res.status, 404);
    assert.equal(res.body.code, 'ERR_AGENT_NOT_FOUND');
    const create = await createAgent(s, 'orphan', 'nope', 'nope');
    assert.equal(create.status, 400);
    assert.equal(create.body.code, 'ERR_PROVIDER_NOT_FOUND');
  });

  it('refuses duplicate names with 409 and writes nothing', async () => {
    const s = await startTestServer('sqlite');
    await seed(s);
    assert.equal((await createAgent(s, 'bot')).status, 201);
    const before = await auditCount(s);
    const dup = await createAgent(s, 'bot');
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 'ERR_DUPLICATE_NAME');
    assert.equal(await auditCount(s), before);
    assert.equal((await s.call('GET', '/v1/agents')).body.items.length, 1);
  });

  it('refuses a JWKS with private key members', async () => {
    const s = await startTestServer('sqlite');
    await seed(s);
    const { privateJwk } = await keyPair();
    const res = await s.call('POST', '/v1/agents', {
      name: 'leaky',
      provider: 'acme',
      template: 'support',
      purpose: 'p',
      jwks: { keys: [privateJwk] },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'ERR_INVALID_JWKS');
    assert.match(res.body['invalid-params'][0].reason, /private key members \(d\)/);
    assert.doesNotMatch(
      JSON.stringify(res.body),
      new RegExp(String(privateJwk.d)),
      'the error never echoes the key',
    );
    assert.equal((await s.call('GET', '/v1/agents')).body.items.length, 0);
  });

  it('refuses a symmetric key', async () => {
    const s = await startTestServer('sqlite');
    const res = await s.call('POST', '/v1/providers', {
      name: 'sym',
      contact: 'c',
      jwks: { keys: [{ kty: 'oct', kid: 'k1', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0' }] },
    });
    assert.equal(res.status, 400);
    assert.match(res.body['invalid-params'][0].reason, /symmetric/);
  });

  it('refuses requests without a token, with a bad token and with an expired token', async () => {
    const s = await startTestServer('sqlite');
    const none = await s.call('GET', '/v1/agents', undefined, null);
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'ERR_TOKEN_MISSING');
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    const bad = await s.call('GET', '/v1/agents', undefined, 'wdn_not-a-real-token-at-all-000000000000');
    assert.equal(bad.body.code, 'ERR_TOKEN_INVALID');
    const short = await s.call('POST', '/v1/tokens', { name: 'short', role: 'admin', expires_in: 60 });
    assert.equal(short.status, 201);
    // The server's clock is the real one: make the token expire by moving its expiry into the past.
    await s.warden.store.db
      .updateTable('api_tokens')
      .set({ expires_at: Date.now() - 1 })
      .where('id', '=', short.body.id)
      .execute();
    const expired = await s.call('GET', '/v1/agents', undefined, short.body.token);
    assert.equal(expired.status, 401);
    assert.equal(expired.body.code, 'ERR_TOKEN_EXPIRED');
  });

  it('refuses a revoked token', async () => {
    const s = await startTestServer('sqlite');
    const t = await s.call('POST', '/v1/tokens', { name: 'temp', role: 'admin' });
    assert.equal((await s.call('DELETE', `/v1/tokens/${t.body.id}`)).status, 200);
    const res = await s.call('GET', '/v1/agents', undefined, t.body.token);
    assert.equal(res.body.code, 'ERR_TOKEN_REVOKED');
  });

  it('refuses a forbidden role with 403', async () => {
    const s = await startTestServer('sqlite');
    await s.call('POST', '/v1/users', { username: 'ann', roles: ['auditor'] });
    const ann = (await s.call('GET', '/v1/users/ann')).body;
    const token = await s.call('POST', '/v1/tokens', { name: 'ann', role: 'auditor', user_id: ann.id });
    const res = await s.call(
      'POST',
      '/v1/providers',
      { name: 'x', contact: 'c', jwks: (await keyPair()).jwks },
      token.body.token,
    );
    assert.equal(res.status, 403);
    assert.equal(res.body.code, 'ERR_ROLE_REQUIRED');
    const escalate = await s.call('POST', '/v1/tokens', { name: 'up', role: 'admin' }, token.body.token);
    assert.equal(escalate.status, 403);
    assert.equal(escalate.body.code, 'ERR_ROLE_NOT_HELD');
  });

  it('lets agent owners see and manage only their own agents', async () => {
    const s = await startTestServer('sqlite');
    await seed(s);
    const other = (await createAgent(s, 'admins-bot')).body;
    await s.call('POST', '/v1/users', { username: 'olga', roles: ['agent_owner'] });
    const olga = (await s.call('GET', '/v1/users/olga')).body;
    const tok = (await s.call('POST', '/v1/tokens', { name: 'olga', role: 'agent_owner', user_id: olga.id }))
      .body.token;
    const mine = await s.call(
      'POST',
      '/v1/agents',
      {
        name: 'olgas-bot',
        provider: 'acme',
        template: 'support',
        purpose: 'p',
        jwks: (await keyPair()).jwks,
      },
      tok,
    );
    assert.equal(mine.status, 201);
    assert.equal(mine.body.owner_id, olga.id);
    const list = await s.call('GET', '/v1/agents', undefined, tok);
    assert.deepEqual(
      list.body.items.map((a: { name: string }) => a.name),
      ['olgas-bot'],
    );
    assert.equal((await s.call('GET', `/v1/agents/${other.id}`, undefined, tok)).status, 404);
    assert.equal((await s.call('POST', `/v1/agents/${other.id}/suspend`, { reason: 'x' }, tok)).status, 404);
    const foreignOwner = await s.call(
      'POST',
      '/v1/agents',
      {
        name: 'x',
        provider: 'acme',
        template: 'support',
        purpose: 'p',
        owner: 'admin',
        jwks: (await keyPair()).jwks,
      },
      tok,
    );
    assert.equal(foreignOwner.body.code, 'ERR_OWNER_NOT_SELF');
  });

  it('serves an OpenAPI 3.1 document generated from the validating schemas', async () => {
    const s = await startTestServer('sqlite');
    const doc = (await s.call('GET', '/openapi.json', undefined, null)).body;
    assert.equal(doc.openapi, '3.1.0');
    const create = doc.paths['/v1/agents'].post;
    assert.deepEqual(create['x-roles'], ['admin', 'agent_owner']);
    const schema = create.requestBody.content['application/json'].schema;
    assert.equal(schema.additionalProperties, false);
    assert.ok(schema.required.includes('jwks'));
  });

  it('exposes health, readiness and Prometheus metrics', async () => {
    const s = await startTestServer('sqlite');
    assert.equal((await s.call('GET', '/healthz', undefined, null)).status, 200);
    const ready = await s.call('GET', '/readyz', undefined, null);
    assert.deepEqual(ready.body, { status: 'ready', checks: { database: true } });
    await s.call('GET', '/v1/agents');
    const metrics = await fetch(`${s.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /warden_http_requests_total\{method="GET",route="\/v1\/agents",status="200"\} 1/);
  });
});

describe('password sign-in', () => {
  it('issues a short-lived token for the right password and a role the user holds', async () => {
    const s = await startTestServer('sqlite');
    const res = await s.call(
      'POST',
      '/v1/login',
      { username: 'admin', password: s.adminPassword, role: 'auditor' },
      null,
    );
    assert.equal(res.status, 201);
    assert.equal(res.body.role, 'auditor');
    const me = await s.call('GET', '/v1/me', undefined, res.body.token);
    assert.equal(me.body.role, 'auditor');
  });

  it('refuses a wrong password without saying which part was wrong, records it, and throttles guessing', async () => {
    const s = await startTestServer('sqlite');
    const unknown = await s.call('POST', '/v1/login', { username: 'nobody', password: 'x' }, null);
    const wrong = await s.call('POST', '/v1/login', { username: 'admin', password: 'wrong-password' }, null);
    assert.equal(unknown.status, 401);
    assert.equal(wrong.status, 401);
    assert.equal(unknown.body.detail, wrong.body.detail);
    for (let i = 0; i < 4; i++)
      await s.call('POST', '/v1/login', { username: 'admin', password: 'guess' }, null);
    const throttled = await s.call(
      'POST',
      '/v1/login',
      { username: 'admin', password: s.adminPassword },
      null,
    );
    assert.equal(throttled.status, 429);
    assert.ok(Number(throttled.headers.get('retry-after')) > 0);
    const failures = await s.warden.store.db
      .selectFrom('audit_events')
      .select('id')
      .where('type', '=', 'auth.login_failed')
      .execute();
    assert.ok(failures.length >= 5);
    const bodies = await s.warden.store.db.selectFrom('audit_events').select('body').execute();
    assert.ok(
      !bodies.some((b) => String(b.body).includes('wrong-password')),
      'a password never reaches the ledger',
    );
  });
});
