import type { Clock } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import { type AccessTokenClaims, TokenRefusal } from './access-token.ts';

/** The token service's record of issued tokens, as the gateway reads it. */
export interface IssuedTokenLookup {
  find(jti: string): Promise<{ revokedAt: number | null; expiresAt: number } | undefined>;
}

/** Checks that a verified token is still in force (issued here, not revoked). */
export interface TokenStatus {
  /** @throws TokenRefusal */
  check(claims: AccessTokenClaims): Promise<void>;
}

/**
 * Token revocation at the gateway without a database read per call: the first time a node sees a
 * token id it reads the token record once; afterwards the change feed (`tokens.revoked`, published
 * by the token service in the revoking transaction) marks it revoked on every node within a
 * second, before the token expires.
 */
export class RevocationGate implements TokenStatus {
  readonly #lookup: IssuedTokenLookup;
  readonly #clock: Clock;
  readonly #known = new Map<string, { revoked: boolean; expiresAt: number }>();
  readonly #unsubscribe: () => void;

  constructor(lookup: IssuedTokenLookup, store: Store, clock: Clock, channel = 'tokens.revoked') {
    this.#lookup = lookup;
    this.#clock = clock;
    this.#unsubscribe = store.changes.subscribe(channel, (c) => {
      const jti = String(c.payload.jti ?? '');
      const entry = this.#known.get(jti);
      this.#known.set(jti, { revoked: true, expiresAt: entry?.expiresAt ?? this.#clock.now() + 3_600_000 });
    });
  }

  async check(claims: AccessTokenClaims): Promise<void> {
    let entry = this.#known.get(claims.jti);
    if (!entry) {
      const record = await this.#lookup.find(claims.jti);
      if (!record)
        throw new TokenRefusal('ERR_TOKEN_UNKNOWN', 'the access token was not issued by this Warden');
      // A revocation that arrived on the feed while the record was read wins.
      entry = this.#known.get(claims.jti) ?? {
        revoked: record.revokedAt !== null,
        expiresAt: record.expiresAt,
      };
      this.#known.set(claims.jti, entry);
      if (this.#known.size % 1000 === 0) this.#prune();
    }
    if (entry.revoked) throw new TokenRefusal('ERR_TOKEN_REVOKED', 'the access token has been revoked');
  }

  #prune(): void {
    const now = this.#clock.now();
    for (const [jti, e] of this.#known) if (e.expiresAt < now - 60_000) this.#known.delete(jti);
  }

  close(): void {
    this.#unsubscribe();
  }
}
