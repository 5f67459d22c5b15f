import type { Kysely } from 'kysely';
import { type Clock, uuidv7 } from '../core/index.ts';
import { decodeCursor, type Page, pageOf, type Store } from '../store/index.ts';

/** Where a grant came from: a user's consent screen, or the admin/user API. */
export type DelegationGrantSource = 'consent' | 'api' | 'ciba';

/**
 * What a user delegated to one agent: the ceiling of every token exchanged on the user's behalf
 * by that agent (RFC 8693). Times are epoch milliseconds.
 */
export interface DelegationGrant {
  id: string;
  userId: string;
  agentId: string;
  scopes: string[];
  /** Resource indicators (RFC 8707) the agent may act on; empty = any configured resource. */
  resources: string[];
  purpose: string;
  /** RFC 9396 authorization details the user agreed to, if any. */
  authorizationDetails: unknown[] | null;
  source: DelegationGrantSource;
  /** Who created it: the user (consent, self-service) or an admin's user id. */
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  revokedBy: string | null;
  revokeReason: string | null;
}

/** What creating a grant takes (the caller has validated it). */
export interface DelegationGrantInput {
  userId: string;
  agentId: string;
  scopes: string[];
  resources?: string[] | undefined;
  purpose: string;
  authorizationDetails?: unknown[] | null | undefined;
  source: DelegationGrantSource;
  createdBy: string;
  /** Epoch milliseconds; must be in the future. */
  expiresAt: number;
}

/** Filters for {@link DelegationGrants.list}. */
export interface DelegationGrantQuery {
  userId?: string | undefined;
  agentId?: string | undefined;
  /** Include revoked and expired grants (default: active ones only). */
  includeInactive?: boolean | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

type Row = {
  id: string;
  user_id: string;
  agent_id: string;
  scopes: string;
  resources: string;
  purpose: string;
  authorization_details: string | null;
  source: DelegationGrantSource;
  created_by: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_by: string | null;
  revoke_reason: string | null;
};

function fromRow(row: Row): DelegationGrant {
  return {
    id: row.id,
    userId: row.user_id,
    agentId: row.agent_id,
    scopes: JSON.parse(row.scopes) as string[],
    resources: JSON.parse(row.resources) as string[],
    purpose: row.purpose,
    authorizationDetails:
      row.authorization_details === null ? null : (JSON.parse(row.authorization_details) as unknown[]),
    source: row.source,
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    revokedBy: row.revoked_by,
    revokeReason: row.revoke_reason,
  };
}

/** True while a grant may back a token exchange: not revoked and not expired at `now`. */
export function isGrantActive(grant: DelegationGrant, now: number): boolean {
  return grant.revokedAt === null && grant.expiresAt > now;
}

/**
 * The store of delegation grants (`oauth_delegation_grants`). Writes take the caller's
 * transaction so each change commits with its audit event; {@link TokenService.createGrant} and
 * {@link TokenService.revokeGrant} are the audited entry points.
 */
export class DelegationGrants {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Inserts a grant inside `tx`. */
  async create(tx: Kysely<any>, input: DelegationGrantInput): Promise<DelegationGrant> {
    const row: Row = {
      id: uuidv7(this.#clock),
      user_id: input.userId,
      agent_id: input.agentId,
      scopes: JSON.stringify([...new Set(input.scopes)]),
      resources: JSON.stringify([...new Set(input.resources ?? [])]),
      purpose: input.purpose,
      authorization_details:
        input.authorizationDetails === undefined || input.authorizationDetails === null
          ? null
          : JSON.stringify(input.authorizationDetails),
      source: input.source,
      created_by: input.createdBy,
      created_at: this.#clock.now(),
      expires_at: input.expiresAt,
      revoked_at: null,
      revoked_by: null,
      revoke_reason: null,
    };
    await tx.insertInto('oauth_delegation_grants').values(row).execute();
    return fromRow(row);
  }

  /**
   * One grant by id, active or not. With `lock` (inside a transaction) the row is locked on
   * PostgreSQL until commit, so recording a token under a grant and revoking that grant serialize
   * (SQLite transactions already do: one writer at a time).
   */
  async find(
    id: string,
    db: Kysely<any> = this.#store.db,
    options: { lock?: boolean } = {},
  ): Promise<DelegationGrant | undefined> {
    let q = db.selectFrom('oauth_delegation_grants').selectAll().where('id', '=', id);
    if (options.lock && this.#store.dialect === 'postgres') q = q.forUpdate();
    const row = (await q.executeTakeFirst()) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** The user's grants to this agent that are in force now (not revoked, not expired), oldest first. */
  async findActive(userId: string, agentId: string): Promise<DelegationGrant[]> {
    const rows = (await this.#store.db
      .selectFrom('oauth_delegation_grants')
      .selectAll()
      .where('user_id', '=', userId)
      .where('agent_id', '=', agentId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', this.#clock.now())
      .orderBy('id')
      .execute()) as Row[];
    return rows.map(fromRow);
  }

  /** A page of grants ordered by id (creation order), active ones only unless asked otherwise. */
  async list(query: DelegationGrantQuery = {}): Promise<Page<DelegationGrant>> {
    const limit = query.limit ?? 50;
    let q = this.#store.db
      .selectFrom('oauth_delegation_grants')
      .selectAll()
      .orderBy('id')
      .limit(limit + 1);
    if (query.userId) q = q.where('user_id', '=', query.userId);
    if (query.agentId) q = q.where('agent_id', '=', query.agentId);
    if (!query.includeInactive) {
      q = q.where('revoked_at', 'is', null).where('expires_at', '>', this.#clock.now());
    }
    if (query.cursor) q = q.where('id', '>', decodeCursor(query.cursor));
    const rows = (await q.execute()) as Row[];
    return pageOf(rows.map(fromRow), limit, (g) => g.id);
  }

  /**
   * Marks a grant revoked inside `tx` (idempotent). The tokens issued under it are revoked by
   * {@link TokenService.revokeGrant} in the same transaction.
   * @returns true when this call revoked it.
   */
  async revoke(tx: Kysely<any>, id: string, by: string, reason: string): Promise<boolean> {
    const result = await tx
      .updateTable('oauth_delegation_grants')
      .set({ revoked_at: this.#clock.now(), revoked_by: by, revoke_reason: reason })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}
