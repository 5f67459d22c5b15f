import { type Kysely, type Migration, PostgresAdapter } from 'kysely';

/** True when `db` speaks PostgreSQL; migrations use it for the few dialect-specific types. */
export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/** Adds an auto-incrementing 64-bit primary key column named `name`. */
export function autoIdType(db: Kysely<any>): 'bigserial' | 'integer' {
  return isPostgres(db) ? 'bigserial' : 'integer';
}

/** The store's own tables: metadata (key check, node ids) and the change feed. */
export const storeMigrations: Record<string, Migration> = {
  '20261125T000000_store_init': {
    async up(db) {
      await db.schema
        .createTable('meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('change_log')
        .addColumn('seq', autoIdType(db), (c) =>
          isPostgres(db) ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('change_log_at').on('change_log').column('at').execute();
    },
    async down(db) {
      await db.schema.dropTable('change_log').execute();
      await db.schema.dropTable('meta').execute();
    },
  },
};
