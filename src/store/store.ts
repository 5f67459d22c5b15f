import { mkdirSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Kysely, type Migration, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { UnavailableError } from '../core/index.ts';
import { ChangeFeed } from './change-feed.ts';
import { createNodeSqliteDialect } from './node-sqlite-dialect.ts';

/** Which engine is behind the store. */
export type StoreDialect = 'sqlite' | 'postgres';

export interface StoreOptions {
  /** `postgres://…`, `sqlite:PATH`, or undefined for `<dataDir>/warden.db`. */
  url?: string | undefined;
  dataDir: string;
  /** PostgreSQL pool size. */
  poolSize?: number;
}

/**
 * The database: one Kysely instance over SQLite (embedded default) or PostgreSQL (scale-out).
 * Parts keep their own table types and use {@link Store.db} with them; SQL stays portable:
 * text ids, bigint epoch milliseconds, JSON as text, booleans as 0/1 integers.
 */
export class Store {
  readonly dialect: StoreDialect;
  // Parts narrow this to their own table interfaces.
  readonly db: Kysely<any>;
  /** Cross-node change notifications (kill switch, policy and revocation updates). */
  readonly changes: ChangeFeed;
  readonly #onClose: () => Promise<void>;
  /** SQLite: the write-ahead log, flushed by {@link Store.flush}. */
  readonly #walPath: string | undefined;
  #wal: Promise<FileHandle> | undefined;

  private constructor(
    dialect: StoreDialect,
    db: Kysely<any>,
    changes: ChangeFeed,
    onClose: () => Promise<void>,
    walPath?: string,
  ) {
    this.dialect = dialect;
    this.db = db;
    this.changes = changes;
    this.#onClose = onClose;
    this.#walPath = walPath;
  }

  /** Opens the store; for PostgreSQL it checks the connection before returning. */
  static async open(options: StoreOptions): Promise<Store> {
    const url = options.url;
    if (url && /^postgres(ql)?:\/\//.test(url)) {
      const pool = new pg.Pool({
        connectionString: url,
        max: options.poolSize ?? 10,
        // int8 (bigint) columns hold epoch milliseconds and sequence numbers: safe as numbers.
        types: {
          getTypeParser: (oid: number, format?: string) =>
            oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
        } as pg.CustomTypesConfig,
      });
      pool.on('error', () => {
        // An idle client lost its connection; the pool replaces it. Queries report their own errors.
      });
      // A checked-out client whose connection drops (a PostgreSQL restart, a failover) also emits
      // 'error'; unheard, that would crash the process. Its query rejects on its own.
      pool.on('connect', (client) => {
        client.on('error', () => {});
      });
      try {
        const client = await pool.connect();
        client.release();
      } catch (e) {
        await pool.end().catch(() => {});
        throw new UnavailableError(`cannot connect to PostgreSQL: ${(e as Error).message}`, {
          code: 'ERR_DATABASE_UNAVAILABLE',
        });
      }
      const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
      const changes = ChangeFeed.postgres(db, pool);
      await changes.start();
      return new Store('postgres', db, changes, async () => {
        await changes.stop();
        await db.destroy();
      });
    }
    const path = url ? resolve(url.slice('sqlite:'.length)) : join(resolve(options.dataDir), 'warden.db');
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const { dialect } = createNodeSqliteDialect(path);
    const db = new Kysely<any>({ dialect });
    const changes = ChangeFeed.local(db);
    await changes.start();
    return new Store(
      'sqlite',
      db,
      changes,
      async () => {
        await changes.stop();
        await db.destroy();
      },
      `${path}-wal`,
    );
  }

  /**
   * Brings the schema up to date with every part's migrations. Names sort by their timestamp
   * prefix; parts merge in any order, so unordered migrations are allowed.
   */
  async migrate(migrations: Record<string, Migration>): Promise<string[]> {
    const migrator = new Migrator({
      db: this.db,
      provider: { getMigrations: async () => migrations },
      allowUnorderedMigrations: true,
    });
    const { error, results } = await migrator.migrateToLatest();
    if (error) throw error;
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  }

  /** Runs `fn` in one transaction: everything or nothing is written. */
  transaction<T>(fn: (tx: Kysely<any>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  /**
   * Runs `fn` with commits that are not flushed to disk one by one. On SQLite (WAL) they commit
   * with `synchronous = NORMAL`: visible at once, safe from a crash of this process, and durable
   * against power loss with the next ordinary commit (which flushes the WAL, and so every frame
   * before it). Only for writes whose durability can wait for a commit that follows anyway (a DPoP
   * proof claim: the call's audit event commits before the response). `fn` gets the store's only
   * SQLite connection and must use the `db` it is given, never {@link Store.db}. On PostgreSQL `fn`
   * runs as usual (its commits are not a blocking flush there).
   */
  async withoutSync<T>(fn: (db: Kysely<any>) => Promise<T>): Promise<T> {
    if (this.dialect !== 'sqlite') return fn(this.db);
    return this.db.connection().execute(async (db) => {
      await sql`PRAGMA synchronous = NORMAL`.execute(db);
      try {
        return await fn(db);
      } finally {
        await sql`PRAGMA synchronous = FULL`.execute(db);
      }
    });
  }

  /**
   * Makes every commit so far durable, also those of {@link Store.withoutSync}. On SQLite it is an
   * fdatasync of the write-ahead log on libuv's thread pool: the event loop keeps serving while the
   * disk flushes (a synchronous commit blocks it for the whole flush). On PostgreSQL commits are
   * flushed by the server; nothing to do.
   * @throws when the flush fails (the commits may not survive a power loss).
   */
  async flush(): Promise<void> {
    if (this.#walPath === undefined) return;
    this.#wal ??= open(this.#walPath, 'r');
    try {
      await (await this.#wal).datasync();
    } catch (e) {
      const wal = this.#wal;
      this.#wal = undefined;
      await wal.then((h) => h.close()).catch(() => {});
      throw e;
    }
  }

  /** True when the database answers. */
  async ping(): Promise<boolean> {
    try {
      await sql`select 1`.execute(this.db);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    const wal = this.#wal;
    this.#wal = undefined;
    await wal?.then((h) => h.close()).catch(() => {});
    await this.#onClose();
  }
}
