import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { AuditActor, AuditEventInput, Auditor } from '../audit/index.ts';
import {
  type Clock,
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  isUuid,
  type Keyring,
  type Logger,
  NotFoundError,
  UnavailableError,
  uuidv7,
  WardenError,
} from '../core/index.ts';
import type { Change, Store } from '../store/index.ts';
import { type AccessRule, type CredentialRequester, checkAccessRule } from './access-rule.ts';
import { releaseLease, tryAcquireLease } from './lease.ts';
import {
  type ConnectionInput,
  type ConnectionPatch,
  type CredentialInput,
  connectionInputSchema,
  connectionPatchSchema,
  credentialInputSchema,
  parseInput,
} from './schemas.ts';
import { deleteSecret, readSecretVersion, writeSecretVersion } from './secret-versions.ts';
import {
  authorizationUrl,
  type ClientAuthMethod,
  discoverUpstream,
  newPkce,
  redeemCode,
  refreshAtUpstream,
  UpstreamGrantError,
  type UpstreamHttpOptions,
  type UpstreamMetadata,
  type UpstreamTokens,
} from './upstream.ts';

/** Tunables, validated when the vault is created. */
export const vaultSettingsSchema = z
  .object({
    /** Refresh a cached upstream token this long before it expires. */
    refreshSkewSeconds: z.number().int().min(0).max(3600).default(60),
    /** Lifetime assumed when an upstream omits `expires_in`. */
    defaultTokenLifetimeSeconds: z.number().int().min(1).max(86_400).default(300),
    /** How long a started connect (state + PKCE verifier) stays usable. */
    connectTtlSeconds: z.number().int().min(30).max(3600).default(600),
    /** The cross-node refresh lease; longer than the upstream timeout, so it never lapses mid-refresh. */
    leaseTtlMs: z.number().int().min(1000).max(300_000).default(30_000),
    /** How long a caller waits for another node's refresh before giving up. */
    leaseWaitMs: z.number().int().min(100).max(300_000).default(20_000),
    /** How often a waiting caller looks for the other node's result. */
    leasePollMs: z.number().int().min(1).max(5000).default(25),
    upstreamTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    /** Allow `http://` upstreams and redirect URIs (local development and tests only). */
    allowHttp: z.boolean().default(false),
    /** This node's name, part of lease holder ids. */
    nodeId: z.string().min(1).max(200).default('node'),
  })
  .strict();

export type VaultSettings = z.input<typeof vaultSettingsSchema>;

/** What the vault tells whoever notifies users when a connected account stops working. */
export interface AccountBrokenNotice {
  accountId: string;
  connectionId: string;
  connectionName: string;
  userId: string;
  reason: string;
}

export interface VaultOptions {
  store: Store;
  keyring: Keyring;
  auditor: Auditor;
  clock: Clock;
  logger: Logger;
  settings?: VaultSettings;
  /** Called after a connected account was marked broken, to tell its user to reconnect. */
  onAccountBroken?: (notice: AccountBrokenNotice) => void | Promise<void>;
}

/** A connection as the API shows it: never its client secret. */
export interface ConnectionView {
  id: string;
  name: string;
  issuer: string | null;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  clientId: string;
  clientAuthMethod: ClientAuthMethod;
  clientSecretVersion: number;
  scopes: string[];
  accessRule: AccessRule;
  /** Exchange mode allowed (agents may receive the upstream access token itself). */
  allowExchange: boolean;
  createdAt: number;
  updatedAt: number;
}

