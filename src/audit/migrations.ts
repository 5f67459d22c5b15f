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
};
