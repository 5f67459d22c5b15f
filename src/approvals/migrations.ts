import { type Migration, sql } from 'kysely';

/**
 * The approvals tables. `approval_requests` holds each request and, once approved, its one-time
 * grant (bound to `call_hash`); at most one request per call hash is pending at a time, so
 * identical requests from a looping agent are grouped. Channel secrets (webhook signing keys,
 * SMTP passwords, Slack webhook URLs) live only in `approval_channels.sealed_secret`, sealed for
 * `approvals.channel:<id>`.
 */
export const approvalsMigrations: Record<string, Migration> = {
  '20261125T221900_approvals_init': {
    async up(db) {
      await db.schema
        .createTable('approval_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('agent_name', 'text', (c) => c.notNull())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('intent', 'text')
        .addColumn('tool', 'text', (c) => c.notNull())
        .addColumn('resource', 'text')
        .addColumn('arguments', 'text', (c) => c.notNull())
        .addColumn('authorization_details', 'text', (c) => c.notNull())
        .addColumn('binding_message', 'text', (c) => c.notNull())
        .addColumn('call_hash', 'text', (c) => c.notNull())
        .addColumn('approvers', 'text', (c) => c.notNull())
        .addColumn('policies', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('decision', 'text')
        .addColumn('decided_at', 'bigint')
        .addColumn('decided_by', 'text')
        .addColumn('decided_by_name', 'text')
        .addColumn('decision_comment', 'text')
        .addColumn('grant_expires_at', 'bigint')
        .addColumn('consumed_at', 'bigint')
        .execute();
      await db.schema
        .createIndex('approval_requests_pending_call')
        .on('approval_requests')
        .column('call_hash')
        .unique()
        .where(sql.ref('status'), '=', 'pending')
        .execute();
      await db.schema
        .createIndex('approval_requests_agent_created')
        .on('approval_requests')
        .columns(['agent_id', 'created_at'])
        .execute();
      await db.schema
        .createIndex('approval_requests_status_expires')
        .on('approval_requests')
        .columns(['status', 'expires_at'])
        .execute();
      await db.schema
        .createIndex('approval_requests_decided_by')
        .on('approval_requests')
        .columns(['decided_by', 'decided_at'])
        .execute();

      await db.schema
        .createTable('approval_channels')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('sealed_secret', 'text')
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('approval_groups')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('members', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('approval_groups').execute();
      await db.schema.dropTable('approval_channels').execute();
      await db.schema.dropTable('approval_requests').execute();
    },
  },
};