/** A connected account as the API shows it: never its tokens. */
export interface AccountView {
  id: string;
  connectionId: string;
  userId: string;
  status: 'active' | 'broken';
  scope: string | null;
  refreshTokenVersion: number;
  brokenReason: string | null;
  brokenAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** A service credential as the API shows it: never its value. */
export interface CredentialView {
  id: string;
  name: string;
  kind: 'api_key' | 'bearer' | 'basic';
  headerName: string | null;
  ownerUserId: string | null;
  secretVersion: number;
  accessRule: AccessRule;
  createdAt: number;
  updatedAt: number;
}

/** What the gateway injects into the upstream request. */
export interface MintedCredential {
  /** Header name (lower case) → value. */
  headers: Record<string, string>;
  /** When an OAuth access token stops being valid (epoch ms); absent for static credentials. */
  expiresAt?: number;
}

/** A mint request: who asks, for whom, and which connection or credential (id or name). */
export interface CredentialRequest extends CredentialRequester {
  connectionOrCredentialId: string;
  /** Ties the audit events to the gateway request. */
  requestId?: string | undefined;
}

interface ConnectionRow {
  id: string;
  name: string;
  issuer: string | null;
  metadata: string;
  client_id: string;
  client_auth_method: ClientAuthMethod;
  client_secret_id: string;
  client_secret_version: number;
  scopes: string;
  access_rule: string;
  allow_exchange: number;
  created_at: number;
  updated_at: number;
}

interface AccountRow {
  id: string;
  connection_id: string;
  user_id: string;
  status: 'active' | 'broken';
  refresh_secret_id: string;
  refresh_secret_version: number;
  scope: string | null;
  broken_reason: string | null;
  broken_at: number | null;
  created_at: number;
  updated_at: number;
}

interface CredentialRow {
  id: string;
  name: string;
  kind: 'api_key' | 'bearer' | 'basic';
  header_name: string | null;
  owner_user_id: string | null;
  secret_id: string;
  secret_version: number;
  access_rule: string;
  created_at: number;
  updated_at: number;
}

interface TokenEntry {
  sealed: string;
  generation: number;
  expiresAt: number;
}

const CHANGE_CHANNEL = 'vault.changed';
const SYSTEM: AuditActor = { type: 'system', id: 'vault' };

function tokenContext(accountId: string, generation: number): string {
  return `vault.access_token:${accountId}:${generation}`;
}

function connectContext(stateHash: string): string {
  return `vault.connect:${stateHash}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** True for https URLs, and for http URLs whose host is a loopback address. */
function isLoopbackHttpOrHttps(url: string): boolean {
  const u = new URL(url);
  if (u.protocol === 'https:') return true;
  return u.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
}

function num(v: unknown): number {
  return Number(v);
}

function connectionView(row: ConnectionRow): ConnectionView {
  const meta = JSON.parse(row.metadata) as UpstreamMetadata;
  return {
    id: row.id,
    name: row.name,
    issuer: row.issuer,
    authorizationEndpoint: meta.authorization_endpoint,
    tokenEndpoint: meta.token_endpoint,
    clientId: row.client_id,
    clientAuthMethod: row.client_auth_method,
    clientSecretVersion: num(row.client_secret_version),
    scopes: JSON.parse(row.scopes) as string[],
    accessRule: JSON.parse(row.access_rule) as AccessRule,
    allowExchange: num(row.allow_exchange) === 1,
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

function accountView(row: AccountRow): AccountView {
  return {
    id: row.id,
    connectionId: row.connection_id,
    userId: row.user_id,
    status: row.status,
    scope: row.scope,
    refreshTokenVersion: num(row.refresh_secret_version),
    brokenReason: row.broken_reason,
    brokenAt: row.broken_at === null ? null : num(row.broken_at),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

function credentialView(row: CredentialRow): CredentialView {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    headerName: row.header_name,
    ownerUserId: row.owner_user_id,
    secretVersion: num(row.secret_version),
    accessRule: JSON.parse(row.access_rule) as AccessRule,
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

/**
 * The token vault. Stores upstream OAuth connections, users' connected accounts (refresh tokens)
 * and service credentials, every secret sealed with its own data key and versioned; mints the
 * headers the gateway injects, after checking each secret's access rule. Secrets go in through
 * this API and come out only through {@link Vault.getCredential}, as request headers.
 */
export class Vault {
  readonly #store: Store;
  readonly #db: Kysely<any>;
  readonly #keyring: Keyring;
  readonly #auditor: Auditor;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #settings: z.output<typeof vaultSettingsSchema>;
  readonly #onAccountBroken: VaultOptions['onAccountBroken'];
  readonly #unsubscribe: () => void;
  /** Metadata rows by id or name; dropped whenever any node changes vault metadata. */
  readonly #connections = new Map<string, ConnectionRow>();
  readonly #credentials = new Map<string, CredentialRow>();
  readonly #accounts = new Map<string, AccountRow>();
  /** Minted access tokens, sealed, by account id. */
  readonly #tokens = new Map<string, TokenEntry>();
  /** One refresh at a time per account in this process. */
  readonly #inflight = new Map<string, Promise<TokenEntry>>();

  constructor(options: VaultOptions) {
    this.#store = options.store;
    this.#db = options.store.db;
    this.#keyring = options.keyring;
    this.#auditor = options.auditor;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#settings = parseInput(vaultSettingsSchema, options.settings ?? {}, 'vault');
    this.#onAccountBroken = options.onAccountBroken;
    this.#unsubscribe = options.store.changes.subscribe(CHANGE_CHANNEL, (change) => this.#onChange(change));
  }

  /** Stops listening for changes from other nodes. */
  close(): void {
    this.#unsubscribe();
  }

  #onChange(change: Change): void {
    this.#forget(change.payload.accountIds as string[] | undefined);
  }

  #forget(accountIds?: string[]): void {
    this.#connections.clear();
    this.#credentials.clear();
    this.#accounts.clear();
    if (accountIds) for (const id of accountIds) this.#tokens.delete(id);
    else this.#tokens.clear();
  }

  async #publish(tx: Kysely<any>, accountIds?: string[]): Promise<void> {
    await this.#store.changes.publish(CHANGE_CHANNEL, accountIds ? { accountIds } : {}, tx);
  }

  // ---------------------------------------------------------------- connections

  /** Creates a connection; discovers the endpoints from `issuer` unless they are given. */
  async createConnection(input: ConnectionInput, actor: AuditActor): Promise<ConnectionView> {
    const v = parseInput(connectionInputSchema, input);
    this.#checkUrl(v.issuer, 'body.issuer');
    this.#checkUrl(v.authorizationEndpoint, 'body.authorizationEndpoint');
    this.#checkUrl(v.tokenEndpoint, 'body.tokenEndpoint');
    const meta: UpstreamMetadata =
      v.authorizationEndpoint && v.tokenEndpoint
        ? {
            issuer: v.issuer ?? new URL(v.authorizationEndpoint).origin,
            authorization_endpoint: v.authorizationEndpoint,
            token_endpoint: v.tokenEndpoint,
            revocation_endpoint: v.revocationEndpoint,
          }
        : await discoverUpstream(v.issuer as string, this.#httpFor(v.issuer as string));
    this.#checkUrl(meta.authorization_endpoint, 'authorization_endpoint');
    this.#checkUrl(meta.token_endpoint, 'token_endpoint');
    const now = this.#clock.now();
    const id = uuidv7(this.#clock);
    const secretId = uuidv7(this.#clock);
    const row = await this.#auditor.transact(
      async (tx) => {
        await this.#assertNameFree(tx, v.name);
        const version = await writeSecretVersion(tx, this.#keyring, secretId, v.clientSecret, now);
        const r: ConnectionRow = {
          id,
          name: v.name,
          issuer: v.issuer ?? null,
          metadata: JSON.stringify(meta),
          client_id: v.clientId,
          client_auth_method: v.clientAuthMethod,
          client_secret_id: secretId,
          client_secret_version: version,
          scopes: JSON.stringify(v.scopes),
          access_rule: JSON.stringify(v.accessRule),
          allow_exchange: v.allowExchange ? 1 : 0,
          created_at: now,
          updated_at: now,
        };
        await tx.insertInto('vault_connections').values(r).execute();
        await this.#publish(tx);
        return r;
      },
      (r) =>
        this.#writtenEvent(actor, 'vault.connections.create', 'vault_connection', r.id, r.name, {
          secret_id: r.client_secret_id,
          secret_version: r.client_secret_version,
        }),
    );
    this.#forget([]);
    return connectionView(row);
  }

  /** Changes a connection's scopes or access rule, or writes a new version of its client secret. */
  async updateConnection(ref: string, patch: ConnectionPatch, actor: AuditActor): Promise<ConnectionView> {
    const p = parseInput(connectionPatchSchema, patch);
    const now = this.#clock.now();
    const row = await this.#auditor.transact(
      async (tx) => {
        const current = await this.#loadConnection(tx, ref);
        const next: ConnectionRow = { ...current, updated_at: now };
        if (p.clientSecret !== undefined) {
          next.client_secret_version = await writeSecretVersion(
            tx,
            this.#keyring,
            current.client_secret_id,
            p.clientSecret,
            now,
          );
        }
        if (p.scopes !== undefined) next.scopes = JSON.stringify(p.scopes);
        if (p.accessRule !== undefined) next.access_rule = JSON.stringify(p.accessRule);
        if (p.allowExchange !== undefined) next.allow_exchange = p.allowExchange ? 1 : 0;
        await tx
          .updateTable('vault_connections')
          .set({
            client_secret_version: next.client_secret_version,
            scopes: next.scopes,
            access_rule: next.access_rule,
            allow_exchange: next.allow_exchange,
            updated_at: now,
          })
          .where('id', '=', current.id)
          .execute();
        await this.#publish(tx);
        return next;
      },
      (r) =>
        this.#writtenEvent(actor, 'vault.connections.update', 'vault_connection', r.id, r.name, {
          secret_id: r.client_secret_id,
          secret_version: r.client_secret_version,
          changed: Object.keys(p),
        }),
    );
    this.#forget([]);
    return connectionView(row);
  }

  /** Deletes a connection, its connected accounts and every version of their secrets. */
  async deleteConnection(ref: string, actor: AuditActor): Promise<void> {
    await this.#auditor.transact(
      async (tx) => {
        const conn = await this.#loadConnection(tx, ref);
        const accounts = (await tx
          .selectFrom('vault_accounts')
          .selectAll()
          .where('connection_id', '=', conn.id)
          .execute()) as AccountRow[];
        for (const a of accounts) await deleteSecret(tx, a.refresh_secret_id);
        await tx.deleteFrom('vault_pending_connects').where('connection_id', '=', conn.id).execute();
        await tx
          .deleteFrom('vault_token_cache')
          .where(
            'account_id',
            'in',
            tx.selectFrom('vault_accounts').select('id').where('connection_id', '=', conn.id),
          )
          .execute();
        await tx.deleteFrom('vault_accounts').where('connection_id', '=', conn.id).execute();
        await tx.deleteFrom('vault_connections').where('id', '=', conn.id).execute();
        await deleteSecret(tx, conn.client_secret_id);
        await this.#publish(
          tx,
          accounts.map((a) => a.id),
        );
        return { conn, accounts: accounts.length };
      },
      ({ conn, accounts }) => ({
        type: 'vault.secret_deleted',
        actor,
        action: 'vault.connections.delete',
        resource: { type: 'vault_connection', id: conn.id, name: conn.name },
        outcome: 'success',
        details: { secret_id: conn.client_secret_id, connected_accounts_deleted: accounts },
      }),
    );
    this.#forget();
  }

  /** One connection, by id or name. @throws NotFoundError */
  async getConnection(ref: string): Promise<ConnectionView> {
    return connectionView(await this.#loadConnection(this.#db, ref));
  }

  /** Every connection, by name. */
  async listConnections(): Promise<ConnectionView[]> {
    const rows = (await this.#db
      .selectFrom('vault_connections')
      .selectAll()
      .orderBy('name')
      .execute()) as ConnectionRow[];
    return rows.map(connectionView);
  }

  // ---------------------------------------------------------------- connected accounts

  /**
   * Starts connecting `userId`'s account on a connection: returns the upstream authorization URL
   * (code flow, PKCE S256, `state`). The state and verifier stay in the store, sealed, usable once
   * and only for `connectTtlSeconds`.
   */
  async beginConnect(
    connectionRef: string,
    userId: string,
    redirectUri: string,
  ): Promise<{ authorizationUrl: string; expiresAt: number }> {
    const { userId: uid, redirectUri: redirect } = parseInput(
      z.object({ userId: z.string().min(1).max(200), redirectUri: z.url({ protocol: /^https?$/ }) }),
      { userId, redirectUri },
    );
    this.#checkUrl(redirect, 'body.redirectUri');
    const conn = await this.#loadConnection(this.#db, connectionRef);
    const meta = JSON.parse(conn.metadata) as UpstreamMetadata;
    if (meta.code_challenge_methods_supported && !meta.code_challenge_methods_supported.includes('S256')) {
      throw new ConflictError(`connection ${conn.name}: the upstream does not support PKCE S256`, {
        code: 'ERR_VAULT_PKCE_UNSUPPORTED',
      });
    }
    const { state, codeVerifier } = newPkce();
    const stateHash = sha256(state);
    const url = await authorizationUrl(
      meta,
      conn.client_id,
      redirect,
      JSON.parse(conn.scopes) as string[],
      state,
      codeVerifier,
    );
    const now = this.#clock.now();
    const expiresAt = now + this.#settings.connectTtlSeconds * 1000;
    await this.#store.transaction(async (tx) => {
      await tx.deleteFrom('vault_pending_connects').where('expires_at', '<=', now).execute();
      await tx
        .insertInto('vault_pending_connects')
        .values({
          state_hash: stateHash,
          connection_id: conn.id,
          user_id: uid,
          redirect_uri: redirect,
          sealed: this.#keyring.seal(JSON.stringify({ codeVerifier }), connectContext(stateHash)),
          expires_at: expiresAt,
        })
        .execute();
    });
    return { authorizationUrl: url, expiresAt };
  }

  /**
   * Finishes a connect from the upstream's redirect (the full callback URL, or its query): checks
   * state and `iss`, redeems the code with the PKCE verifier, and stores the refresh token sealed.
   * Reconnecting an account writes a new refresh-token version and makes it active again.
   */
  async completeConnect(
    callback: string | URL | URLSearchParams,
    options: { connection?: string } = {},
  ): Promise<AccountView> {
    const params =
      callback instanceof URLSearchParams
        ? callback
        : callback instanceof URL
          ? callback.searchParams
          : /^https?:\/\//i.test(callback)
            ? new URL(callback).searchParams
            : new URLSearchParams(callback.replace(/^\?/, ''));
    const state = params.get('state');
    if (!state) {
      throw new InvalidRequestError('the callback carries no state', { code: 'ERR_VAULT_CONNECT_STATE' });
    }
    const stateHash = sha256(state);
    // Deleting first makes the state single-use even if two callbacks race.
    const pending = (await this.#db
      .deleteFrom('vault_pending_connects')
      .where('state_hash', '=', stateHash)
      .returningAll()
      .executeTakeFirst()) as
      | { connection_id: string; user_id: string; redirect_uri: string; sealed: string; expires_at: number }
      | undefined;
    if (!pending) {
      throw new InvalidRequestError('unknown or already used connect state', {
        code: 'ERR_VAULT_CONNECT_STATE',
      });
    }
    if (num(pending.expires_at) <= this.#clock.now()) {
      throw new InvalidRequestError('the connect request expired; start again', {
        code: 'ERR_VAULT_CONNECT_EXPIRED',
      });
    }
    const { codeVerifier } = JSON.parse(
      this.#keyring.openText(pending.sealed, connectContext(stateHash)),
    ) as { codeVerifier: string };
    const conn = await this.#loadConnection(this.#db, pending.connection_id);
    if (
      options.connection !== undefined &&
      options.connection !== conn.name &&
      options.connection !== conn.id
    ) {
      throw new InvalidRequestError('the callback arrived for another connection than it was started for', {
        code: 'ERR_VAULT_CONNECT_STATE',
      });
    }
    const clientSecret = await readSecretVersion(
      this.#db,
      this.#keyring,
      conn.client_secret_id,
      num(conn.client_secret_version),
    );
    let tokens: UpstreamTokens;
    try {
      tokens = await redeemCode(
        JSON.parse(conn.metadata) as UpstreamMetadata,
        conn.client_id,
        conn.client_auth_method,
        clientSecret,
        params,
        state,
        pending.redirect_uri,
        codeVerifier,
        this.#httpFor((JSON.parse(conn.metadata) as UpstreamMetadata).token_endpoint),
      );
    } catch (e) {
      if (e instanceof UpstreamGrantError) {
        throw new InvalidRequestError('the upstream refused the authorization code', {
          code: 'ERR_VAULT_CONNECT_FAILED',
        });
      }
      throw e;
    }
    if (!tokens.refreshToken) {
      throw new ConflictError(
        `connection ${conn.name}: the upstream issued no refresh token (ask for offline access in its scopes)`,
        { code: 'ERR_VAULT_NO_REFRESH_TOKEN' },
      );
    }
    this.#checkTokenType(tokens, conn);
    const refreshToken = tokens.refreshToken;
    const userId = pending.user_id;
    const now = this.#clock.now();
    const { account, reconnected } = await this.#auditor.transact(
      async (tx) => {
        const existing = (await tx
          .selectFrom('vault_accounts')
          .selectAll()
          .where('connection_id', '=', conn.id)
          .where('user_id', '=', userId)
          .executeTakeFirst()) as AccountRow | undefined;
        const secretId = existing?.refresh_secret_id ?? uuidv7(this.#clock);
        const version = await writeSecretVersion(tx, this.#keyring, secretId, refreshToken, now);
        let row: AccountRow;
        if (existing) {
          row = {
            ...existing,
            status: 'active',
            refresh_secret_version: version,
            scope: tokens.scope ?? existing.scope,
            broken_reason: null,
            broken_at: null,
            updated_at: now,
          };
          await tx
            .updateTable('vault_accounts')
            .set({
              status: 'active',
              refresh_secret_version: version,
              scope: row.scope,
              broken_reason: null,
              broken_at: null,
              updated_at: now,
            })
            .where('id', '=', existing.id)
            .execute();
        } else {
          row = {
            id: uuidv7(this.#clock),
            connection_id: conn.id,
            user_id: userId,
            status: 'active',
            refresh_secret_id: secretId,
            refresh_secret_version: version,
            scope: tokens.scope ?? null,
            broken_reason: null,
            broken_at: null,
            created_at: now,
            updated_at: now,
          };
          await tx.insertInto('vault_accounts').values(row).execute();
        }
        await this.#storeToken(tx, row.id, tokens, now);
        await this.#publish(tx, [row.id]);
        return { account: row, reconnected: existing !== undefined };
      },
      (r) => ({
        ...this.#writtenEvent(
          { type: 'user', id: userId },
          'vault.connect.complete',
          'vault_account',
          r.account.id,
          conn.name,
          {
            connection_id: conn.id,
            secret_id: r.account.refresh_secret_id,
            secret_version: r.account.refresh_secret_version,
            reconnected: r.reconnected,
          },
        ),
      }),
    );
    this.#forget([account.id]);
    this.#logger.info(
      { accountId: account.id, connection: conn.name, reconnected },
      'vault: account connected',
    );
    return accountView(account);
  }

  /** Connected accounts, optionally of one connection or one user. */
  async listAccounts(filter: { connection?: string; userId?: string } = {}): Promise<AccountView[]> {
    let q = this.#db.selectFrom('vault_accounts').selectAll().orderBy('id');
    if (filter.connection !== undefined) {
      const conn = await this.#loadConnection(this.#db, filter.connection);
      q = q.where('connection_id', '=', conn.id);
    }
    if (filter.userId !== undefined) q = q.where('user_id', '=', filter.userId);
    return ((await q.execute()) as AccountRow[]).map(accountView);
  }

  /** One connected account. @throws NotFoundError */
  async getAccount(id: string): Promise<AccountView> {
    const row = (await this.#db
      .selectFrom('vault_accounts')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()) as AccountRow | undefined;
    if (!row) throw new NotFoundError(`no connected account ${id}`, { code: 'ERR_VAULT_ACCOUNT_NOT_FOUND' });
    return accountView(row);
  }

  /** Forgets a connected account and every version of its refresh token. */
  async disconnectAccount(id: string, actor: AuditActor): Promise<void> {
    await this.#auditor.transact(
      async (tx) => {
        const row = (await tx
          .selectFrom('vault_accounts')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirst()) as AccountRow | undefined;
        if (!row)
          throw new NotFoundError(`no connected account ${id}`, { code: 'ERR_VAULT_ACCOUNT_NOT_FOUND' });
        await tx.deleteFrom('vault_token_cache').where('account_id', '=', id).execute();
        await tx.deleteFrom('vault_accounts').where('id', '=', id).execute();
        await deleteSecret(tx, row.refresh_secret_id);
        await this.#publish(tx, [id]);
        return row;
      },
      (row) => ({
        type: 'vault.secret_deleted',
        actor,
        action: 'vault.accounts.delete',
        resource: { type: 'vault_account', id: row.id },
        outcome: 'success',
        details: { connection_id: row.connection_id, user_id: row.user_id, secret_id: row.refresh_secret_id },
      }),
    );
    this.#forget([id]);
  }

  // ---------------------------------------------------------------- service credentials

  /**
   * Stores a service credential. An existing name gets a new secret version (its kind, header and
   * rule are replaced too); earlier versions are kept but never used again.
   */
  async putCredential(input: CredentialInput, actor: AuditActor): Promise<CredentialView> {
    const v = parseInput(credentialInputSchema, input);
    const plaintext =
      v.kind === 'basic'
        ? JSON.stringify({ username: v.username, password: v.password })
        : JSON.stringify({ value: v.value });
    const now = this.#clock.now();
    const { row, created } = await this.#auditor.transact(
      async (tx) => {
        const existing = (await tx
          .selectFrom('vault_credentials')
          .selectAll()
          .where('name', '=', v.name)
          .executeTakeFirst()) as CredentialRow | undefined;
        if (!existing) await this.#assertNameFree(tx, v.name);
        const secretId = existing?.secret_id ?? uuidv7(this.#clock);
        const version = await writeSecretVersion(tx, this.#keyring, secretId, plaintext, now);
        const r: CredentialRow = {
          id: existing?.id ?? uuidv7(this.#clock),
          name: v.name,
          kind: v.kind,
          header_name: v.kind === 'api_key' ? v.headerName.toLowerCase() : null,
          owner_user_id: v.ownerUserId ?? null,
          secret_id: secretId,
          secret_version: version,
          access_rule: JSON.stringify(v.accessRule),
          created_at: existing ? num(existing.created_at) : now,
          updated_at: now,
        };
        if (existing) {
          const { id: _id, created_at: _c, ...changes } = r;
          await tx.updateTable('vault_credentials').set(changes).where('id', '=', r.id).execute();
        } else {
          await tx.insertInto('vault_credentials').values(r).execute();
        }
        await this.#publish(tx);
        return { row: r, created: !existing };
      },
      ({ row: r, created: c }) =>
        this.#writtenEvent(
          actor,
          c ? 'vault.credentials.create' : 'vault.credentials.update',
          'vault_credential',
          r.id,
          r.name,
          {
            credential_type: r.kind,
            secret_id: r.secret_id,
            secret_version: r.secret_version,
          },
        ),
    );
    this.#forget([]);
    this.#logger.info(
      { credential: row.name, version: row.secret_version, created },
      'vault: credential written',
    );
    return credentialView(row);
  }

  /** One credential's metadata, by id or name. @throws NotFoundError */
  async getCredentialInfo(ref: string): Promise<CredentialView> {
    const row = await this.#findCredential(this.#db, ref);
    if (!row) throw new NotFoundError(`no credential ${ref}`, { code: 'ERR_VAULT_CREDENTIAL_NOT_FOUND' });
    return credentialView(row);
  }

  /** Every credential's metadata, by name. */
  async listCredentials(): Promise<CredentialView[]> {
    const rows = (await this.#db
      .selectFrom('vault_credentials')
      .selectAll()
      .orderBy('name')
      .execute()) as CredentialRow[];
    return rows.map(credentialView);
  }

  /** Deletes a credential and every version of its secret. */
  async deleteCredential(ref: string, actor: AuditActor): Promise<void> {
    await this.#auditor.transact(
      async (tx) => {
        const row = await this.#findCredential(tx, ref);
        if (!row) throw new NotFoundError(`no credential ${ref}`, { code: 'ERR_VAULT_CREDENTIAL_NOT_FOUND' });
        await tx.deleteFrom('vault_credentials').where('id', '=', row.id).execute();
        await deleteSecret(tx, row.secret_id);
        await this.#publish(tx);
        return row;
      },
      (row) => ({
        type: 'vault.secret_deleted',
        actor,
        action: 'vault.credentials.delete',
        resource: { type: 'vault_credential', id: row.id, name: row.name },
        outcome: 'success',
        details: { credential_type: row.kind, secret_id: row.secret_id },
      }),
    );
    this.#forget([]);
  }

  // ---------------------------------------------------------------- minting

  /**
   * The headers to inject into an upstream request for an agent, after checking the access rule.
   * For a connection: the acting user's connected account, as `Authorization: Bearer <access
   * token>`, minted from its refresh token when the cached one is near expiry. For a service
   * credential: its header. Every use and every refusal is an audit event.
   * @throws ForbiddenError (rule), NotFoundError (nothing by that name, no connected account),
   *   ConflictError (account broken), UnavailableError (upstream or ledger down).
   */
  async getCredential(request: CredentialRequest): Promise<MintedCredential> {
    const started = performance.now();
    const ref = request.connectionOrCredentialId;
    const conn = await this.#findConnectionCached(ref);
    if (conn) return this.#mintOAuth(conn, request, started);
    const cred = await this.#findCredentialCached(ref);
    if (cred) return this.#mintStatic(cred, request, started);
    throw await this.#refuse(
      request,
      { type: 'vault_credential', name: ref },
      new NotFoundError(`no connection or credential ${ref}`, { code: 'ERR_VAULT_CREDENTIAL_NOT_FOUND' }),
      started,
    );
  }

  /**
   * Exchange mode: the upstream access token itself of `userId`'s own connected account on a
   * connection that allows exchange, for an agent the access rule admits. The caller (the token
   * endpoint, after policy) hands it to the agent and records the success; refusals are recorded
   * here (`vault.credential_refused`, action `vault.exchange`).
   * @throws ForbiddenError (exchange not allowed, rule), NotFoundError (no such connection, no
   *   account of this user), ConflictError (account broken), UnavailableError (upstream down).
   */
  async exchangeAccessToken(
    request: CredentialRequest & { userId: string },
  ): Promise<{ accessToken: string; expiresAt: number; connectionId: string; accountId: string }> {
    const started = performance.now();
    const ref = request.connectionOrCredentialId;
    const req = { ...request, action: 'vault.exchange' };
    const conn = await this.#findConnectionCached(ref);
    if (!conn) {
      throw await this.#refuse(
        req,
        { type: 'vault_connection', name: ref },
        new NotFoundError(`no connection ${ref}`, { code: 'ERR_VAULT_CREDENTIAL_NOT_FOUND' }),
        started,
      );
    }
    const resource = { type: 'vault_connection', id: conn.id, name: conn.name };
    if (num(conn.allow_exchange) !== 1) {
      throw await this.#refuse(
        req,
        resource,
        new ForbiddenError(`connection ${conn.name} does not allow exchange mode`, {
          code: 'ERR_VAULT_EXCHANGE_NOT_ALLOWED',
        }),
        started,
      );
    }
    const reason = checkAccessRule(JSON.parse(conn.access_rule) as AccessRule, request, request.userId);
    if (reason) {
      throw await this.#refuse(
        req,
        resource,
        new ForbiddenError(reason, { code: 'ERR_VAULT_ACCESS_DENIED' }),
        started,
      );
    }
    const account = await this.#findAccountCached(conn.id, request.userId);
    if (!account) {
      throw await this.#refuse(
        req,
        resource,
        new NotFoundError(`user ${request.userId} has not connected an account on ${conn.name}`, {
          code: 'ERR_VAULT_NOT_CONNECTED',
        }),
        started,
      );
    }
    if (account.status !== 'active') {
      throw await this.#refuse(req, resource, this.#brokenError(conn), started, account.id);
    }
    try {
      const entry = await this.#accessToken(conn, account);
      const accessToken = this.#keyring.openText(entry.sealed, tokenContext(account.id, entry.generation));
      return { accessToken, expiresAt: entry.expiresAt, connectionId: conn.id, accountId: account.id };
    } catch (e) {
      throw await this.#refuse(req, resource, e, started, account.id);
    }
  }

  async #mintOAuth(
    conn: ConnectionRow,
    request: CredentialRequest,
    started: number,
  ): Promise<MintedCredential> {
    const resource = { type: 'vault_connection', id: conn.id, name: conn.name };
    const reason = checkAccessRule(JSON.parse(conn.access_rule) as AccessRule, request, request.userId);
    if (reason) {
      throw await this.#refuse(
        request,
        resource,
        new ForbiddenError(reason, { code: 'ERR_VAULT_ACCESS_DENIED' }),
        started,
      );
    }
    const userId = request.userId as string;
    const account = await this.#findAccountCached(conn.id, userId);
    if (!account) {
      throw await this.#refuse(
        request,
        resource,
        new NotFoundError(`user ${userId} has not connected an account on ${conn.name}`, {
          code: 'ERR_VAULT_NOT_CONNECTED',
        }),
        started,
      );
    }
    if (account.status !== 'active') {
      throw await this.#refuse(request, resource, this.#brokenError(conn), started, account.id);
    }
    let entry: TokenEntry;
    let token: string;
    try {
      entry = await this.#accessToken(conn, account);
      token = this.#keyring.openText(entry.sealed, tokenContext(account.id, entry.generation));
    } catch (e) {
      throw await this.#refuse(request, resource, e, started, account.id);
    }
    await this.#auditor.record({
      ...this.#useEvent(request, resource, started),
      type: 'vault.credential_used',
      outcome: 'success',
      details: { template_id: request.templateId, account_id: account.id, credential_type: 'oauth' },
    });
    return { headers: { authorization: `Bearer ${token}` }, expiresAt: entry.expiresAt };
  }

  async #mintStatic(
    cred: CredentialRow,
    request: CredentialRequest,
    started: number,
  ): Promise<MintedCredential> {
    const resource = { type: 'vault_credential', id: cred.id, name: cred.name };
    const reason = checkAccessRule(JSON.parse(cred.access_rule) as AccessRule, request, cred.owner_user_id);
    if (reason) {
      throw await this.#refuse(
        request,
        resource,
        new ForbiddenError(reason, { code: 'ERR_VAULT_ACCESS_DENIED' }),
        started,
      );
    }
    let secret: { value?: string; username?: string; password?: string };
    try {
      secret = JSON.parse(
        await readSecretVersion(this.#db, this.#keyring, cred.secret_id, num(cred.secret_version)),
      );
    } catch (e) {
      throw await this.#refuse(request, resource, e, started);
    }
    const headers: Record<string, string> =
      cred.kind === 'basic'
        ? {
            authorization: `Basic ${Buffer.from(`${secret.username}:${secret.password}`, 'utf8').toString('base64')}`,
          }
        : cred.kind === 'bearer'
          ? { authorization: `Bearer ${secret.value}` }
          : { [cred.header_name ?? 'x-api-key']: secret.value as string };
    await this.#auditor.record({
      ...this.#useEvent(request, resource, started),
      type: 'vault.credential_used',
      outcome: 'success',
      details: {
        template_id: request.templateId,
        credential_type: cred.kind,
        secret_version: num(cred.secret_version),
      },
    });
    return { headers };
  }

  #useEvent(
    request: CredentialRequest & { action?: string },
    resource: { type: string; id?: string; name?: string },
    started: number,
  ): Omit<AuditEventInput, 'type' | 'outcome'> {
    return {
      actor: {
        type: 'agent',
        id: request.agentId,
        on_behalf_of: request.userId ? { type: 'user', id: request.userId } : undefined,
      },
      action: request.action ?? 'vault.get_credential',
      resource,
      request: request.requestId ? { request_id: request.requestId } : undefined,
      latency_ms: Math.round((performance.now() - started) * 1000) / 1000,
    };
  }

  /** Records a refusal and returns the error to throw (always a typed WardenError). */
  async #refuse(
    request: CredentialRequest & { action?: string },
    resource: { type: string; id?: string; name?: string },
    error: unknown,
    started: number,
    accountId?: string,
  ): Promise<WardenError> {
    const e =
      error instanceof WardenError
        ? error
        : new UnavailableError('the credential could not be minted', { code: 'ERR_VAULT_UNAVAILABLE' });
    await this.#auditor.record({
      ...this.#useEvent(request, resource, started),
      type: 'vault.credential_refused',
      outcome: e.status >= 500 ? 'failure' : 'denied',
      error_code: e.code,
      decision: { effect: 'deny', reason: e.message },
      details: { template_id: request.templateId, account_id: accountId },
    });
    return e;
  }

  #brokenError(conn: ConnectionRow): ConflictError {
    return new ConflictError(
      `the connected account on ${conn.name} was revoked at the upstream; its user must connect it again`,
      { code: 'ERR_VAULT_ACCOUNT_BROKEN' },
    );
  }

  /** The account's access token: from memory, else from the store, else refreshed (single-flight). */
  async #accessToken(conn: ConnectionRow, account: AccountRow): Promise<TokenEntry> {
    const mem = this.#tokens.get(account.id);
    if (mem && this.#fresh(mem.expiresAt)) return mem;
    let flight = this.#inflight.get(account.id);
    if (!flight) {
      flight = this.#obtain(conn, account.id).finally(() => this.#inflight.delete(account.id));
      this.#inflight.set(account.id, flight);
    }
    return flight;
  }

  #fresh(expiresAt: number): boolean {
    return expiresAt - this.#settings.refreshSkewSeconds * 1000 > this.#clock.now();
  }

  async #readToken(accountId: string): Promise<TokenEntry | undefined> {
    const row = await this.#db
      .selectFrom('vault_token_cache')
      .select(['sealed', 'generation', 'expires_at'])
      .where('account_id', '=', accountId)
      .executeTakeFirst();
    if (!row) return undefined;
    const entry = {
      sealed: row.sealed as string,
      generation: num(row.generation),
      expiresAt: num(row.expires_at),
    };
    if (!this.#fresh(entry.expiresAt)) return undefined;
    this.#tokens.set(accountId, entry);
    return entry;
  }

  /**
   * Cross-node single-flight: whoever takes the lease refreshes; everyone else waits for the token
   * it stores. The stored token is checked again under the lease, so a refresh that finished just
   * before is never repeated.
   */
  async #obtain(conn: ConnectionRow, accountId: string): Promise<TokenEntry> {
    const lease = `vault.refresh:${accountId}`;
    const holder = `${this.#settings.nodeId}:${uuidv7(this.#clock)}`;
    const deadline = Date.now() + this.#settings.leaseWaitMs;
    for (;;) {
      const stored = await this.#readToken(accountId);
      if (stored) return stored;
      if (await tryAcquireLease(this.#db, lease, holder, this.#clock.now(), this.#settings.leaseTtlMs)) {
        try {
          return (await this.#readToken(accountId)) ?? (await this.#refresh(conn, accountId));
        } finally {
          await releaseLease(this.#db, lease, holder).catch((e: Error) =>
            this.#logger.warn({ err: { message: e.message }, accountId }, 'vault: lease release failed'),
          );
        }
      }
      if (Date.now() >= deadline) {
        throw new UnavailableError('another node is refreshing this token and has not finished', {
          code: 'ERR_VAULT_REFRESH_TIMEOUT',
          headers: { 'retry-after': '1' },
        });
      }
      await sleep(this.#settings.leasePollMs);
    }
  }

  async #refresh(conn: ConnectionRow, accountId: string): Promise<TokenEntry> {
    const account = (await this.#db
      .selectFrom('vault_accounts')
      .selectAll()
      .where('id', '=', accountId)
      .executeTakeFirst()) as AccountRow | undefined;
    if (!account)
      throw new NotFoundError('the connected account was removed', { code: 'ERR_VAULT_NOT_CONNECTED' });
    if (account.status !== 'active') throw this.#brokenError(conn);
    const refreshToken = await readSecretVersion(
      this.#db,
      this.#keyring,
      account.refresh_secret_id,
      num(account.refresh_secret_version),
    );
    const clientSecret = await readSecretVersion(
      this.#db,
      this.#keyring,
      conn.client_secret_id,
      num(conn.client_secret_version),
    );
    const actor: AuditActor = { ...SYSTEM, on_behalf_of: { type: 'user', id: account.user_id } };
    const resource = { type: 'vault_account', id: account.id, name: conn.name };
    const started = performance.now();
    let tokens: UpstreamTokens;
    try {
      tokens = await refreshAtUpstream(
        JSON.parse(conn.metadata) as UpstreamMetadata,
        conn.client_id,
        conn.client_auth_method,
        clientSecret,
        refreshToken,
        this.#httpFor((JSON.parse(conn.metadata) as UpstreamMetadata).token_endpoint),
      );
      this.#checkTokenType(tokens, conn);
    } catch (e) {
      if (e instanceof UpstreamGrantError) {
        await this.#markBroken(conn, account, e.error);
        throw this.#brokenError(conn);
      }
      const err =
        e instanceof WardenError
          ? e
          : new UnavailableError('upstream refresh failed', { code: 'ERR_VAULT_UPSTREAM_ERROR' });
      await this.#auditor.record({
        type: 'vault.token_refreshed',
        actor,
        action: 'vault.refresh',
        resource,
        outcome: 'failure',
        error_code: err.code,
        latency_ms: Math.round(performance.now() - started),
        details: { connection_id: conn.id, reason: err.message },
      });
      throw err;
    }
    const now = this.#clock.now();
    const result = await this.#auditor.transact(
      async (tx) => {
        let version = num(account.refresh_secret_version);
        const rotated = tokens.refreshToken !== undefined && tokens.refreshToken !== refreshToken;
        if (rotated) {
          version = await writeSecretVersion(
            tx,
            this.#keyring,
            account.refresh_secret_id,
            tokens.refreshToken as string,
            now,
          );
          await tx
            .updateTable('vault_accounts')
            .set({ refresh_secret_version: version, updated_at: now })
            .where('id', '=', account.id)
            .execute();
        }
        const entry = await this.#storeToken(tx, account.id, tokens, now);
        return { entry, rotated, version };
      },
      (r) => ({
        type: 'vault.token_refreshed',
        actor,
        action: 'vault.refresh',
        resource,
        outcome: 'success',
        latency_ms: Math.round(performance.now() - started),
        details: {
          connection_id: conn.id,
          rotated: r.rotated,
          secret_id: account.refresh_secret_id,
          secret_version: r.version,
          expires_at: r.entry.expiresAt,
        },
      }),
    );
    this.#accounts.delete(`${conn.id}\0${account.user_id}`);
    this.#tokens.set(account.id, result.entry);
    return result.entry;
  }

