import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AdapterPayload } from 'oidc-provider';
import { type Clock, type Keyring, SealError } from '../core/index.ts';
import type { Store } from '../store/index.ts';

/** The library models Warden persists for the interactive (authorization_code) flow. */
export const PERSISTED_MODELS = new Set([
  'Session',
  'Interaction',
  'AuthorizationCode',
  'Grant',
  'BackchannelAuthenticationRequest',
]);
/** Warden's own record kind beside the library's: an access token issued under a library grant. */
const TOKEN_REF = 'TokenRef';

type Row = {
  model: string;
  id_hash: string;
  payload_sealed: string;
  uid_hash: string | null;
  grant_id: string | null;
  expires_at: number;
  consumed_at: number | null;
};

/** Ids of these models are bearer values (session cookie, authorization code, interaction uid). */
function hashId(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

function aadOf(model: string, idHash: string): string {
  return `tokens.provider_record:${model}:${idHash}`;
}

/**
 * oidc-provider's state for the authorization_code flow (sessions, interactions, authorization
 * codes, grants) in the store, so any node can continue a flow another node started. Ids are kept
 * only as SHA-256 hashes and payloads are sealed with the keyring (they hold session ids and
 * codes): a database dump reveals no usable value. Consuming a code is one conditional update, so
 * two nodes racing on one code cannot both succeed.
 */
export class ProviderRecords {
  readonly #store: Store;
  readonly #keyring: Keyring;
  readonly #clock: Clock;

  constructor(store: Store, keyring: Keyring, clock: Clock) {
    this.#store = store;
    this.#keyring = keyring;
    this.#clock = clock;
  }

  async upsert(model: string, id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const idHash = hashId(id);
    const row: Row = {
      model,
      id_hash: idHash,
      payload_sealed: this.#keyring.seal(JSON.stringify(payload), aadOf(model, idHash)),
      uid_hash: typeof payload.uid === 'string' ? hashId(payload.uid) : null,
      grant_id: typeof payload.grantId === 'string' ? payload.grantId : null,
      expires_at: this.#clock.now() + Math.max(1, expiresIn) * 1000,
      consumed_at: null,
    };
    await this.#store.db
      .insertInto('oauth_provider_records')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['model', 'id_hash']).doUpdateSet({
          payload_sealed: row.payload_sealed,
          uid_hash: row.uid_hash,
          grant_id: row.grant_id,
          expires_at: row.expires_at,
        }),
      )
      .execute();
  }

  async find(model: string, id: string): Promise<AdapterPayload | undefined> {
    const row = (await this.#store.db
      .selectFrom('oauth_provider_records')
      .selectAll()
      .where('model', '=', model)
      .where('id_hash', '=', hashId(id))
      .executeTakeFirst()) as Row | undefined;
    return this.#open(row);
  }

  async findByUid(model: string, uid: string): Promise<AdapterPayload | undefined> {
    const row = (await this.#store.db
      .selectFrom('oauth_provider_records')
      .selectAll()
      .where('model', '=', model)
      .where('uid_hash', '=', hashId(uid))
      .executeTakeFirst()) as Row | undefined;
    return this.#open(row);
  }

  /**
   * Marks a record consumed, once.
   * @returns false when it was already consumed (by this or another node).
   */
  async consume(model: string, id: string): Promise<boolean> {
    const result = await this.#store.db
      .updateTable('oauth_provider_records')
      .set({ consumed_at: this.#clock.now() })
      .where('model', '=', model)
      .where('id_hash', '=', hashId(id))
      .where('consumed_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async destroy(model: string, id: string): Promise<void> {
    await this.#store.db
      .deleteFrom('oauth_provider_records')
      .where('model', '=', model)
      .where('id_hash', '=', hashId(id))
      .execute();
  }

  /** Deletes every record of `model` under a grant (codes of a revoked grant). */
  async revokeByGrantId(model: string, grantId: string, db: Kysely<any> = this.#store.db): Promise<void> {
    await db
      .deleteFrom('oauth_provider_records')
      .where('model', '=', model)
      .where('grant_id', '=', grantId)
      .execute();
  }

  /** Deletes a grant and everything issued under it (used when its Warden grant is revoked). */
  async destroyGrant(grantId: string, db: Kysely<any> = this.#store.db): Promise<void> {
    await db
      .deleteFrom('oauth_provider_records')
      .where((eb) =>
        eb.or([
          eb('grant_id', '=', grantId),
          eb.and([eb('model', '=', 'Grant'), eb('id_hash', '=', hashId(grantId))]),
        ]),
      )
      .execute();
  }

  /**
   * Remembers, inside the caller's transaction, that an access token was issued under a library
   * grant that is no Warden delegation grant (the console's), so a replayed code can still reach
   * it. Delegated tokens are found through their `grant_id` instead.
   */
  async noteIssued(tx: Kysely<any>, grantId: string, jti: string, expiresAt: number): Promise<void> {
    const idHash = hashId(jti);
    await tx
      .insertInto('oauth_provider_records')
      .values({
        model: TOKEN_REF,
        id_hash: idHash,
        payload_sealed: this.#keyring.seal(JSON.stringify({ jti }), aadOf(TOKEN_REF, idHash)),
        uid_hash: null,
        grant_id: grantId,
        expires_at: expiresAt,
        consumed_at: null,
      })
      .execute();
  }

  /** Ids (`jti`) of the unexpired access tokens noted under a library grant. */
  async tokensOf(grantId: string, db: Kysely<any> = this.#store.db): Promise<string[]> {
    const rows = (await db
      .selectFrom('oauth_provider_records')
      .selectAll()
      .where('model', '=', TOKEN_REF)
      .where('grant_id', '=', grantId)
      .execute()) as Row[];
    return rows
      .map((r) => this.#open(r))
      .map((p) => (typeof p?.jti === 'string' ? p.jti : undefined))
      .filter((j): j is string => j !== undefined);
  }

  /** Deletes expired records. @returns how many. */
  async purge(): Promise<number> {
    const result = await this.#store.db
      .deleteFrom('oauth_provider_records')
      .where('expires_at', '<=', this.#clock.now())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  #open(row: Row | undefined): AdapterPayload | undefined {
    if (!row || Number(row.expires_at) <= this.#clock.now()) return undefined;
    let payload: AdapterPayload;
    try {
      payload = JSON.parse(
        this.#keyring.openText(row.payload_sealed, aadOf(row.model, row.id_hash)),
      ) as AdapterPayload;
    } catch (e) {
      // Sealed under a master key since retired: the flow starts over.
      if (e instanceof SealError) return undefined;
      throw e;
    }
    return row.consumed_at === null ? payload : { ...payload, consumed: Math.floor(row.consumed_at / 1000) };
  }
}

/** Re-wraps the sealed payloads under the current master key (`warden keys rotate-master`). */
export async function rewrapProviderRecords(tx: Kysely<any>, keyring: Keyring): Promise<number> {
  const rows = (await tx
    .selectFrom('oauth_provider_records')
    .select(['model', 'id_hash', 'payload_sealed'])
    .execute()) as Pick<Row, 'model' | 'id_hash' | 'payload_sealed'>[];
  for (const row of rows) {
    await tx
      .updateTable('oauth_provider_records')
      .set({ payload_sealed: keyring.rewrap(row.payload_sealed) })
      .where('model', '=', row.model)
      .where('id_hash', '=', row.id_hash)
      .execute();
  }
  return rows.length;
}
