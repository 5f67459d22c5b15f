import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { type AuditEvent, decodeEventRow } from '../../src/audit/index.ts';
import { generateMasterKey, Keyring, WardenError } from '../../src/core/index.ts';
import type { Store } from '../../src/store/index.ts';
import { rewrapVaultSecrets } from '../../src/vault/index.ts';
import { BACKENDS, freshDatabase } from '../support/databases.ts';
import { ADMIN, newKeyring, nowClock, openNode, type VaultNode } from './harness.ts';
import { startUpstream, type Upstream } from './upstream.ts';

const AGENT = { agentId: 'agent-1', templateId: 'template-1' };
const HOUR = 3600 * 1000;

const sharedKeyring = newKeyring();

// One database per back end for the whole file (creating a PostgreSQL database is slow); each test
// uses its own connection name and audit partition. Created at the top level so the databases live
// until the file ends.
const SHARED = { sqlite: await freshDatabase('sqlite'), postgres: await freshDatabase('postgres') };

async function partitionEvents(store: Store, partition: string, type?: string): Promise<AuditEvent[]> {
  let q = store.db
    .selectFrom('audit_events')
    .select(['body', 'prev_hash', 'hash'])
    .where('partition', '=', partition)
    .orderBy('seq');
  if (type) q = q.where('type', '=', type);
  return (await q.execute()).map((r) =>
    decodeEventRow(r as { body: string; prev_hash: string; hash: string }),
  );
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<WardenError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof WardenError, `expected a WardenError, got ${String(e)}`);
    assert.equal(e.code, code);
    return e;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

/** Every stored byte of the database, as text, for grepping for secrets. */
async function databaseText(node: VaultNode, dataDir: string): Promise<string> {
  if (node.store.dialect === 'sqlite') {
    const base = join(dataDir, 'warden.db');
    return [base, `${base}-wal`]
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f).toString('latin1'))
      .join('\n');
  }
  const tables = (
    await sql<{ tablename: string }>`select tablename from pg_tables where schemaname = 'public'`.execute(
      node.store.db,
    )
  ).rows.map((r) => r.tablename);
  const parts: string[] = [];
  for (const t of tables) {
    const rows = await sql<{ j: string }>`select row_to_json(x)::text as j from ${sql.table(t)} x`.execute(
      node.store.db,
    );
    parts.push(...rows.rows.map((r) => r.j));
  }
  return parts.join('\n');
}

