import type { Migration } from 'kysely';

/**
 * The vault's tables. Every secret value lives only in `vault_secret_versions.sealed` (one row per
 * version, sealed for `vault.secret:<id>:<version>`), in `vault_token_cache.sealed` (minted access
 * tokens, sealed for `vault.access_token:<account>:<generation>`) or in `vault_pending_connects.sealed`
 * (PKCE verifiers, sealed for `vault.connect:<state hash>`). Nothing else holds secret material.
 */
export const vaultMigrations: Record<string, Migration> = {
  '20261125T060000_vault_init': {
    async up(db) {
      await db.schema
        .createTable('vault_secret_versions')
        .addColumn('secret_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('vault_secret_versions_pk', ['secret_id', 'version'])
        .execute();

      await db.schema
        .createTable('vault_connections')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('issuer', 'text')
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('client_auth_method', 'text', (c) => c.notNull())
        .addColumn('client_secret_id', 'text', (c) => c.notNull())
        .addColumn('client_secret_version', 'integer', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('access_rule', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('vault_accounts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('connection_id', 'text', (c) =>
          c.notNull().references('vault_connections.id').onDelete('cascade'),
        )
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('refresh_secret_id', 'text', (c) => c.notNull())
        .addColumn('refresh_secret_version', 'integer', (c) => c.notNull())
        .addColumn('scope', 'text')
        .addColumn('broken_reason', 'text')
        .addColumn('broken_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('vault_accounts_connection_user', ['connection_id', 'user_id'])
        .execute();

      await db.schema
        .createTable('vault_token_cache')
        .addColumn('account_id', 'text', (c) =>
          c.primaryKey().references('vault_accounts.id').onDelete('cascade'),
        )
        .addColumn('generation', 'integer', (c) => c.notNull())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('token_type', 'text', (c) => c.notNull())
        .addColumn('scope', 'text')
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('refreshed_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('vault_pending_connects')
        .addColumn('state_hash', 'text', (c) => c.primaryKey())
        .addColumn('connection_id', 'text', (c) =>
          c.notNull().references('vault_connections.id').onDelete('cascade'),
        )
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('redirect_uri', 'text', (c) => c.notNull())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('vault_pending_connects_expires')
        .on('vault_pending_connects')
        .column('expires_at')
        .execute();

      await db.schema
        .createTable('vault_credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('header_name', 'text')
        .addColumn('owner_user_id', 'text')
        .addColumn('secret_id', 'text', (c) => c.notNull())
        .addColumn('secret_version', 'integer', (c) => c.notNull())
        .addColumn('access_rule', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('vault_leases')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db) {
      for (const table of [
        'vault_leases',
        'vault_credentials',
        'vault_pending_connects',
        'vault_token_cache',
        'vault_accounts',
        'vault_connections',
        'vault_secret_versions',
      ]) {
        await db.schema.dropTable(table).execute();
      }
    },
  },
  '20261126T040000_vault_allow_exchange': {
    async up(db) {
      // Exchange mode hands the upstream token itself to an agent: off unless a connection opts in.
      await db.schema
        .alterTable('vault_connections')
        .addColumn('allow_exchange', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
    async down(db) {
      await db.schema.alterTable('vault_connections').dropColumn('allow_exchange').execute();
    },
  },
};
