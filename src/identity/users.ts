import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import type { AuditRequestMeta } from '../audit/index.ts';
import {
  ConflictError,
  ForbiddenError,
  hashPassword,
  isUuid,
  NotFoundError,
  randomToken,
  UnauthenticatedError,
  uuidv7,
  verifyPassword,
} from '../core/index.ts';
import { decodeCursor, isUniqueViolation, type Page, pageOf } from '../store/index.ts';
import { actorOf, type Caller, type IdentityDeps, iso, isoRequired } from './context.ts';
import { LoginThrottle } from './login-throttle.ts';
import type { Role } from './roles.ts';
import type {
  ApiToken,
  apiTokenCreateSchema,
  loginSchema,
  User,
  userCreateSchema,
  userListQuerySchema,
  userUpdateSchema,
} from './schemas.ts';

type UserRow = {
  id: string;
  username: string;
  display_name: string | null;
  email: string | null;
  password_hash: string | null;
  roles: string;
  status: 'active' | 'disabled';
  created_at: number;
  updated_at: number;
};

type TokenRow = {
  id: string;
  user_id: string;
  name: string;
  role: Role;
  token_hash: string;
  created_at: number;
  expires_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
};

/** API tokens are random 256-bit values with a recognisable prefix (for secret scanners). */
export const API_TOKEN_PREFIX = 'wdn_';

/** Only the SHA-256 of an API token is stored; the token itself is shown once. */
export function hashApiToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    display_name: row.display_name,
    email: row.email,
    roles: JSON.parse(row.roles) as Role[],
    status: row.status,
    created_at: isoRequired(row.created_at),
    updated_at: isoRequired(row.updated_at),
  };
}

function toToken(row: TokenRow): ApiToken {
  return {
    id: row.id,
    user_id: row.user_id,
    name: row.name,
    role: row.role,
    created_at: isoRequired(row.created_at),
    expires_at: isoRequired(row.expires_at),
    last_used_at: iso(row.last_used_at),
    revoked_at: iso(row.revoked_at),
  };
}

/** Who an API token authenticates. */
export interface AuthenticatedToken {
  tokenId: string;
  user: User;
  role: Role;
}

/** People (local accounts) and their admin API tokens. */
export class UserDirectory {
  readonly #deps: IdentityDeps;
  readonly #throttle = new LoginThrottle();

  constructor(deps: IdentityDeps) {
    this.#deps = deps;
  }

