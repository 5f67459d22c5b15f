import type { Kysely } from 'kysely';
import { type Clock, ConflictError, type Keyring, NotFoundError, uuidv7 } from '../core/index.ts';
import {
  joinSecrets,
  parseSinkDefinition,
  SECRET_PATHS,
  type SinkDefinition,
  type SinkType,
  splitSecrets,
} from './sink-definition.ts';

/** A sink as the API shows it: its configuration without secrets, and which secrets are set. */
export interface SinkView {
  id: string;
  name: string;
  type: SinkType;
  format: string;
  enabled: boolean;
  /** The definition minus its secret members. */
  config: Record<string, unknown>;
  /** Names of the secret members that hold a value (the values are never shown). */
  secretsSet: string[];
  /** `api` (admin API / CLI / library) or `config` (the config file). */
  source: 'api' | 'config';
  version: number;
  createdAt: number;
  updatedAt: number;
}

/** A stored sink with its full (unsealed) definition, for the exporter's own use only. */
export interface StoredSink extends SinkView {
  definition: SinkDefinition;
}

interface SinkRow {
  id: string;
  name: string;
  type: string;
  format: string;
  enabled: number;
  config: string;
  secrets_sealed: string | null;
  source: string;
  version: number;
  created_at: number;
  updated_at: number;
}

function aadOf(id: string): string {
  return `export.sink:${id}`;
}

/** Reads and writes sinks and cursors. Secrets are sealed under the keyring, bound to the sink id. */
export class SinkStore {
  readonly #keyring: Keyring;
  readonly #clock: Clock;

  constructor(keyring: Keyring, clock: Clock) {
    this.#keyring = keyring;
    this.#clock = clock;
  }

