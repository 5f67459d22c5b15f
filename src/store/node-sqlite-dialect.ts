import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';
import { SqliteDialect } from 'kysely';

const READER_RE = /^\s*(select|with|pragma|values|explain)\b|\breturning\b/i;

function bind(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  return value;
}

/**
 * Adapts the built-in `node:sqlite` to the shape Kysely's SQLite driver expects (the
 * better-sqlite3 API), so the embedded database needs no native addon. Prepared statements are
 * cached by SQL text: the driver prepares per query, and preparing dominates small queries.
 */
class NodeSqliteDatabase implements SqliteDatabase {
  readonly #db: DatabaseSync;
  readonly #cache = new Map<string, SqliteStatement>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  close(): void {
    this.#cache.clear();
    if (this.#db.isOpen) this.#db.close();
  }

  prepare(sql: string): SqliteStatement {
    let cached = this.#cache.get(sql);
    if (cached) return cached;
    const stmt: StatementSync = this.#db.prepare(sql);
    const reader =
      typeof (stmt as { columns?: () => unknown[] }).columns === 'function'
        ? (stmt as unknown as { columns(): unknown[] }).columns().length > 0
        : READER_RE.test(sql);
    const args = (p: ReadonlyArray<unknown>) => p.map(bind) as never[];
    cached = {
      reader,
      all: (p) => stmt.all(...args(p)),
      run: (p) => {
        const r = stmt.run(...args(p));
        return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
      },
      iterate: (p) => stmt.iterate(...args(p)) as IterableIterator<unknown>,
    };
    if (this.#cache.size > 500) this.#cache.clear();
    this.#cache.set(sql, cached);
    return cached;
  }
}

/** Opens a SQLite file with Warden's durability settings and returns a Kysely dialect over it. */
export function createNodeSqliteDialect(path: string): { dialect: SqliteDialect; raw: DatabaseSync } {
  const raw = new DatabaseSync(path);
  // WAL with synchronous=FULL: a committed transaction survives power loss; readers never block
  // the writer. busy_timeout covers a second process (the CLI) touching the same file.
  raw.exec('PRAGMA journal_mode = WAL');
  raw.exec('PRAGMA synchronous = FULL');
  raw.exec('PRAGMA foreign_keys = ON');
  raw.exec('PRAGMA busy_timeout = 5000');
  return { dialect: new SqliteDialect({ database: new NodeSqliteDatabase(raw) }), raw };
}
