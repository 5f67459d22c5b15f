import type { Migration } from 'kysely';

/**
 * Users, admin API tokens, providers, templates (versioned) and agents; `agent_instances` keeps
 * the latest attested claims per agent instance (attestation-based client authentication).
 */
export const identityMigrations: Record<string, Migration> = {
  '20261125T000200_identity_init': {
    async up(db) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('display_name', 'text')
        .addColumn('email', 'text')
        .addColumn('password_hash', 'text')
        .addColumn('roles', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('api_tokens_user').on('api_tokens').column('user_id').execute();
      await db.schema
        .createTable('providers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('display_name', 'text')
        .addColumn('contact', 'text', (c) => c.notNull())
        .addColumn('jwks', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('status_reason', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('templates')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('latest_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('template_versions')
        .addColumn('template_id', 'text', (c) => c.notNull().references('templates.id'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('template_versions_pk', ['template_id', 'version'])
        .execute();
      await db.schema
        .createTable('agents')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('provider_id', 'text', (c) => c.notNull().references('providers.id'))
        .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('template_id', 'text', (c) => c.notNull().references('templates.id'))
        .addColumn('template_version', 'integer', (c) => c.notNull())
        .addColumn('jwks', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('status_reason', 'text')
        .addColumn('risk_tier', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint')
        .execute();
      await db.schema.createIndex('agents_provider').on('agents').column('provider_id').execute();
      await db.schema.createIndex('agents_owner').on('agents').column('owner_id').execute();
      await db.schema.createIndex('agents_template').on('agents').column('template_id').execute();
    },
    async down(db) {
      for (const t of ['agents', 'template_versions', 'templates', 'providers', 'api_tokens', 'users']) {
        await db.schema.dropTable(t).execute();
      }
    },
  },
  '20261126T030000_agent_instances': {
    async up(db) {
      await db.schema
        .createTable('agent_instances')
        .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.id'))
        /** RFC 7638 thumbprint of the attested instance key (`cnf.jwk`). */
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('provider_id', 'text', (c) => c.notNull())
        .addColumn('provider_kid', 'text', (c) => c.notNull())
        .addColumn('software_version', 'text')
        .addColumn('image_digest', 'text')
        .addColumn('model', 'text')
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('attestation_expires_at', 'bigint', (c) => c.notNull())
        .addColumn('first_attested_at', 'bigint', (c) => c.notNull())
        .addColumn('last_attested_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('agent_instances_pk', ['agent_id', 'instance_id'])
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('agent_instances').execute();
    },
  },
};
