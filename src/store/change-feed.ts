import { EventEmitter } from 'node:events';
import { type Kysely, sql } from 'kysely';
import type pg from 'pg';

/** A change another node must learn about quickly: suspension, revocation, policy activation. */
export interface Change {
  seq: number;
  channel: string;
  payload: Record<string, unknown>;
  at: number;
}

export type ChangeHandler = (change: Change) => void;

const PG_CHANNEL = 'warden_changes';
const POLL_MS = 250;
const KEEP_MS = 60 * 60 * 1000;

/**
 * Cross-node change notifications. Every change is a row in `change_log`; subscribers read rows
 * past the last sequence they saw. PostgreSQL `NOTIFY` wakes other nodes at once; polling every
 * 250 ms is the fallback (and the only path between processes sharing one SQLite file), so a
 * change reaches every node within a second even if a notification is lost.
 */
export class ChangeFeed {
  readonly #db: Kysely<any>;
  readonly #pool: pg.Pool | undefined;
  readonly #emitter = new EventEmitter();
  #listener: { client: pg.PoolClient; release: (destroy: boolean) => void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastSeq = 0;
  #reading: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  private constructor(db: Kysely<any>, pool?: pg.Pool) {
    this.#db = db;
    this.#pool = pool;
    this.#emitter.setMaxListeners(0);
  }

  static local(db: Kysely<any>): ChangeFeed {
    return new ChangeFeed(db);
  }

  static postgres(db: Kysely<any>, pool: pg.Pool): ChangeFeed {
    return new ChangeFeed(db, pool);
  }

  /** Starts listening. Changes published before this call are not delivered. */
  async start(): Promise<void> {
    this.#stopped = false;
    try {
      const row = await this.#db
        .selectFrom('change_log')
        .select((eb) => eb.fn.max('seq').as('max'))
        .executeTakeFirst();
      this.#lastSeq = Number(row?.max ?? 0);
    } catch {
      // Table not there yet (before the first migration): start from zero.
      this.#lastSeq = 0;
    }
    if (this.#pool) await this.#listen();
    this.#timer = setInterval(() => void this.poll(), POLL_MS);
    this.#timer.unref();
  }

  async #listen(): Promise<void> {
    if (!this.#pool || this.#stopped) return;
    const retry = () => {
      // Reconnect later; polling carries changes meanwhile.
      if (!this.#stopped) setTimeout(() => void this.#listen(), 1000).unref();
    };
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch {
      retry();
      return;
    }
    // The connection may fail while LISTEN runs, later, or while stop() releases it: whichever
    // comes first releases it, once (a second release throws from inside an event handler).
    let released = false;
    const release = (destroy: boolean) => {
      if (released) return;
      released = true;
      if (this.#listener?.client === client) this.#listener = undefined;
      client.release(destroy);
    };
    client.on('notification', () => void this.poll());
    client.on('error', () => {
      release(true);
      retry();
    });
    try {
      await client.query(`LISTEN ${PG_CHANNEL}`);
    } catch {
      release(true);
      retry();
      return;
    }
    if (released) return;
    if (this.#stopped) {
      release(true);
      return;
    }
    this.#listener = { client, release };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#reading?.catch(() => {});
    const listener = this.#listener;
    if (listener) {
      this.#listener = undefined;
      const ok = await listener.client.query(`UNLISTEN ${PG_CHANNEL}`).then(
        () => true,
        () => false,
      );
      listener.release(!ok);
    }
  }

  /** Calls `handler` for each change on `channel` (from any node, including this one). */
  subscribe(channel: string, handler: ChangeHandler): () => void {
    this.#emitter.on(channel, handler);
    return () => this.#emitter.off(channel, handler);
  }

  /**
   * Records a change. Pass the caller's transaction so the change is published only if the
   * transaction commits (PostgreSQL delivers NOTIFY at commit).
   */
  async publish(channel: string, payload: Record<string, unknown>, tx?: Kysely<any>): Promise<void> {
    const db = tx ?? this.#db;
    await db
      .insertInto('change_log')
      .values({ channel, payload: JSON.stringify(payload), at: Date.now() })
      .execute();
    if (this.#pool) await sql.raw(`NOTIFY ${PG_CHANNEL}`).execute(db);
    if (!tx) void this.poll();
    else queueMicrotask(() => void this.poll());
  }

  /** Reads and delivers changes newer than the last one seen. Safe to call at any time. */
  poll(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#reading) {
      this.#again = true;
      return this.#reading;
    }
    this.#reading = this.#read().finally(() => {
      this.#reading = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        void this.poll();
      }
    });
    return this.#reading;
  }

  async #read(): Promise<void> {
    let rows: { seq: number; channel: string; payload: string; at: number }[];
    try {
      rows = (await this.#db
        .selectFrom('change_log')
        .selectAll()
        .where('seq', '>', this.#lastSeq)
        .orderBy('seq')
        .limit(1000)
        .execute()) as typeof rows;
    } catch {
      return;
    }
    for (const row of rows) {
      this.#lastSeq = Number(row.seq);
      const change: Change = {
        seq: Number(row.seq),
        channel: row.channel,
        payload: JSON.parse(row.payload) as Record<string, unknown>,
        at: Number(row.at),
      };
      this.#emitter.emit(change.channel, change);
    }
    if (rows.length === 1000) this.#again = true;
  }

  /** Deletes changes older than an hour; every live node has long since read them. */
  async prune(now = Date.now()): Promise<void> {
    await this.#db
      .deleteFrom('change_log')
      .where('at', '<', now - KEEP_MS)
      .execute();
  }
}
