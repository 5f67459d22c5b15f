import type { Migration } from 'kysely';

/**
 * Export tables: the configured sinks (secrets sealed, never plaintext) and each sink's cursor per
 * ledger partition (the last sequence number confirmed delivered).
 */
export const exportMigrations: Record<string, Migration> = {
  '20261125T210000_export_sinks': {
    async up(db) {
      await db.schema
        .createTable('export_sinks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('secrets_sealed', 'text')
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('export_cursors')
        .addColumn('sink_id', 'text', (c) => c.notNull())
        .addColumn('partition', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('export_cursors_pk', ['sink_id', 'partition'])
        .execute();
      // Which node runs each sink's loop: one at a time, so several nodes never race one cursor.
      await db.schema
        .createTable('export_leases')
        .addColumn('sink_id', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('export_leases').execute();
      await db.schema.dropTable('export_cursors').execute();
      await db.schema.dropTable('export_sinks').execute();
    },
  },
};
