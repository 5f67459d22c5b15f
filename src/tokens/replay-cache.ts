import { createHash } from 'node:crypto';
import type { Clock } from '../core/index.ts';
import type { Store } from '../store/index.ts';

/**
 * Single-use ids shared by every node: client assertion `jti`s (RFC 7523) and DPoP proof `jti`s
 * (RFC 9449). Claiming is one atomic statement (insert, or take over an expired row), so two
 * nodes racing on the same id cannot both win — unlike a find-then-save check.
 */
export class ReplayCache {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * Claims `(issuer, jti)` until `expiresAt` (epoch seconds).
   * @returns true the first time, false for a replay.
   */
  async claim(issuer: string, jti: string, expiresAt: number): Promise<boolean> {
    const id = createHash('sha256').update(issuer).update('\0').update(jti).digest('base64url');
    const now = this.#clock.now();
    const expires = Math.max(expiresAt * 1000, now + 1000);
    const result = await this.#store.db
      .insertInto('oauth_replay')
      .values({ id, expires_at: expires })
      .onConflict((oc) =>
        oc.column('id').doUpdateSet({ expires_at: expires }).where('oauth_replay.expires_at', '<=', now),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Deletes expired ids. @returns how many. */
  async purge(): Promise<number> {
    const result = await this.#store.db
      .deleteFrom('oauth_replay')
      .where('expires_at', '<=', this.#clock.now())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
