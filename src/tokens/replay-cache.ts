import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Clock } from '../core/index.ts';
import type { Store } from '../store/index.ts';

type Pending = { id: string; expires: number; resolve: (won: boolean) => void; reject: (e: unknown) => void };

/** Claims per statement: keeps the statement's parameter count well inside every engine's limit. */
const MAX_BATCH = 200;

/**
 * Single-use ids shared by every node: client assertion `jti`s (RFC 7523) and DPoP proof `jti`s
 * (RFC 9449). Claiming is atomic in the database (insert, or take over an expired row), so two
 * nodes racing on the same id cannot both win — unlike a find-then-save check. Claims arriving in
 * the same event-loop turn are written by one statement (group commit): one durable write serves
 * many requests instead of one fsync each.
 */
export class ReplayCache {
  readonly #store: Store;
  readonly #clock: Clock;
  #pending: Pending[] = [];
  #scheduled = false;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * Claims `(issuer, jti)` until `expiresAt` (epoch seconds).
   * @returns true the first time, false for a replay.
   */
  claim(issuer: string, jti: string, expiresAt: number): Promise<boolean> {
    const id = createHash('sha256').update(issuer).update('\0').update(jti).digest('base64url');
    const expires = Math.max(expiresAt * 1000, this.#clock.now() + 1000);
    return new Promise((resolve, reject) => {
      this.#pending.push({ id, expires, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    const batch = this.#pending;
    this.#pending = [];
    this.#scheduled = false;
    for (let i = 0; i < batch.length; i += MAX_BATCH) {
      this.#write(batch.slice(i, i + MAX_BATCH)).catch(() => undefined);
    }
  }

  async #write(batch: Pending[]): Promise<void> {
    // The same id twice in one batch: only the first can win.
    const first = new Map<string, Pending>();
    for (const p of batch) {
      if (first.has(p.id)) p.resolve(false);
      else first.set(p.id, p);
    }
    const now = this.#clock.now();
    try {
      const rows = await this.#store.db
        .insertInto('oauth_replay')
        .values([...first.values()].map((p) => ({ id: p.id, expires_at: p.expires })))
        .onConflict((oc) =>
          oc
            .column('id')
            .doUpdateSet({ expires_at: sql`excluded.expires_at` })
            .where('oauth_replay.expires_at', '<=', now),
        )
        .returning('id')
        .execute();
      const won = new Set(rows.map((r) => r.id as string));
      for (const p of first.values()) p.resolve(won.has(p.id));
    } catch (e) {
      for (const p of first.values()) p.reject(e);
    }
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
