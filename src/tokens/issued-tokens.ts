import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.ts';
import type { Store } from '../store/index.ts';

/** What Warden remembers of an issued access token: its id and claims, never the token. */
export interface IssuedToken {
  jti: string;
  clientId: string;
  sub: string;
  aud: string;
  scope: string;
  jkt: string | null;
  kid: string;
  templateId: string;
  templateVersion: number;
  issuedAt: number;
  expiresAt: number;
  revokedAt: number | null;
  /** The delegation grant a token-exchange token was issued under; null for the agent's own tokens. */
  grantId: string | null;
}

/** What {@link IssuedTokens.record} takes. */
export type IssuedTokenRecord = Omit<IssuedToken, 'revokedAt' | 'grantId'> & {
  grantId?: string | null | undefined;
  /**
   * Every grant the token depends on: its own and those of the delegated tokens it was derived
   * from (nested exchange). Revoking any of them revokes the token.
   */
  grantChain?: string[] | undefined;
};

type Row = {
  jti: string;
  client_id: string;
  sub: string;
  aud: string;
  scope: string;
  jkt: string | null;
  kid: string;
  template_id: string;
  template_version: number;
  issued_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
  grant_id: string | null;
};

function fromRow(row: Row): IssuedToken {
  return {
    jti: row.jti,
    clientId: row.client_id,
    sub: row.sub,
    aud: row.aud,
    scope: row.scope,
    jkt: row.jkt,
    kid: row.kid,
    templateId: row.template_id,
    templateVersion: Number(row.template_version),
    issuedAt: Number(row.issued_at),
    expiresAt: Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    grantId: row.grant_id ?? null,
  };
}

/** The record of issued access tokens: what introspection and revocation answer from. */
export class IssuedTokens {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Records an issued token (inside the caller's transaction, next to its audit event). */
  async record(tx: Kysely<any>, token: IssuedTokenRecord): Promise<void> {
    await tx
      .insertInto('oauth_access_tokens')
      .values({
        jti: token.jti,
        client_id: token.clientId,
        sub: token.sub,
        aud: token.aud,
        scope: token.scope,
        jkt: token.jkt,
        kid: token.kid,
        template_id: token.templateId,
        template_version: token.templateVersion,
        issued_at: token.issuedAt,
        expires_at: token.expiresAt,
        revoked_at: null,
        revoked_reason: null,
        grant_id: token.grantId ?? null,
      })
      .execute();
    const grants = new Set([...(token.grantChain ?? []), ...(token.grantId ? [token.grantId] : [])]);
    if (grants.size > 0) {
      await tx
        .insertInto('oauth_access_token_grants')
        .values([...grants].map((g) => ({ grant_id: g, jti: token.jti, expires_at: token.expiresAt })))
        .execute();
    }
  }

  /** Every grant a token depends on (empty for an agent's own tokens). */
  async grantsOf(jti: string): Promise<string[]> {
    const rows = (await this.#store.db
      .selectFrom('oauth_access_token_grants')
      .select('grant_id')
      .where('jti', '=', jti)
      .execute()) as { grant_id: string }[];
    return rows.map((r) => r.grant_id);
  }

  /**
   * Revokes, inside `tx`, every unexpired token that depends on a grant (issued under it or derived
   * from such a token), publishing each on `tokens.revoked` like {@link revoke}.
   * @returns the ids of the tokens this call revoked.
   */
  async revokeByGrant(tx: Kysely<any>, grantId: string, reason: string): Promise<string[]> {
    const now = this.#clock.now();
    const rows = (await tx
      .selectFrom('oauth_access_token_grants as g')
      .innerJoin('oauth_access_tokens as t', 't.jti', 'g.jti')
      .select('t.jti as jti')
      .where('g.grant_id', '=', grantId)
      .where('t.revoked_at', 'is', null)
      .where('t.expires_at', '>', now)
      .execute()) as { jti: string }[];
    const revoked: string[] = [];
    for (const { jti } of rows) if (await this.revoke(tx, jti, reason)) revoked.push(jti);
    return revoked;
  }

  async find(jti: string): Promise<IssuedToken | undefined> {
    const row = (await this.#store.db
      .selectFrom('oauth_access_tokens')
      .selectAll()
      .where('jti', '=', jti)
      .executeTakeFirst()) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /**
   * Marks a token revoked (idempotent) and tells every node on the change feed.
   * @returns true when this call revoked it.
   */
  async revoke(tx: Kysely<any>, jti: string, reason: string): Promise<boolean> {
    const result = await tx
      .updateTable('oauth_access_tokens')
      .set({ revoked_at: this.#clock.now(), revoked_reason: reason })
      .where('jti', '=', jti)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    const changed = Number(result.numUpdatedRows) === 1;
    if (changed) await this.#store.changes.publish('tokens.revoked', { jti }, tx);
    return changed;
  }

  /** Deletes records of tokens that expired more than `graceMs` ago. @returns how many. */
  async purge(graceMs = 24 * 3600 * 1000): Promise<number> {
    const before = this.#clock.now() - graceMs;
    await this.#store.db.deleteFrom('oauth_access_token_grants').where('expires_at', '<', before).execute();
    const result = await this.#store.db
      .deleteFrom('oauth_access_tokens')
      .where('expires_at', '<', before)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
