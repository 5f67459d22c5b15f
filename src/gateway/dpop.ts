import { createHash } from 'node:crypto';
import {
  base64url,
  calculateJwkThumbprint,
  decodeProtectedHeader,
  errors,
  importJWK,
  type JWK,
  jwtVerify,
} from 'jose';
import type { Clock } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import { TokenRefusal } from './access-token.ts';

/** Asymmetric algorithms accepted for DPoP proofs (never `none`, never HMAC). */
export const DPOP_ALGS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'RS256'] as const;

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];

/**
 * Remembers DPoP proof ids for as long as a proof is acceptable, across every node. `claim`
 * returns false when the key was already used.
 */
export interface ReplayCache {
  claim(key: string, expiresAt: number): Promise<boolean>;
}

/**
 * The replay cache in the shared store: a primary-key insert per proof, so every node sees it.
 * Claims arriving together are written in one statement (`ON CONFLICT DO NOTHING … RETURNING`),
 * so concurrent calls share a commit instead of queueing for one each. On SQLite that commit is
 * not flushed to disk by itself ({@link Store.withoutSync}): the call's audit event, committed
 * before the response, flushes it (a second fsync per call otherwise).
 */
export class StoreReplayCache implements ReplayCache {
  readonly #store: Store;
  readonly #clock: Clock;
  #lastPrune = 0;
  #pending: {
    key: string;
    expiresAt: number;
    resolve: (fresh: boolean) => void;
    reject: (e: unknown) => void;
  }[] = [];
  #flushing = false;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  claim(key: string, expiresAt: number): Promise<boolean> {
    const now = this.#clock.now();
    if (now - this.#lastPrune > 60_000) {
      this.#lastPrune = now;
      void this.#store.db
        .deleteFrom('gateway_dpop_proofs')
        .where('expires_at', '<', now)
        .execute()
        .catch(() => {});
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ key, expiresAt, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, 500);
        const unique = [...new Map(batch.map((c) => [c.key, c])).values()];
        try {
          // Not flushed on its own (SQLite): the claim is visible and survives a process crash at
          // once, and is on disk once the call's audit event commits, before any response.
          const rows = await this.#store.withoutSync((db) =>
            db
              .insertInto('gateway_dpop_proofs')
              .values(unique.map((c) => ({ key: c.key, expires_at: c.expiresAt })))
              .onConflict((oc) => oc.column('key').doNothing())
              .returning('key')
              .execute(),
          );
          const inserted = new Set(rows.map((r) => r.key as string));
          const granted = new Set<string>();
          for (const c of batch) {
            // The first claim of a newly inserted key wins; every other claim is a replay.
            const fresh = inserted.has(c.key) && !granted.has(c.key);
            if (fresh) granted.add(c.key);
            c.resolve(fresh);
          }
        } catch (e) {
          for (const c of batch) c.reject(e);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}

export interface DpopVerifierOptions {
  clock: Clock;
  replay: ReplayCache;
  /** How old (or how far in the future) a proof's `iat` may be, in seconds. */
  windowSeconds?: number;
  algorithms?: readonly string[];
}

/** What a request presents for a DPoP check. */
export interface DpopInput {
  /** Every value of the `DPoP` header (exactly one is required). */
  proofs: string[];
  method: string;
  /** The request URL as the client addressed it. */
  url: string;
  accessToken: string;
  /** `cnf.jkt` of the access token. */
  jkt: string;
}

/** base64url(SHA-256(access token)): the `ath` claim of a proof at a resource server. */
export function accessTokenHash(token: string): string {
  return base64url.encode(createHash('sha256').update(token, 'ascii').digest());
}

/** `htu` comparison form: scheme and host lower-case, no query, no fragment (RFC 9449 §4.3). */
export function normalizeHtu(value: string): string | undefined {
  try {
    const u = new URL(value);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return undefined;
  }
}

/**
 * Checks a DPoP proof at a resource server (RFC 9449 §4.3 and §7.1): one proof, `typ dpop+jwt`,
 * an asymmetric algorithm, a public `jwk` that verifies the signature, `htm`/`htu` equal to this
 * request, a fresh `iat`, a `jti` never seen before on any node, `ath` bound to the presented
 * token, and the key's RFC 7638 thumbprint equal to the token's `cnf.jkt`.
 */
export class DpopVerifier {
  readonly #clock: Clock;
  readonly #replay: ReplayCache;
  readonly #window: number;
  readonly #algs: readonly string[];