for (const backend of BACKENDS) {
  describe(`vault on ${backend}`, () => {
    let up: Upstream;
    before(async () => {
      up = await startUpstream();
    });
    after(async () => {
      await up.close();
    });

    const shared = SHARED[backend];
    let counter = 0;

    /**
     * A node with its own connection (`name`) on the backend's shared database; tests that need an
     * empty database pass `fresh`. Each node writes its own audit partition, so its events are its own.
     */
    async function setup(options: { accessRule?: Record<string, unknown>; fresh?: boolean } = {}) {
      const db = options.fresh ? await freshDatabase(backend) : shared;
      const keyring = sharedKeyring;
      const clock = nowClock();
      const n = ++counter;
      const nodeId = `node-${n}`;
      const node = await openNode({ ...db, keyring, clock, nodeId });
      after(() => node.close());
      const name = `upstream-${n}`;
      await node.vault.createConnection(
        {
          name,
          issuer: up.issuer,
          clientId: up.clientId,
          clientSecret: up.clientSecret,
          scopes: ['openid', 'offline_access'],
          accessRule: options.accessRule ?? { agents: ['agent-1'] },
        },
        ADMIN,
      );
      const events = (type?: string) => partitionEvents(node.store, nodeId, type);
      return { ...db, keyring, clock, node, name, n, events };
    }

    async function connect(node: VaultNode, name: string, userId: string) {
      const { authorizationUrl } = await node.vault.beginConnect(name, userId, up.redirectUri);
      const url = new URL(authorizationUrl);
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      assert.ok(url.searchParams.get('state'));
      return node.vault.completeConnect(await up.authorize(authorizationUrl));
    }

    const refreshes = () => up.tokenRequests.get('refresh_token') ?? 0;

    it('connects an account, mints a token the upstream API accepts, and serves it from cache', async () => {
      const { node, name, events } = await setup();
      const account = await connect(node, name, 'user-1');
      assert.equal(account.status, 'active');
      assert.equal(account.userId, 'user-1');
      const before = refreshes();
      const first = await node.vault.getCredential({
        ...AGENT,
        userId: 'user-1',
        connectionOrCredentialId: name,
      });
      const res = await fetch(`${up.apiUrl}/me`, { headers: first.headers });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { sub: 'upstream-user-1' });
      const second = await node.vault.getCredential({
        ...AGENT,
        userId: 'user-1',
        connectionOrCredentialId: name,
      });
      assert.deepEqual(second.headers, first.headers);
      assert.equal(refreshes(), before, 'the token from the code exchange is cached: no refresh');
      const used = await events('vault.credential_used');
      assert.equal(used.length, 2);
      assert.equal(used[0]?.actor.id, 'agent-1');
      assert.equal(used[0]?.actor.on_behalf_of?.id, 'user-1');
      const written = await events('vault.secret_written');
      assert.deepEqual(
        written.map((e) => e.resource?.type),
        ['vault_connection', 'vault_account'],
      );
    });

    it('refreshes once for 1,000 concurrent callers after expiry and stores the rotated refresh token', async () => {
      const { node, clock, name, events } = await setup();
      const account = await connect(node, name, 'user-1');
      const old = await node.vault.getCredential({
        ...AGENT,
        userId: 'user-1',
        connectionOrCredentialId: name,
      });
      clock.advance(2 * HOUR);
      const before = refreshes();
      const results = await Promise.all(
        Array.from({ length: 1000 }, () =>
          node.vault.getCredential({ ...AGENT, userId: 'user-1', connectionOrCredentialId: name }),
        ),
      );
      assert.equal(refreshes() - before, 1, 'exactly one upstream refresh');
      const header = results[0]?.headers.authorization;
      assert.ok(results.every((r) => r.headers.authorization === header));
      assert.notEqual(header, old.headers.authorization);
      assert.equal((await fetch(`${up.apiUrl}/me`, { headers: results[0]?.headers })).status, 200);
      // Rotation: the upstream issued a new refresh token, stored as version 2; version 1 is kept.
      const after = await node.vault.getAccount(account.id);
      assert.equal(after.refreshTokenVersion, 2);
      const versions = await node.store.db
        .selectFrom('vault_secret_versions')
        .innerJoin('vault_accounts', 'vault_accounts.refresh_secret_id', 'vault_secret_versions.secret_id')
        .select('version')
        .where('vault_accounts.id', '=', account.id)
        .execute();
      assert.deepEqual(versions.map((v) => Number(v.version)).sort(), [1, 2]);
      const refreshed = await events('vault.token_refreshed');
      assert.equal(refreshed.length, 1);
      assert.equal(refreshed[0]?.details?.rotated, true);
      // The rotated token works: the next expiry refreshes again with version 2.
      clock.advance(2 * HOUR);
      await node.vault.getCredential({ ...AGENT, userId: 'user-1', connectionOrCredentialId: name });
      assert.equal(refreshes() - before, 2);
      assert.equal((await node.vault.getAccount(account.id)).refreshTokenVersion, 3);
    });

    it('refreshes once when two nodes on one database need the token at the same time', async () => {
      const { node, clock, url, dataDir, keyring, name, n } = await setup();
      await connect(node, name, 'user-1');
      const other = await openNode({ url, dataDir, keyring, clock, nodeId: `node-${n}-b` });
      after(() => other.close());
      clock.advance(2 * HOUR);
      const before = refreshes();
      const ask = (n: VaultNode) =>
        n.vault.getCredential({ ...AGENT, userId: 'user-1', connectionOrCredentialId: name });
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => ask(i % 2 === 0 ? node : other)),
      );
      assert.equal(refreshes() - before, 1, 'exactly one upstream refresh across both nodes');
      assert.equal(new Set(results.map((r) => r.headers.authorization)).size, 1);
    });

    it('marks the account broken when the upstream revokes the grant, and tells its user', async () => {
      const { node, clock, name, events } = await setup();
      const account = await connect(node, name, 'user-2');
      await node.vault.getCredential({ ...AGENT, userId: 'user-2', connectionOrCredentialId: name });
      await up.revokeAll();
      clock.advance(2 * HOUR);
      await rejectsWithCode(
        node.vault.getCredential({ ...AGENT, userId: 'user-2', connectionOrCredentialId: name }),
        'ERR_VAULT_ACCOUNT_BROKEN',
      );
      const broken = await node.vault.getAccount(account.id);
      assert.equal(broken.status, 'broken');
      assert.match(broken.brokenReason ?? '', /invalid_grant/);
      assert.deepEqual(
        node.broken.map((b) => [b.accountId, b.userId]),
        [[account.id, 'user-2']],
      );
      const failed = (await events('vault.token_refreshed')).filter((e) => e.outcome === 'failure');
      assert.equal(failed.length, 1);
      assert.equal(failed[0]?.details?.account_status, 'broken');
      assert.equal(failed[0]?.actor.on_behalf_of?.id, 'user-2');
      // A broken account is refused at once, without asking the upstream again.
      const before = refreshes();
      await rejectsWithCode(
        node.vault.getCredential({ ...AGENT, userId: 'user-2', connectionOrCredentialId: name }),
        'ERR_VAULT_ACCOUNT_BROKEN',
      );
      assert.equal(refreshes(), before);
      assert.equal((await events('vault.credential_refused')).length, 2);
      // Reconnecting makes it usable again.
      const again = await connect(node, name, 'user-2');
      assert.equal(again.id, account.id);
      assert.equal(again.status, 'active');
      const minted = await node.vault.getCredential({
        ...AGENT,
        userId: 'user-2',
        connectionOrCredentialId: name,
      });
      assert.equal((await fetch(`${up.apiUrl}/me`, { headers: minted.headers })).status, 200);
    });

    it('accepts explicit endpoints instead of discovery, and refuses plain http to a remote host', async () => {
      const { node, n } = await setup();
      const explicit = await node.vault.createConnection(
        {
          name: `explicit-${n}`,
          issuer: up.issuer,
          authorizationEndpoint: `${up.issuer}/auth`,
          tokenEndpoint: `${up.issuer}/token`,
          clientId: up.clientId,
          clientSecret: up.clientSecret,
          scopes: ['openid', 'offline_access'],
          accessRule: { agents: ['agent-1'] },
        },
        ADMIN,
      );
      assert.equal(explicit.tokenEndpoint, `${up.issuer}/token`);
      const account = await connect(node, explicit.name, 'user-1');
      assert.equal(account.status, 'active');
      const minted = await node.vault.getCredential({
        ...AGENT,
        userId: 'user-1',
        connectionOrCredentialId: explicit.name,
      });
      assert.equal((await fetch(`${up.apiUrl}/me`, { headers: minted.headers })).status, 200);
      const strict = await openNode({
        ...shared,
        keyring: sharedKeyring,
        clock: nowClock(),
        nodeId: `node-${n}-strict`,
        settings: { allowHttp: false },
      });
      after(() => strict.close());
      await rejectsWithCode(
        strict.vault.createConnection(
          {
            name: `remote-${n}`,
            authorizationEndpoint: 'http://auth.example.com/authorize',
            tokenEndpoint: 'http://auth.example.com/token',
            clientId: 'c',
            clientSecret: 's',
            accessRule: {},
          },
          ADMIN,
        ),
        'ERR_INVALID_REQUEST',
      );
    });

    it('uses a connect state once, and not after it expired', async () => {
      const { node, clock, name } = await setup();
      const { authorizationUrl } = await node.vault.beginConnect(name, 'user-3', up.redirectUri);
      const callback = await up.authorize(authorizationUrl);
      await node.vault.completeConnect(callback);
      await rejectsWithCode(node.vault.completeConnect(callback), 'ERR_VAULT_CONNECT_STATE');
      const second = await node.vault.beginConnect(name, 'user-3', up.redirectUri);
      const callback2 = await up.authorize(second.authorizationUrl);
      clock.advance(11 * 60 * 1000);
      await rejectsWithCode(node.vault.completeConnect(callback2), 'ERR_VAULT_CONNECT_EXPIRED');
      await rejectsWithCode(node.vault.completeConnect('code=x&state=forged'), 'ERR_VAULT_CONNECT_STATE');
    });

    it('injects service credentials and writes a new version on every put', async () => {
      const { node, n, events } = await setup();
      const rule = { agents: ['agent-1'], onBehalfOf: 'any' as const };
      await node.vault.putCredential(
        { kind: 'api_key', name: `c${n}-weather`, value: 'wk-first-0001', accessRule: rule },
        ADMIN,
      );
      const v2 = await node.vault.putCredential(
        {
          kind: 'api_key',
          name: `c${n}-weather`,
          value: 'wk-second-0002',
          headerName: 'X-Weather-Key',
          accessRule: rule,
        },
        ADMIN,
      );
      assert.equal(v2.secretVersion, 2);
      assert.deepEqual(
        (await node.vault.getCredential({ ...AGENT, connectionOrCredentialId: `c${n}-weather` })).headers,
        {
          'x-weather-key': 'wk-second-0002',
        },
      );
      await node.vault.putCredential(
        { kind: 'bearer', name: `c${n}-crm`, value: 'crm-token-abc', accessRule: rule },
        ADMIN,
      );
      assert.deepEqual(
        (await node.vault.getCredential({ ...AGENT, connectionOrCredentialId: `c${n}-crm` })).headers,
        {
          authorization: 'Bearer crm-token-abc',
        },
      );
      await node.vault.putCredential(
        {
          kind: 'basic',
          name: `c${n}-legacy`,
          username: 'svc',
          password: 'p@ss:word',
          accessRule: rule,
        },
        ADMIN,
      );
      assert.deepEqual(
        (await node.vault.getCredential({ ...AGENT, connectionOrCredentialId: `c${n}-legacy` })).headers,
        {
          authorization: `Basic ${Buffer.from('svc:p@ss:word').toString('base64')}`,
        },
      );
      const versions = await node.store.db
        .selectFrom('vault_secret_versions')
        .select('version')
        .where(
          'secret_id',
          '=',
          (
            await node.store.db
              .selectFrom('vault_credentials')
              .select('secret_id')
              .where('name', '=', `c${n}-weather`)
              .executeTakeFirstOrThrow()
          ).secret_id,
        )
        .execute();
      assert.equal(versions.length, 2, 'old versions are kept');
      // Write-only: nothing the API returns carries a secret.
      const shown = JSON.stringify([await node.vault.listCredentials(), await node.vault.listConnections()]);
      for (const secret of [
        'wk-first-0001',
        'wk-second-0002',
        'crm-token-abc',
        'p@ss:word',
        up.clientSecret,
      ]) {
        assert.ok(!shown.includes(secret));
      }
      await node.vault.deleteCredential(`c${n}-crm`, ADMIN);
      await rejectsWithCode(
        node.vault.getCredential({ ...AGENT, connectionOrCredentialId: `c${n}-crm` }),
        'ERR_VAULT_CREDENTIAL_NOT_FOUND',
      );
      assert.equal((await events('vault.secret_deleted')).length, 1);
    });

    it('refuses agents, templates and users the access rule does not name, and audits each refusal', async () => {
      const { node, name, n, events } = await setup({ accessRule: { templates: ['template-ok'] } });
      await connect(node, name, 'user-4');
      const ask = (r: { agentId: string; templateId: string; userId?: string }, ref = name) =>
        node.vault.getCredential({ ...r, connectionOrCredentialId: ref });
      await rejectsWithCode(
        ask({ agentId: 'a', templateId: 'template-other', userId: 'user-4' }),
        'ERR_VAULT_ACCESS_DENIED',
      );
      await rejectsWithCode(ask({ agentId: 'a', templateId: 'template-ok' }), 'ERR_VAULT_ACCESS_DENIED');
      await rejectsWithCode(
        ask({ agentId: 'a', templateId: 'template-ok', userId: 'user-5' }),
        'ERR_VAULT_NOT_CONNECTED',
      );
      assert.ok(
        (await ask({ agentId: 'a', templateId: 'template-ok', userId: 'user-4' })).headers.authorization,
      );

      await node.vault.putCredential(
        {
          kind: 'bearer',
          name: `c${n}-mine`,
          value: 'mine-secret-1',
          ownerUserId: 'user-4',
          accessRule: { agents: ['a'] },
        },
        ADMIN,
      );
      await node.vault.putCredential(
        {
          kind: 'bearer',
          name: `c${n}-named`,
          value: 'named-secret-1',
          accessRule: { agents: ['a'], onBehalfOf: { userId: 'user-9' } },
        },
        ADMIN,
      );
      await rejectsWithCode(
        ask({ agentId: 'a', templateId: 't', userId: 'user-5' }, `c${n}-mine`),
        'ERR_VAULT_ACCESS_DENIED',
      );
      assert.ok(
        (await ask({ agentId: 'a', templateId: 't', userId: 'user-4' }, `c${n}-mine`)).headers.authorization,
      );
      await rejectsWithCode(
        ask({ agentId: 'a', templateId: 't', userId: 'user-4' }, `c${n}-named`),
        'ERR_VAULT_ACCESS_DENIED',
      );
      assert.ok(
        (await ask({ agentId: 'a', templateId: 't', userId: 'user-9' }, `c${n}-named`)).headers.authorization,
      );
      await rejectsWithCode(
        ask({ agentId: 'b', templateId: 't', userId: 'user-9' }, `c${n}-named`),
        'ERR_VAULT_ACCESS_DENIED',
      );

      const refused = await events('vault.credential_refused');
      assert.equal(refused.length, 6);
      assert.ok(refused.every((e) => e.outcome === 'denied' && e.decision?.effect === 'deny'));
    });

    it('keeps no plaintext secret in the database, the logs or the audit events', async () => {
      const { node, clock, keyring, dataDir, name, n, events } = await setup();
      await connect(node, name, 'user-1');
      await node.vault.getCredential({ ...AGENT, userId: 'user-1', connectionOrCredentialId: name });
      clock.advance(2 * HOUR);
      await node.vault.getCredential({ ...AGENT, userId: 'user-1', connectionOrCredentialId: name });
      await node.vault.putCredential(
        {
          kind: 'api_key',
          name: `c${n}-k`,
          value: 'sk-live-VERYSECRETvalue123',
          accessRule: { agents: ['agent-1'], onBehalfOf: 'any' },
        },
        ADMIN,
      );
      await node.vault.getCredential({ ...AGENT, connectionOrCredentialId: `c${n}-k` });
      // The known secrets: client secret, every refresh token version, every access token, the key.
      const rows = await node.store.db
        .selectFrom('vault_secret_versions')
        .select(['secret_id', 'version', 'sealed'])
        .execute();
      const opened = rows.map((r) =>
        keyring.openText(r.sealed as string, `vault.secret:${r.secret_id}:${r.version}`),
      );
      const tokens = await node.store.db
        .selectFrom('vault_token_cache')
        .select(['account_id', 'generation', 'sealed'])
        .execute();
      const accessTokens = tokens.map((t) =>
        keyring.openText(t.sealed as string, `vault.access_token:${t.account_id}:${t.generation}`),
      );
      const secrets = [
        up.clientSecret,
        'sk-live-VERYSECRETvalue123',
        ...opened.filter((s) => !s.startsWith('{')),
        ...accessTokens,
      ];
      assert.ok(secrets.length >= 5, `collected ${secrets.length} known secrets`);
      const stored = await databaseText(node, dataDir);
      assert.ok(stored.includes('vault_secret_versions') || stored.includes('wdn1.'), 'the dump has content');
      const logs = node.logs.join('\n');
      assert.ok(logs.length > 0);
      const audit = JSON.stringify(await events());
      for (const secret of secrets) {
        assert.ok(!stored.includes(secret), 'a secret is in the database in plaintext');
        assert.ok(!logs.includes(secret), 'a secret is in the logs');
        assert.ok(!audit.includes(secret), 'a secret is in an audit event');
      }
    });

    it('detects a tampered ciphertext and one moved to another row', async () => {
      const { node, n, events } = await setup();
      const rule = { agents: ['agent-1'], onBehalfOf: 'any' as const };
      await node.vault.putCredential(
        { kind: 'bearer', name: `c${n}-a`, value: 'value-of-a-123', accessRule: rule },
        ADMIN,
      );
      await node.vault.putCredential(
        { kind: 'bearer', name: `c${n}-b`, value: 'value-of-b-456', accessRule: rule },
        ADMIN,
      );
      const idOf = async (name: string) =>
        (
          await node.store.db
            .selectFrom('vault_credentials')
            .select('secret_id')
            .where('name', '=', name)
            .executeTakeFirstOrThrow()
        ).secret_id as string;
      const sealedOf = async (secretId: string) =>
        (
          await node.store.db
            .selectFrom('vault_secret_versions')
            .select('sealed')
            .where('secret_id', '=', secretId)
            .executeTakeFirstOrThrow()
        ).sealed as string;
      const [a, b] = [await idOf(`c${n}-a`), await idOf(`c${n}-b`)];
      // Copy a's ciphertext into b's row: it is bound to a's id and version, so it does not open.
      await node.store.db
        .updateTable('vault_secret_versions')
        .set({ sealed: await sealedOf(a) })
        .where('secret_id', '=', b)
        .execute();
      await rejectsWithCode(
        node.vault.getCredential({ ...AGENT, connectionOrCredentialId: `c${n}-b` }),
        'ERR_SEALED_VALUE',
      );
      // Flip one character of a's ciphertext.
      const sealed = await sealedOf(a);
      const i = sealed.length - 5;
      const tampered = sealed.slice(0, i) + (sealed[i] === 'A' ? 'B' : 'A') + sealed.slice(i + 1);
      await node.store.db
        .updateTable('vault_secret_versions')
        .set({ sealed: tampered })
        .where('secret_id', '=', a)
        .execute();
      await rejectsWithCode(
        node.vault.getCredential({ ...AGENT, connectionOrCredentialId: `c${n}-a` }),
        'ERR_SEALED_VALUE',
      );
      const refused = await events('vault.credential_refused');
      assert.deepEqual(
        refused.map((e) => [e.error_code, e.outcome]),
        [
          ['ERR_SEALED_VALUE', 'failure'],
          ['ERR_SEALED_VALUE', 'failure'],
        ],
      );
    });

    it('re-wraps every sealed value under a new master key and old data stays readable', async () => {
      const { node, clock, keyring, url, dataDir, name, n } = await setup({ fresh: true });
      await connect(node, name, 'user-1');
      const before = await node.vault.getCredential({
        ...AGENT,
        userId: 'user-1',
        connectionOrCredentialId: name,
      });
      await node.vault.putCredential(
        {
          kind: 'bearer',
          name: `c${n}-svc`,
          value: 'svc-secret-789',
          accessRule: { agents: ['agent-1'], onBehalfOf: 'any' },
        },
        ADMIN,
      );
      await node.vault.putCredential(
        {
          kind: 'bearer',
          name: `c${n}-svc`,
          value: 'svc-secret-790',
          accessRule: { agents: ['agent-1'], onBehalfOf: 'any' },
        },
        ADMIN,
      );
      const pending = await node.vault.beginConnect(name, 'user-7', up.redirectUri);
      const fresh = generateMasterKey().key;
      const rotating = new Keyring(fresh, [keyring.current]);
      const result = await node.store.transaction((tx) => rewrapVaultSecrets(tx, rotating));
      // client secret, refresh token, 2 credential versions, cached access token, pending connect
      assert.equal(result.examined, 6);
      assert.equal(result.rewrapped, 6);
      const sealed = [
        ...(await node.store.db.selectFrom('vault_secret_versions').select('sealed').execute()),
        ...(await node.store.db.selectFrom('vault_token_cache').select('sealed').execute()),
        ...(await node.store.db.selectFrom('vault_pending_connects').select('sealed').execute()),
      ];
      assert.ok(sealed.every((r) => rotating.kidOf(r.sealed as string) === fresh.kid));
      assert.deepEqual(await node.store.transaction((tx) => rewrapVaultSecrets(tx, rotating)), {
        examined: 6,
        rewrapped: 0,
      });
      // A node holding only the new key reads everything: cached token, credential, refresh token, pending connect.
      const only = await openNode({
        url,
        dataDir,
        keyring: new Keyring(fresh),
        clock,
        nodeId: `node-${n}-new`,
      });
      after(() => only.close());
      assert.deepEqual(
        (await only.vault.getCredential({ ...AGENT, userId: 'user-1', connectionOrCredentialId: name }))
          .headers,
        before.headers,
      );
      assert.deepEqual(
        (await only.vault.getCredential({ ...AGENT, connectionOrCredentialId: `c${n}-svc` })).headers,
        {
          authorization: 'Bearer svc-secret-790',
        },
      );
      const version1 = await node.store.db
        .selectFrom('vault_secret_versions')
        .innerJoin('vault_credentials', 'vault_credentials.secret_id', 'vault_secret_versions.secret_id')
        .select(['vault_secret_versions.secret_id as id', 'sealed'])
        .where('version', '=', 1)
        .executeTakeFirstOrThrow();
      assert.equal(
        new Keyring(fresh).openText(version1.sealed as string, `vault.secret:${version1.id}:1`),
        JSON.stringify({ value: 'svc-secret-789' }),
      );
      const account = await only.vault.completeConnect(await up.authorize(pending.authorizationUrl));
      assert.equal(account.userId, 'user-7');
      clock.advance(2 * HOUR);
      const refreshed = await only.vault.getCredential({
        ...AGENT,
        userId: 'user-1',
        connectionOrCredentialId: name,
      });
      assert.equal((await fetch(`${up.apiUrl}/me`, { headers: refreshed.headers })).status, 200);
    });
  });
}