  #decode(row: SinkRow): StoredSink {
    const config = JSON.parse(row.config) as Record<string, unknown>;
    const secrets = row.secrets_sealed
      ? (JSON.parse(this.#keyring.openText(row.secrets_sealed, aadOf(row.id))) as Record<string, string>)
      : {};
    const type = row.type as SinkType;
    return {
      id: row.id,
      name: row.name,
      type,
      format: row.format,
      enabled: Number(row.enabled) === 1,
      config,
      secretsSet: SECRET_PATHS[type].filter((p) => p in secrets),
      source: row.source === 'config' ? 'config' : 'api',
      version: Number(row.version),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
      definition: parseSinkDefinition(joinSecrets(config, secrets), 'stored'),
    };
  }

  async list(db: Kysely<any>): Promise<StoredSink[]> {
    const rows = await db.selectFrom('export_sinks').selectAll().orderBy('name').execute();
    return rows.map((r) => this.#decode(r as SinkRow));
  }

  async find(db: Kysely<any>, name: string): Promise<StoredSink | undefined> {
    const row = await db.selectFrom('export_sinks').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? this.#decode(row as SinkRow) : undefined;
  }

  async get(db: Kysely<any>, name: string): Promise<StoredSink> {
    const sink = await this.find(db, name);
    if (!sink) throw new NotFoundError(`no export sink named ${name}`, { code: 'ERR_SINK_NOT_FOUND' });
    return sink;
  }

  /** Inserts a sink; with `startAt: now`, its cursors start at the current ledger heads. */
  async insert(
    tx: Kysely<any>,
    def: SinkDefinition,
    source: 'api' | 'config',
    heads: { partition: string; head: number }[],
  ): Promise<StoredSink> {
    if (await this.find(tx, def.name)) {
      throw new ConflictError(`an export sink named ${def.name} already exists`, { code: 'ERR_SINK_EXISTS' });
    }
    const id = uuidv7(this.#clock);
    const now = this.#clock.now();
    const { config, secrets } = splitSecrets(def);
    await tx
      .insertInto('export_sinks')
      .values({
        id,
        name: def.name,
        type: def.type,
        format: def.format,
        enabled: def.enabled ? 1 : 0,
        config: JSON.stringify(config),
        secrets_sealed: Object.keys(secrets).length
          ? this.#keyring.seal(JSON.stringify(secrets), aadOf(id))
          : null,
        source,
        version: 1,
        created_at: now,
        updated_at: now,
      })
      .execute();
    if (def.startAt === 'now') {
      for (const h of heads) await this.saveCursor(tx, id, h.partition, h.head);
    }
    return this.get(tx, def.name);
  }

  /** Replaces a sink's definition (its name and type stay). */
  async replace(
    tx: Kysely<any>,
    current: StoredSink,
    def: SinkDefinition,
    source: 'api' | 'config',
  ): Promise<StoredSink> {
    const { config, secrets } = splitSecrets(def);
    await tx
      .updateTable('export_sinks')
      .set({
        format: def.format,
        enabled: def.enabled ? 1 : 0,
        config: JSON.stringify(config),
        secrets_sealed: Object.keys(secrets).length
          ? this.#keyring.seal(JSON.stringify(secrets), aadOf(current.id))
          : null,
        source,
        version: current.version + 1,
        updated_at: this.#clock.now(),
      })
      .where('id', '=', current.id)
      .execute();
    return this.get(tx, def.name);
  }

  async remove(tx: Kysely<any>, sink: StoredSink): Promise<void> {
    await tx.deleteFrom('export_leases').where('sink_id', '=', sink.id).execute();
    await tx.deleteFrom('export_cursors').where('sink_id', '=', sink.id).execute();
    await tx.deleteFrom('export_sinks').where('id', '=', sink.id).execute();
  }

  /** The sink's confirmed position in each partition. */
  async cursors(db: Kysely<any>, sinkId: string): Promise<Map<string, number>> {
    const rows = await db
      .selectFrom('export_cursors')
      .select(['partition', 'seq'])
      .where('sink_id', '=', sinkId)
      .execute();
    return new Map(rows.map((r) => [r.partition as string, Number(r.seq)]));
  }

  /**
   * The highest seq of `partition` every enabled sink has confirmed (0 where one has no cursor
   * there yet); `Infinity` when no sink is enabled. Disabled sinks hold nothing back.
   */
  async confirmedThrough(db: Kysely<any>, partition: string): Promise<number> {
    const rows = await db
      .selectFrom('export_sinks as s')
      .leftJoin('export_cursors as c', (join) =>
        join.onRef('c.sink_id', '=', 's.id').on('c.partition', '=', partition),
      )
      .select(['s.id', 'c.seq'])
      .where('s.enabled', '=', 1)
      .execute();
    return rows.reduce((min, r) => Math.min(min, Number(r.seq ?? 0)), Number.POSITIVE_INFINITY);
  }

  /** Moves a cursor forward (never back: a late commit from a former lease holder cannot rewind it). */
  async saveCursor(db: Kysely<any>, sinkId: string, partition: string, seq: number): Promise<void> {
    const now = this.#clock.now();
    await db
      .insertInto('export_cursors')
      .values({ sink_id: sinkId, partition, seq, updated_at: now })
      .onConflict((oc) =>
        oc
          .columns(['sink_id', 'partition'])
          .doUpdateSet({ seq, updated_at: now })
          .where('export_cursors.seq', '<', seq),
      )
      .execute();
  }

  /**
   * Takes or renews the lease on a sink's loop for `owner` until `now + ttlMs`. Returns false when
   * another owner holds an unexpired lease.
   */
  async lease(db: Kysely<any>, sinkId: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = this.#clock.now();
    const expires_at = now + ttlMs;
    const updated = await db
      .updateTable('export_leases')
      .set({ owner, expires_at })
      .where('sink_id', '=', sinkId)
      .where((eb) => eb.or([eb('owner', '=', owner), eb('expires_at', '<', now)]))
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) > 0) return true;
    const inserted = await db
      .insertInto('export_leases')
      .values({ sink_id: sinkId, owner, expires_at })
      .onConflict((oc) => oc.column('sink_id').doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** Gives up a lease (on a clean stop) so another node can take the sink over at once. */
  async release(db: Kysely<any>, sinkId: string, owner: string): Promise<void> {
    await db.deleteFrom('export_leases').where('sink_id', '=', sinkId).where('owner', '=', owner).execute();
  }
}

/**
 * Re-wraps every sink's sealed secrets under the keyring's current master key (master-key
 * rotation). Returns how many values were re-wrapped.
 */
export async function rewrapExportSecrets(db: Kysely<any>, keyring: Keyring): Promise<number> {
  const rows = await db.selectFrom('export_sinks').select(['id', 'secrets_sealed']).execute();
  let n = 0;
  for (const row of rows) {
    if (!row.secrets_sealed) continue;
    const rewrapped = keyring.rewrap(row.secrets_sealed as string);
    if (rewrapped === row.secrets_sealed) continue;
    await db
      .updateTable('export_sinks')
      .set({ secrets_sealed: rewrapped })
      .where('id', '=', row.id)
      .execute();
    n++;
  }
  return n;
}

/** The public view of a stored sink (no secrets). */
export function viewOf(sink: StoredSink): SinkView {
  const { definition: _d, ...view } = sink;
  return view;
}