  constructor(options: DpopVerifierOptions) {
    this.#clock = options.clock;
    this.#replay = options.replay;
    this.#window = options.windowSeconds ?? 60;
    this.#algs = options.algorithms ?? DPOP_ALGS;
  }

  get algorithms(): readonly string[] {
    return this.#algs;
  }

  /** Imported proof keys and their thumbprints, by their JWK: an agent signs every proof with the same key. */
  readonly #keys = new Map<
    string,
    Promise<{ key: Awaited<ReturnType<typeof importJWK>>; thumbprint: string }>
  >();

  #importKey(
    jwk: JWK,
    alg: string,
  ): Promise<{ key: Awaited<ReturnType<typeof importJWK>>; thumbprint: string }> {
    const id = `${alg}:${JSON.stringify(jwk)}`;
    let entry = this.#keys.get(id);
    if (!entry) {
      if (this.#keys.size >= 10_000) this.#keys.clear();
      entry = Promise.all([importJWK(jwk, alg), calculateJwkThumbprint(jwk, 'sha256')]).then(
        ([key, thumbprint]) => ({ key, thumbprint }),
      );
      entry.catch(() => this.#keys.delete(id));
      this.#keys.set(id, entry);
    }
    return entry;
  }

  /** @throws TokenRefusal with an `ERR_DPOP_…` code. */
  async verify(input: DpopInput): Promise<void> {
    if (input.proofs.length !== 1) {
      throw bad(input.proofs.length === 0 ? 'a DPoP proof is required' : 'exactly one DPoP proof is allowed');
    }
    const proof = input.proofs[0] as string;
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(proof))
      throw bad('the DPoP proof is not a compact JWS');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(proof);
    } catch {
      throw bad('the DPoP proof header is malformed');
    }
    if (header.typ !== 'dpop+jwt') throw bad('the DPoP proof typ must be dpop+jwt');
    if (typeof header.alg !== 'string' || !this.#algs.includes(header.alg)) {
      throw bad('the DPoP proof algorithm is not accepted');
    }
    const jwk = header.jwk as JWK | undefined;
    if (!jwk || typeof jwk !== 'object') throw bad('the DPoP proof has no jwk header');
    if (PRIVATE_MEMBERS.some((m) => m in jwk)) throw bad('the DPoP proof jwk must be a public key');
    let payload: Record<string, unknown>;
    let thumbprint: string;
    try {
      const imported = await this.#importKey(jwk, header.alg);
      const key = imported.key;
      thumbprint = imported.thumbprint;
      ({ payload } = await jwtVerify(proof, key, {
        typ: 'dpop+jwt',
        algorithms: [header.alg],
        currentDate: new Date(this.#clock.now()),
        clockTolerance: this.#window,
        requiredClaims: ['jti', 'htm', 'htu', 'iat'],
      }));
    } catch (e) {
      if (e instanceof errors.JWSSignatureVerificationFailed)
        throw bad('the DPoP proof signature is invalid');
      throw bad('the DPoP proof is invalid');
    }
    if (payload.htm !== input.method) throw bad('the DPoP proof htm does not match the request method');
    const htu = typeof payload.htu === 'string' ? normalizeHtu(payload.htu) : undefined;
    if (!htu || htu !== normalizeHtu(input.url))
      throw bad('the DPoP proof htu does not match the request URL');
    const now = Math.floor(this.#clock.now() / 1000);
    const iat = payload.iat as number;
    if (Math.abs(now - iat) > this.#window) throw bad('the DPoP proof iat is outside the accepted window');
    if (typeof payload.jti !== 'string' || payload.jti.length < 8 || payload.jti.length > 256) {
      throw bad('the DPoP proof jti is missing or malformed');
    }
    if (payload.ath !== accessTokenHash(input.accessToken)) {
      throw bad('the DPoP proof ath does not match the access token');
    }
    if (thumbprint !== input.jkt) throw bad('the DPoP proof key is not the key the access token is bound to');
    const key = createHash('sha256').update(`${thumbprint}\n${payload.jti}`).digest('base64url');
    const fresh = await this.#replay.claim(key, (iat + this.#window) * 1000 + 1000);
    if (!fresh) throw bad('the DPoP proof was already used');
  }
}

function bad(message: string): TokenRefusal {
  return new TokenRefusal('ERR_DPOP_INVALID', message);
}
