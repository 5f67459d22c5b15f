import type { Migration } from 'kysely';

/** The ledger table: append-only, one hash chain per partition (one partition per writer node). */
export const auditMigrations: Record<string, Migration> = {
  '20261125T000100_audit_init': {
    async up(db) {
      await db.schema
        .createTable('audit_events')
        .addColumn('partition', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('agent_id', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_events_pk', ['partition', 'seq'])
        .execute();
      await db.schema.createIndex('audit_events_time').on('audit_events').column('time').execute();
      await db.schema.createIndex('audit_events_type').on('audit_events').columns(['type', 'time']).execute();
      await db.schema
        .createIndex('audit_events_agent')
        .on('audit_events')
        .columns(['agent_id', 'time'])
        .execute();
      await db.schema
        .createIndex('audit_events_user')
        .on('audit_events')
        .columns(['user_id', 'time'])
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('audit_events').execute();
    },
  },
  /**
   * Partition leases and retention state, signed checkpoints, and the ledger signing key (its
   * private half sealed with the master keyring, never in plaintext).
   */
  '20261125T000200_audit_ledger': {
    async up(db) {
      await db.schema
        .createTable('audit_partitions')
        .addColumn('partition', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('lease_until', 'bigint', (c) => c.notNull())
        .addColumn('pruned_seq', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('pruned_frontier', 'text', (c) => c.notNull().defaultTo('[]'))
        .execute();
      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('partition', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('root_hash', 'text', (c) => c.notNull())
        .addColumn('note', 'text', (c) => c.notNull())
        .addColumn('frontier', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_checkpoints_pk', ['partition', 'size'])
        .execute();
      await db.schema
        .createTable('audit_keys')
        .addColumn('purpose', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('private_key_sealed', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('audit_keys').execute();
      await db.schema.dropTable('audit_checkpoints').execute();
      await db.schema.dropTable('audit_partitions').execute();
    },
  },
};
