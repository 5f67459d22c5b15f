import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { Clock, Keyring } from '../core/index.ts';
import { isUniqueViolation, type Store } from '../store/index.ts';
import { rewrapProviderRecords } from './provider-records.ts';

/** Algorithms Warden signs access tokens with. */
export type SigningAlg = 'ES256' | 'EdDSA' | 'RS256';

/**
 * The longest an access token can live (the template maximum), plus a margin for clock skew and
 * for nodes that learn of a rotation a little late: an old key stays published this long after
 * it stopped signing, so every token it signed has expired before it disappears.
 */
export const MAX_TOKEN_LIFETIME_MS = 3600 * 1000;
const PUBLISH_MARGIN_MS = 5 * 60 * 1000;

type KeyRow = {
  kid: string;
  alg: SigningAlg;
  public_jwk: string;
  private_jwk_sealed: string;
  created_at: number;
  superseded_at: number | null;
  publish_until: number | null;
};

/** A loaded signing key: the private JWK exists only in memory. */
export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  publicJwk: JWK;
  privateJwk: JWK;
  createdAt: number;
  supersededAt: number | null;
  publishUntil: number | null;
}

function aadOf(kid: string): string {
  return `tokens.signing_key:${kid}`;
}

/** Makes a fresh key pair for `alg`; its kid is the RFC 7638 thumbprint of the public key. */
async function generate(alg: SigningAlg): Promise<{ kid: string; publicJwk: JWK; privateJwk: JWK }> {
  const { privateKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return {
    kid,
    publicJwk: { ...pub, kid, alg, use: 'sig' },
    privateJwk: { ...jwk, kid, alg, use: 'sig' },
  };
}

/**
 * The authorization server's signing keys. Private keys are sealed with the master key in the
 * store and opened only when loaded. One key signs (the newest); superseded keys stay published
 * until every token they signed has expired, then they are deleted.
 */
export class SigningKeyStore {
  readonly #store: Store;
  readonly #keyring: Keyring;
  readonly #clock: Clock;

  constructor(store: Store, keyring: Keyring, clock: Clock) {
    this.#store = store;
    this.#keyring = keyring;
    this.#clock = clock;
  }

  /**
   * Every key still published, newest first (the first one signs). Creates the first key when
   * there is none; if two nodes race to do so, both keys are kept and the newest signs.
   */
  async load(alg: SigningAlg): Promise<SigningKey[]> {
    let keys = await this.#loadPublished();
    if (!keys.some((k) => k.supersededAt === null && k.alg === alg)) {
      await this.rotate(alg);
      keys = await this.#loadPublished();
    }
    return keys;
  }

  async #loadPublished(): Promise<SigningKey[]> {
    const now = this.#clock.now();
    const rows = (await this.#store.db
      .selectFrom('oauth_signing_keys')
      .selectAll()
      .where((eb) => eb.or([eb('publish_until', 'is', null), eb('publish_until', '>', now)]))
      .orderBy('created_at', 'desc')
      .orderBy('kid', 'desc')
      .execute()) as KeyRow[];
    const keys = rows.map((row) => ({
      kid: row.kid,
      alg: row.alg,
      publicJwk: JSON.parse(row.public_jwk) as JWK,
      privateJwk: JSON.parse(this.#keyring.openText(row.private_jwk_sealed, aadOf(row.kid))) as JWK,
      createdAt: Number(row.created_at),
      supersededAt: row.superseded_at === null ? null : Number(row.superseded_at),
      publishUntil: row.publish_until === null ? null : Number(row.publish_until),
    }));
    // Active keys first (more than one only after a start-up race), then newest first.
    return keys.sort(
      (a, b) =>
        Number(a.supersededAt !== null) - Number(b.supersededAt !== null) || b.createdAt - a.createdAt,
    );
  }

  /**
   * Makes a new key the active one. Keys it supersedes keep being published until
   * {@link MAX_TOKEN_LIFETIME_MS} plus a margin after now; expired keys are deleted.
   * @returns the new key id.
   */
  async rotate(alg: SigningAlg, tx?: Kysely<any>): Promise<string> {
    const key = await generate(alg);
    const write = async (db: Kysely<any>) => {
      const now = this.#clock.now();
      await db
        .updateTable('oauth_signing_keys')
        .set({ superseded_at: now, publish_until: now + MAX_TOKEN_LIFETIME_MS + PUBLISH_MARGIN_MS })
        .where('superseded_at', 'is', null)
        .execute();
      await db
        .insertInto('oauth_signing_keys')
        .values({
          kid: key.kid,
          alg,
          public_jwk: JSON.stringify(key.publicJwk),
          private_jwk_sealed: this.#keyring.seal(JSON.stringify(key.privateJwk), aadOf(key.kid)),
          created_at: now,
          superseded_at: null,
          publish_until: null,
        })
        .execute();
      await this.#deleteExpired(db, now);
      await this.#store.changes.publish('tokens.keys', { kid: key.kid }, db);
    };
    if (tx) await write(tx);
    else await this.#store.transaction(write);
    return key.kid;
  }

  /** The age of the active key in milliseconds, or undefined when there is none. */
  async activeAge(db: Kysely<any> = this.#store.db): Promise<number | undefined> {
    const active = (await db
      .selectFrom('oauth_signing_keys')
      .select(['created_at'])
      .where('superseded_at', 'is', null)
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst()) as { created_at: number } | undefined;
    return active ? this.#clock.now() - Number(active.created_at) : undefined;
  }

  /** Every stored key's public facts (no key material), newest first. */
  async list(): Promise<
    {
      kid: string;
      alg: string;
      created_at: number;
      superseded_at: number | null;
      publish_until: number | null;
    }[]
  > {
    const rows = (await this.#store.db
      .selectFrom('oauth_signing_keys')
      .select(['kid', 'alg', 'created_at', 'superseded_at', 'publish_until'])
      .orderBy('created_at', 'desc')
      .execute()) as KeyRow[];
    return rows.map((r) => ({
      kid: r.kid,
      alg: r.alg,
      created_at: Number(r.created_at),
      superseded_at: r.superseded_at === null ? null : Number(r.superseded_at),
      publish_until: r.publish_until === null ? null : Number(r.publish_until),
    }));
  }

  /**
   * Rotates when the active key is older than `intervalMs`. Safe to call from every node: the
   * rotation only happens if the key it saw is still the active one.
   * @returns the new key id, or undefined when no rotation was due.
   */
  async rotateIfDue(alg: SigningAlg, intervalMs: number, tx?: Kysely<any>): Promise<string | undefined> {
    const age = await this.activeAge(tx);
    if (age !== undefined && age < intervalMs) return undefined;
    try {
      return await this.rotate(alg, tx);
    } catch (e) {
      if (isUniqueViolation(e)) return undefined;
      throw e;
    }
  }

  async #deleteExpired(db: Kysely<any>, now: number): Promise<void> {
    await db
      .deleteFrom('oauth_signing_keys')
      .where('publish_until', 'is not', null)
      .where('publish_until', '<=', now)
      .execute();
  }
}