  async #storeToken(
    tx: Kysely<any>,
    accountId: string,
    tokens: UpstreamTokens,
    now: number,
  ): Promise<TokenEntry> {
    const prev = await tx
      .selectFrom('vault_token_cache')
      .select('generation')
      .where('account_id', '=', accountId)
      .executeTakeFirst();
    const generation = num(prev?.generation ?? 0) + 1;
    const expiresAt = now + (tokens.expiresIn ?? this.#settings.defaultTokenLifetimeSeconds) * 1000;
    const sealed = this.#keyring.seal(tokens.accessToken, tokenContext(accountId, generation));
    const values = {
      generation,
      sealed,
      token_type: 'bearer',
      scope: tokens.scope ?? null,
      expires_at: expiresAt,
      refreshed_at: now,
    };
    await tx
      .insertInto('vault_token_cache')
      .values({ account_id: accountId, ...values })
      .onConflict((oc) => oc.column('account_id').doUpdateSet(values))
      .execute();
    return { sealed, generation, expiresAt };
  }

  async #markBroken(conn: ConnectionRow, account: AccountRow, upstreamError: string): Promise<void> {
    const now = this.#clock.now();
    const reason = `upstream answered ${upstreamError} to a refresh`;
    await this.#auditor.transact(
      async (tx) => {
        await tx
          .updateTable('vault_accounts')
          .set({ status: 'broken', broken_reason: reason, broken_at: now, updated_at: now })
          .where('id', '=', account.id)
          .execute();
        await tx.deleteFrom('vault_token_cache').where('account_id', '=', account.id).execute();
        await this.#publish(tx, [account.id]);
      },
      () => ({
        type: 'vault.token_refreshed',
        actor: { ...SYSTEM, on_behalf_of: { type: 'user', id: account.user_id } },
        action: 'vault.refresh',
        resource: { type: 'vault_account', id: account.id, name: conn.name },
        outcome: 'failure',
        error_code: 'ERR_VAULT_ACCOUNT_BROKEN',
        details: { connection_id: conn.id, upstream_error: upstreamError, account_status: 'broken' },
      }),
    );
    this.#forget([account.id]);
    this.#logger.warn(
      { accountId: account.id, connection: conn.name, userId: account.user_id, upstreamError },
      'vault: connected account marked broken',
    );
    if (this.#onAccountBroken) {
      try {
        await this.#onAccountBroken({
          accountId: account.id,
          connectionId: conn.id,
          connectionName: conn.name,
          userId: account.user_id,
          reason,
        });
      } catch (e) {
        this.#logger.error(
          { err: { message: (e as Error).message }, accountId: account.id },
          'vault: broken-account hook failed',
        );
      }
    }
  }

  #checkTokenType(tokens: UpstreamTokens, conn: ConnectionRow): void {
    if (tokens.tokenType.toLowerCase() !== 'bearer') {
      throw new UnavailableError(
        `connection ${conn.name}: the upstream issued a ${tokens.tokenType} token; only Bearer tokens can be injected`,
        { code: 'ERR_VAULT_UNSUPPORTED_TOKEN_TYPE' },
      );
    }
  }

  // ---------------------------------------------------------------- lookups

  async #findConnection(db: Kysely<any>, ref: string): Promise<ConnectionRow | undefined> {
    return (await db
      .selectFrom('vault_connections')
      .selectAll()
      .where(isUuid(ref) ? 'id' : 'name', '=', ref)
      .executeTakeFirst()) as ConnectionRow | undefined;
  }

  async #loadConnection(db: Kysely<any>, ref: string): Promise<ConnectionRow> {
    const row = await this.#findConnection(db, ref);
    if (!row) throw new NotFoundError(`no connection ${ref}`, { code: 'ERR_VAULT_CONNECTION_NOT_FOUND' });
    return row;
  }

  async #findCredential(db: Kysely<any>, ref: string): Promise<CredentialRow | undefined> {
    return (await db
      .selectFrom('vault_credentials')
      .selectAll()
      .where(isUuid(ref) ? 'id' : 'name', '=', ref)
      .executeTakeFirst()) as CredentialRow | undefined;
  }

  async #findConnectionCached(ref: string): Promise<ConnectionRow | undefined> {
    const hit = this.#connections.get(ref);
    if (hit) return hit;
    const row = await this.#findConnection(this.#db, ref);
    if (row) this.#connections.set(ref, row);
    return row;
  }

  async #findCredentialCached(ref: string): Promise<CredentialRow | undefined> {
    const hit = this.#credentials.get(ref);
    if (hit) return hit;
    const row = await this.#findCredential(this.#db, ref);
    if (row) this.#credentials.set(ref, row);
    return row;
  }

  async #findAccountCached(connectionId: string, userId: string): Promise<AccountRow | undefined> {
    const key = `${connectionId}\0${userId}`;
    const hit = this.#accounts.get(key);
    if (hit) return hit;
    const row = (await this.#db
      .selectFrom('vault_accounts')
      .selectAll()
      .where('connection_id', '=', connectionId)
      .where('user_id', '=', userId)
      .executeTakeFirst()) as AccountRow | undefined;
    if (row) this.#accounts.set(key, row);
    return row;
  }

  /** Connection and credential names share one namespace: the gateway looks both up by name. */
  async #assertNameFree(tx: Kysely<any>, name: string): Promise<void> {
    const a = await tx
      .selectFrom('vault_connections')
      .select('id')
      .where('name', '=', name)
      .executeTakeFirst();
    const b = await tx
      .selectFrom('vault_credentials')
      .select('id')
      .where('name', '=', name)
      .executeTakeFirst();
    if (a || b)
      throw new ConflictError(`the name ${name} is already used in the vault`, {
        code: 'ERR_VAULT_NAME_TAKEN',
      });
  }

  #checkUrl(url: string | undefined, field: string): void {
    if (url === undefined || this.#settings.allowHttp || isLoopbackHttpOrHttps(url)) return;
    throw new InvalidRequestError(`${field} must be an https URL`, {
      invalidParams: [{ name: field, reason: 'must use https (plain http only to a loopback address)' }],
    });
  }

  /** Plain http is allowed to loopback addresses (never leaves the machine), or everywhere in dev. */
  #httpFor(url: string): UpstreamHttpOptions {
    return {
      timeoutMs: this.#settings.upstreamTimeoutMs,
      allowHttp: this.#settings.allowHttp || isLoopbackHttpOrHttps(url),
    };
  }

  #writtenEvent(
    actor: AuditActor,
    action: string,
    resourceType: string,
    id: string,
    name: string,
    details: Record<string, unknown>,
  ): AuditEventInput {
    return {
      type: 'vault.secret_written',
      actor,
      action,
      resource: { type: resourceType, id, name },
      outcome: 'success',
      details,
    };
  }
}