  get #db(): Kysely<any> {
    return this.#deps.store.db;
  }

  /** Number of users: zero means the bootstrap administrator has not been created yet. */
  async count(): Promise<number> {
    const row = await this.#db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async #row(ref: string, db: Kysely<any> = this.#db): Promise<UserRow> {
    const row = (await db
      .selectFrom('users')
      .selectAll()
      .where(isUuid(ref) ? 'id' : 'username', '=', ref)
      .executeTakeFirst()) as UserRow | undefined;
    if (!row) throw new NotFoundError(`user ${ref} does not exist`, { code: 'ERR_USER_NOT_FOUND' });
    return row;
  }

  /** Finds a user by id or username. */
  async get(ref: string): Promise<User> {
    return toUser(await this.#row(ref));
  }

  /**
   * Users whose email matches (case-insensitively), for mapping a federated identity by email.
   * Emails are not unique: callers must refuse an ambiguous answer.
   */
  async findByEmail(email: string): Promise<User[]> {
    const rows = (await this.#db
      .selectFrom('users')
      .selectAll()
      .where((eb) => eb(eb.fn('lower', ['email']), '=', email.toLowerCase()))
      .limit(2)
      .execute()) as UserRow[];
    return rows.map(toUser);
  }

  async list(query: z.infer<typeof userListQuerySchema>): Promise<Page<User>> {
    let q = this.#db
      .selectFrom('users')
      .selectAll()
      .orderBy('id')
      .limit(query.limit + 1);
    if (query.cursor) q = q.where('id', '>', decodeCursor(query.cursor));
    if (query.role) q = q.where('roles', 'like', `%"${query.role}"%`);
    const rows = (await q.execute()) as UserRow[];
    return pageOf(rows.map(toUser), query.limit, (u) => u.id);
  }

  /** Creates a user; `caller` undefined only for the bootstrap administrator. */
  async create(input: z.infer<typeof userCreateSchema>, caller: Caller | undefined): Promise<User> {
    const now = this.#deps.clock.now();
    const passwordHash = input.password ? await hashPassword(input.password) : null;
    const row: UserRow = {
      id: uuidv7(this.#deps.clock),
      username: input.username,
      display_name: input.display_name ?? null,
      email: input.email ?? null,
      password_hash: passwordHash,
      roles: JSON.stringify([...new Set(input.roles)]),
      status: 'active',
      created_at: now,
      updated_at: now,
    };
    try {
      return await this.#deps.auditor.transact(
        async (tx) => {
          await tx.insertInto('users').values(row).execute();
          return toUser(row);
        },
        (user) => ({
          type: 'user.created',
          actor: caller ? actorOf(caller) : { type: 'system', id: 'bootstrap' },
          action: 'users.create',
          resource: { type: 'user', id: user.id, name: user.username },
          outcome: 'success',
          request: caller?.request,
          details: { roles: user.roles },
        }),
      );
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new ConflictError(`a user named ${input.username} already exists`, {
          code: 'ERR_DUPLICATE_NAME',
        });
      }
      throw e;
    }
  }

  async update(ref: string, input: z.infer<typeof userUpdateSchema>, caller: Caller): Promise<User> {
    const passwordHash = input.password ? await hashPassword(input.password) : undefined;
    return this.#deps.auditor.transact(
      async (tx) => {
        const row = await this.#row(ref, tx);
        if (row.id === caller.userId && input.status === 'disabled') {
          throw new ConflictError('you cannot disable your own account', { code: 'ERR_SELF_DISABLE' });
        }
        const changes: Partial<UserRow> = { updated_at: this.#deps.clock.now() };
        if (input.display_name !== undefined) changes.display_name = input.display_name;
        if (input.email !== undefined) changes.email = input.email;
        if (input.roles !== undefined) changes.roles = JSON.stringify([...new Set(input.roles)]);
        if (input.status !== undefined) changes.status = input.status;
        if (passwordHash !== undefined) changes.password_hash = passwordHash;
        await tx.updateTable('users').set(changes).where('id', '=', row.id).execute();
        return toUser({ ...row, ...changes });
      },
      (user) => ({
        type: 'user.updated',
        actor: actorOf(caller),
        action: 'users.update',
        resource: { type: 'user', id: user.id, name: user.username },
        outcome: 'success',
        request: caller.request,
        details: {
          changed: Object.keys(input).filter((k) => k !== 'password'),
          password_changed: input.password !== undefined,
        },
      }),
    );
  }

  /**
   * Signs a person in with username and password and issues a short-lived API token carrying one
   * of their roles. Failures are throttled and recorded; the answer never says which part was wrong.
   */
  async login(
    input: z.infer<typeof loginSchema>,
    request: AuditRequestMeta,
  ): Promise<{ token: string; record: ApiToken }> {
    const now = this.#deps.clock.now();
    const user = await this.signIn(input.username, input.password, request, {
      action: 'login',
      role: input.role ?? 'any',
    });
    const role = (input.role ?? user.roles[0]) as Role;
    const caller: Caller = { userId: user.id, username: user.username, role, request };
    return this.createToken(
      { name: `login ${new Date(now).toISOString()}`, role, expires_in: input.expires_in },
      caller,
    );
  }

  /**
   * Checks a person's username and password behind the sign-in throttle (five failures per
   * username or source address in five minutes, then `429`) and records `auth.login_succeeded` or
   * `auth.login_failed` with `action`. Every sign-in form (API login, the authorization server's
   * login page) goes through here, so they share one throttle.
   * @param options.role when given, the user must hold it (`any`: at least one role), as API
   *   login requires; the authorization server's login page signs in people without roles too.
   * @throws RateLimitedError when throttled; UnauthenticatedError (`ERR_BAD_CREDENTIALS`) otherwise.
   */
  async signIn(
    username: string,
    password: string,
    request: AuditRequestMeta,
    options: { action: string; role?: Role | 'any' | undefined },
  ): Promise<User> {
    const now = this.#deps.clock.now();
    const keys = [`user:${username}`, `ip:${request.source_ip ?? 'unknown'}`];
    this.#throttle.check(keys, now);
    try {
      const user = await this.verifyPassword(username, password);
      const role = options.role === undefined || options.role === 'any' ? user.roles[0] : options.role;
      if (options.role !== undefined && (!role || !user.roles.includes(role))) {
        throw new UnauthenticatedError('wrong username or password', { code: 'ERR_BAD_CREDENTIALS' });
      }
      this.#throttle.succeed(keys);
      await this.#deps.auditor.record({
        type: 'auth.login_succeeded',
        actor: role
          ? actorOf({ userId: user.id, username: user.username, role, request })
          : { type: 'user', id: user.id, name: user.username },
        action: options.action,
        outcome: 'success',
        request,
      });
      return user;
    } catch (e) {
      if (e instanceof UnauthenticatedError) {
        this.#throttle.fail(keys, now);
        await this.#deps.auditor.record({
          type: 'auth.login_failed',
          actor: { type: 'anonymous', id: username.slice(0, 64) },
          action: options.action,
          outcome: 'denied',
          error_code: e.code,
          request,
        });
      }
      throw e;
    }
  }

  /**
   * Issues a short-lived API token to a person who signed in elsewhere (the authorization server's
   * sign-in page, proven by a redeemed console token): the account must be active and hold the
   * role. Recorded as `auth.login_succeeded` with `action`.
   */
  async loginAs(
    userId: string,
    input: { role?: Role | undefined; expires_in: number },
    request: AuditRequestMeta,
    action: string,
  ): Promise<{ token: string; record: ApiToken }> {
    const user = toUser(await this.#row(userId));
    const role = input.role ?? user.roles[0];
    if (user.status !== 'active' || !role || !user.roles.includes(role)) {
      throw new ForbiddenError(
        role ? `user ${user.username} does not hold the role ${role}` : `user ${user.username} has no role`,
        { code: 'ERR_ROLE_NOT_HELD' },
      );
    }
    const caller: Caller = { userId: user.id, username: user.username, role, request };
    await this.#deps.auditor.record({
      type: 'auth.login_succeeded',
      actor: actorOf(caller),
      action,
      outcome: 'success',
      request,
    });
    return this.createToken(
      {
        name: `login ${new Date(this.#deps.clock.now()).toISOString()}`,
        role,
        expires_in: input.expires_in,
      },
      caller,
    );
  }

  async verifyPassword(username: string, password: string): Promise<User> {
    const row = (await this.#db
      .selectFrom('users')
      .selectAll()
      .where('username', '=', username)
      .executeTakeFirst()) as UserRow | undefined;
    // Hash even for unknown users so response time does not reveal which usernames exist.
    let ok = false;
    if (row?.password_hash) ok = await verifyPassword(password, row.password_hash);
    else await hashPassword(password);
    if (!row || !ok || row.status !== 'active') {
      throw new UnauthenticatedError('wrong username or password', { code: 'ERR_BAD_CREDENTIALS' });
    }
    return toUser(row);
  }

  /**
   * Issues an API token. The token's role must be one of its user's roles; only admins issue
   * tokens for other users. `presetToken` is the bootstrap `WARDEN_ADMIN_TOKEN`.
   * @returns the token record and the token itself, which is never retrievable again.
   */
  async createToken(
    input: z.infer<typeof apiTokenCreateSchema>,
    caller: Caller | undefined,
    presetToken?: string,
  ): Promise<{ token: string; record: ApiToken }> {
    const userId = input.user_id ?? caller?.userId;
    if (!userId) throw new ForbiddenError('a token needs a user');
    if (caller && userId !== caller.userId && caller.role !== 'admin') {
      throw new ForbiddenError('only admins create tokens for other users', { code: 'ERR_ROLE_REQUIRED' });
    }
    const owner = toUser(await this.#row(userId));
    if (!owner.roles.includes(input.role)) {
      throw new ForbiddenError(`user ${owner.username} does not hold the role ${input.role}`, {
        code: 'ERR_ROLE_NOT_HELD',
      });
    }
    if (caller && caller.role !== 'admin' && input.role !== caller.role) {
      throw new ForbiddenError('a token can only carry the role of the credential that creates it', {
        code: 'ERR_ROLE_ESCALATION',
      });
    }
    const token = presetToken ?? `${API_TOKEN_PREFIX}${randomToken(32)}`;
    const now = this.#deps.clock.now();
    const row: TokenRow = {
      id: uuidv7(this.#deps.clock),
      user_id: owner.id,
      name: input.name,
      role: input.role,
      token_hash: hashApiToken(token),
      created_at: now,
      expires_at: now + input.expires_in * 1000,
      last_used_at: null,
      revoked_at: null,
    };
    const record = await this.#deps.auditor.transact(
      async (tx) => {
        await tx.insertInto('api_tokens').values(row).execute();
        return toToken(row);
      },
      (r) => ({
        type: 'api_token.created',
        actor: caller ? actorOf(caller) : { type: 'system', id: 'bootstrap' },
        action: 'tokens.create',
        resource: { type: 'api_token', id: r.id, name: r.name },
        outcome: 'success',
        request: caller?.request,
        details: { user_id: r.user_id, role: r.role, expires_at: r.expires_at },
      }),
    );
    return { token, record };
  }

  async listTokens(
    caller: Caller,
    query: { limit: number; cursor?: string | undefined; user_id?: string | undefined },
  ): Promise<Page<ApiToken>> {
    const userId = caller.role === 'admin' ? query.user_id : caller.userId;
    let q = this.#db
      .selectFrom('api_tokens')
      .selectAll()
      .orderBy('id')
      .limit(query.limit + 1);
    if (userId) q = q.where('user_id', '=', userId);
    if (query.cursor) q = q.where('id', '>', decodeCursor(query.cursor));
    const rows = (await q.execute()) as TokenRow[];
    return pageOf(rows.map(toToken), query.limit, (t) => t.id);
  }

  async revokeToken(id: string, caller: Caller): Promise<ApiToken> {
    return this.#deps.auditor.transact(
      async (tx) => {
        const row = (await tx.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst()) as
          | TokenRow
          | undefined;
        if (!row || (row.user_id !== caller.userId && caller.role !== 'admin')) {
          throw new NotFoundError(`API token ${id} does not exist`, { code: 'ERR_TOKEN_NOT_FOUND' });
        }
        if (row.revoked_at !== null) return toToken(row);
        const revokedAt = this.#deps.clock.now();
        await tx.updateTable('api_tokens').set({ revoked_at: revokedAt }).where('id', '=', id).execute();
        return toToken({ ...row, revoked_at: revokedAt });
      },
      (t) => ({
        type: 'api_token.revoked',
        actor: actorOf(caller),
        action: 'tokens.revoke',
        resource: { type: 'api_token', id: t.id, name: t.name },
        outcome: 'success',
        request: caller.request,
      }),
    );
  }

  /**
   * Resolves a presented API token. Refuses unknown, revoked and expired tokens, tokens of
   * disabled users, and tokens whose role the user no longer holds.
   */
  async authenticate(token: string): Promise<AuthenticatedToken> {
    const row = (await this.#db
      .selectFrom('api_tokens')
      .selectAll()
      .where('token_hash', '=', hashApiToken(token))
      .executeTakeFirst()) as TokenRow | undefined;
    const now = this.#deps.clock.now();
    if (!row) throw new UnauthenticatedError('the API token is not valid', { code: 'ERR_TOKEN_INVALID' });
    if (row.revoked_at !== null) {
      throw new UnauthenticatedError('the API token has been revoked', { code: 'ERR_TOKEN_REVOKED' });
    }
    if (row.expires_at <= now) {
      throw new UnauthenticatedError('the API token has expired', { code: 'ERR_TOKEN_EXPIRED' });
    }
    const user = toUser(await this.#row(row.user_id));
    if (user.status !== 'active') {
      throw new UnauthenticatedError('the account is disabled', { code: 'ERR_ACCOUNT_DISABLED' });
    }
    if (!user.roles.includes(row.role)) {
      throw new UnauthenticatedError('the token carries a role its user no longer holds', {
        code: 'ERR_TOKEN_ROLE_REVOKED',
      });
    }
    // Recording last use at most once a minute keeps authentication read-mostly.
    if (row.last_used_at === null || now - row.last_used_at > 60_000) {
      await this.#db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
    }
    return { tokenId: row.id, user, role: row.role };
  }
}