/**
 * Re-wraps every sealed token-service secret (signing keys, DPoP nonce secret) under the current
 * master key; call it from `warden keys rotate-master`. @returns how many values were re-wrapped.
 */
export async function rewrapTokenKeys(store: Store, keyring: Keyring): Promise<number> {
  return store.transaction(async (tx) => {
    let count = 0;
    const keys = (await tx
      .selectFrom('oauth_signing_keys')
      .select(['kid', 'private_jwk_sealed'])
      .execute()) as {
      kid: string;
      private_jwk_sealed: string;
    }[];
    for (const row of keys) {
      await tx
        .updateTable('oauth_signing_keys')
        .set({ private_jwk_sealed: keyring.rewrap(row.private_jwk_sealed) })
        .where('kid', '=', row.kid)
        .execute();
      count += 1;
    }
    const secrets = (await tx.selectFrom('oauth_secrets').select(['name', 'sealed']).execute()) as {
      name: string;
      sealed: string;
    }[];
    for (const row of secrets) {
      await tx
        .updateTable('oauth_secrets')
        .set({ sealed: keyring.rewrap(row.sealed) })
        .where('name', '=', row.name)
        .execute();
      count += 1;
    }
    count += await rewrapProviderRecords(tx, keyring);
    return count;
  });
}
