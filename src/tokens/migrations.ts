import type { Migration } from 'kysely';

/**
 * The token service's tables:
 * - `oauth_signing_keys`: access token signing keys, private halves sealed with the Keyring;
 * - `oauth_secrets`: other server secrets shared by every node (the DPoP nonce secret), sealed;
 * - `oauth_replay`: single-use ids (client assertion `jti`, DPoP proof `jti`) across all nodes;
 * - `oauth_access_tokens`: one row per issued access token (by `jti`, never the token itself),
 *   the source of truth for introspection and revocation;
 * - `oauth_delegation_grants`: what a user delegated to an agent (scopes, resources, purpose,
 *   expiry), the ceiling of every token exchanged on their behalf;
 * - `oauth_access_token_grants`: every grant a delegated token depends on (its own and, for a
 *   nested exchange, those of the tokens it was derived from), so revoking one grant finds them all;
 * - `oauth_provider_records`: oidc-provider's sessions, interactions, authorization codes and
 *   grants for the authorization_code flow (ids hashed, payloads sealed).
 */
export const tokensMigrations: Record<string, Migration> = {
  '20261125T040000_tokens_init': {
    async up(db) {
      await db.schema
        .createTable('oauth_signing_keys')
        .addColumn('kid', 'text', (c) => c.primaryKey())
        .addColumn('alg', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('private_jwk_sealed', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        /** When it stopped signing (a newer key became active); null while active. */
        .addColumn('superseded_at', 'bigint')
        /** Until when its public key stays published (every token it signed has expired by then). */
        .addColumn('publish_until', 'bigint')
        .execute();
      await db.schema
        .createTable('oauth_secrets')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('oauth_replay')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('oauth_replay_expires').on('oauth_replay').column('expires_at').execute();
      await db.schema
        .createTable('oauth_access_tokens')
        .addColumn('jti', 'text', (c) => c.primaryKey())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('sub', 'text', (c) => c.notNull())
        .addColumn('aud', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('jkt', 'text')
        .addColumn('kid', 'text', (c) => c.notNull())
        .addColumn('template_id', 'text', (c) => c.notNull())
        .addColumn('template_version', 'integer', (c) => c.notNull())
        .addColumn('issued_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('revoked_reason', 'text')
        .execute();
      await db.schema
        .createIndex('oauth_access_tokens_client')
        .on('oauth_access_tokens')
        .columns(['client_id', 'expires_at'])
        .execute();
      await db.schema
        .createIndex('oauth_access_tokens_expires')
        .on('oauth_access_tokens')
        .column('expires_at')
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('oauth_access_tokens').execute();
      await db.schema.dropTable('oauth_replay').execute();
      await db.schema.dropTable('oauth_secrets').execute();
      await db.schema.dropTable('oauth_signing_keys').execute();
    },
  },
  '20261126T030000_tokens_delegation_grants': {
    async up(db) {
      await db.schema
        .createTable('oauth_delegation_grants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        /** JSON array of scope tokens. */
        .addColumn('scopes', 'text', (c) => c.notNull())
        /** JSON array of resource indicators; empty = any configured resource. */
        .addColumn('resources', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        /** JSON array (RFC 9396) or null. */
        .addColumn('authorization_details', 'text')
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('revoked_by', 'text')
        .addColumn('revoke_reason', 'text')
        .execute();
      await db.schema
        .createIndex('oauth_delegation_grants_user_agent')
        .on('oauth_delegation_grants')
        .columns(['user_id', 'agent_id'])
        .execute();
      await db.schema
        .createIndex('oauth_delegation_grants_agent')
        .on('oauth_delegation_grants')
        .column('agent_id')
        .execute();
      await db.schema.alterTable('oauth_access_tokens').addColumn('grant_id', 'text').execute();
      await db.schema
        .createTable('oauth_access_token_grants')
        .addColumn('grant_id', 'text', (c) => c.notNull())
        .addColumn('jti', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('oauth_access_token_grants_pk', ['grant_id', 'jti'])
        .execute();
      await db.schema
        .createIndex('oauth_access_token_grants_expires')
        .on('oauth_access_token_grants')
        .column('expires_at')
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('oauth_access_token_grants').execute();
      await db.schema.alterTable('oauth_access_tokens').dropColumn('grant_id').execute();
      await db.schema.dropTable('oauth_delegation_grants').execute();
    },
  },
  '20261126T031000_tokens_provider_records': {
    async up(db) {
      await db.schema
        .createTable('oauth_provider_records')
        .addColumn('model', 'text', (c) => c.notNull())
        .addColumn('id_hash', 'text', (c) => c.notNull())
        .addColumn('payload_sealed', 'text', (c) => c.notNull())
        .addColumn('uid_hash', 'text')
        .addColumn('grant_id', 'text')
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('consumed_at', 'bigint')
        .addPrimaryKeyConstraint('oauth_provider_records_pk', ['model', 'id_hash'])
        .execute();
      await db.schema
        .createIndex('oauth_provider_records_uid')
        .on('oauth_provider_records')
        .columns(['model', 'uid_hash'])
        .execute();
      await db.schema
        .createIndex('oauth_provider_records_grant')
        .on('oauth_provider_records')
        .column('grant_id')
        .execute();
      await db.schema
        .createIndex('oauth_provider_records_expires')
        .on('oauth_provider_records')
        .column('expires_at')
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('oauth_provider_records').execute();
    },
  },
};
