import { createHash } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { type Clock, ConflictError } from '../core/index.ts';
import type { Store } from '../store/index.ts';

type Pending = { id: string; expires: number; resolve: (won: boolean) => void; reject: (e: unknown) => void };

/** Claims per statement: keeps the statement's parameter count well inside every engine's limit. */
const MAX_BATCH = 200;

/** What a single-use id belongs to; decides how a lost race is answered. */
export type ClaimKind = 'client_assertion' | 'dpop_proof' | 'other';

type Reserved = { id: string; expires: number; kind: ClaimKind };

/**
 * One request's reserved single-use ids ({@link ReplayCache.reserve}), written to the store with
 * the request's outcome ({@link ReplayCache.write}, then {@link markSettled} once committed) or on
 * their own ({@link ReplayCache.settle}).
 */
export class ReplayClaims {
  readonly #reserved: Reserved[] = [];
  #written = false;

  /** True once the claims are known to be durable (or there were none). */
  get settled(): boolean {
    return this.#written || this.#reserved.length === 0;
  }

  /** Call once the transaction that {@link ReplayCache.write} wrote them in has committed. */
  markSettled(): void {
    this.#written = true;
  }

  /** @internal */
  add(claim: Reserved): void {
    this.#reserved.push(claim);
  }

  /** @internal */
  get reserved(): readonly Reserved[] {
    return this.#reserved;
  }
}

/** A reserved id was claimed by another request (on any node) before this one's write committed. */
export class ReplayDetectedError extends ConflictError {
  readonly kind: ClaimKind;
  constructor(kind: ClaimKind) {
    super(
      `${kind === 'client_assertion' ? 'client assertion' : kind === 'dpop_proof' ? 'DPoP proof' : 'single-use'} jti replay detected`,
      {
        code: 'ERR_REPLAY_DETECTED',
      },
    );
    this.kind = kind;
  }
}

/**
 * Single-use ids shared by every node: client assertion `jti`s (RFC 7523) and DPoP proof `jti`s
 * (RFC 9449). Claiming is atomic in the database (insert, or take over an expired row), so two
 * nodes racing on the same id cannot both win — unlike a find-then-save check.
 *
 * Two ways to claim:
 * - {@link claim}: durable before it answers. Claims arriving in the same event-loop turn are
 *   written by one statement (group commit).
 * - {@link reserve} then {@link write}: the id is reserved at once (refused if this node holds it
 *   or the store already has it) and inserted later inside the transaction that records the
 *   request's outcome, so a token request costs one durable commit instead of three. If another
 *   node won the id meanwhile, the insert finds it and {@link write} throws
 *   {@link ReplayDetectedError}: that transaction (and the token it would record) is rolled back.
 */
export class ReplayCache {
  readonly #store: Store;
  readonly #clock: Clock;
  #pending: Pending[] = [];
  #scheduled = false;
  /** Ids reserved on this node and not yet written. */
  readonly #reserved = new Set<string>();

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * Claims `(issuer, jti)` until `expiresAt` (epoch seconds).
   * @returns true the first time, false for a replay.
   */
  claim(issuer: string, jti: string, expiresAt: number): Promise<boolean> {
    return this.#enqueue(claimId(issuer, jti), this.#expiry(expiresAt));
  }

  /**
   * Reserves `(issuer, jti)` for `claims`, to be written with the request's outcome.
   * @returns false for a replay this node can already see (reserved here, or in the store).
   */
  async reserve(
    claims: ReplayClaims,
    issuer: string,
    jti: string,
    expiresAt: number,
    kind: ClaimKind,
  ): Promise<boolean> {
    const id = claimId(issuer, jti);
    if (this.#reserved.has(id)) return false;
    this.#reserved.add(id);
    try {
      const taken = await this.#store.db
        .selectFrom('oauth_replay')
        .select('id')
        .where('id', '=', id)
        .where('expires_at', '>', this.#clock.now())
        .executeTakeFirst();
      if (taken) {
        this.#reserved.delete(id);
        return false;
      }
    } catch (e) {
      this.#reserved.delete(id);
      throw e;
    }
    claims.add({ id, expires: this.#expiry(expiresAt), kind });
    return true;
  }

  /**
   * Writes `claims` inside `tx` (the transaction recording the request's outcome).
   * @param strict throw {@link ReplayDetectedError} when another request holds one of the ids
   *   (issuance); otherwise a lost id is left to its holder (a refusal is recorded either way).
   */
  async write(tx: Kysely<any>, claims: ReplayClaims, strict: boolean): Promise<void> {
    // Not consumed: if this transaction rolls back, the refusal (or the transaction run again in
    // audit fail mode `open`) writes them again; the caller marks them settled once committed.
    const taken = claims.reserved;
    if (taken.length === 0) return;
    try {
      const won = await this.#insert(tx, taken);
      if (!strict) return;
      const lost = taken.find((c) => !won.has(c.id));
      if (lost) throw new ReplayDetectedError(lost.kind);
    } finally {
      // From here the store decides: a later claim of the same id conflicts with this insert (or
      // waits for its transaction), so this node's early refusal is no longer needed.
      for (const c of taken) this.#reserved.delete(c.id);
    }
  }

  /**
   * Writes claims that no outcome transaction took (a request answered without one, e.g. a
   * DPoP nonce challenge), durably, before the answer goes out.
   * @throws ReplayDetectedError when another request won one of the ids.
   */
  async settle(claims: ReplayClaims): Promise<void> {
    if (claims.settled) return;
    const taken = claims.reserved;
    claims.markSettled();
    try {
      const won = await Promise.all(taken.map((c) => this.#enqueue(c.id, c.expires)));
      const lost = taken.find((_, i) => !won[i]);
      if (lost) throw new ReplayDetectedError(lost.kind);
    } finally {
      for (const c of taken) this.#reserved.delete(c.id);
    }
  }

  #expiry(expiresAt: number): number {
    return Math.max(expiresAt * 1000, this.#clock.now() + 1000);
  }

  #enqueue(id: string, expires: number): Promise<boolean> {
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
    try {
      const won = await this.#insert(this.#store.db, [...first.values()]);
      for (const p of first.values()) p.resolve(won.has(p.id));
    } catch (e) {
      for (const p of first.values()) p.reject(e);
    }
  }

  /** Inserts ids, or takes over expired ones. @returns the ids this statement won. */
  async #insert(db: Kysely<any>, claims: readonly { id: string; expires: number }[]): Promise<Set<string>> {
    const now = this.#clock.now();
    const won = new Set<string>();
    for (let i = 0; i < claims.length; i += MAX_BATCH) {
      const rows = await db
        .insertInto('oauth_replay')
        .values(claims.slice(i, i + MAX_BATCH).map((c) => ({ id: c.id, expires_at: c.expires })))
        .onConflict((oc) =>
          oc
            .column('id')
            .doUpdateSet({ expires_at: sql`excluded.expires_at` })
            .where('oauth_replay.expires_at', '<=', now),
        )
        .returning('id')
        .execute();
      for (const r of rows) won.add(r.id as string);
    }
    return won;
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

function claimId(issuer: string, jti: string): string {
  return createHash('sha256').update(issuer).update('\0').update(jti).digest('base64url');
}
