import type { Migration } from 'kysely';

/** Upstream MCP servers and HTTP APIs behind the gateway, and the shared DPoP proof replay cache. */
export const gatewayMigrations: Record<string, Migration> = {
  '20261125T070000_gateway_init': {
    async up(db) {
      await db.schema
        .createTable('gateway_upstreams')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('transport', 'text', (c) => c.notNull())
        .addColumn('url', 'text')
        .addColumn('command', 'text')
        .addColumn('credential_ref', 'text')
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('routes', 'text', (c) => c.notNull())
        .addColumn('timeout_ms', 'bigint', (c) => c.notNull())
        .addColumn('rate_limit', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('pins', 'text', (c) => c.notNull())
        .addColumn('approved_by', 'text')
        .addColumn('approved_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('gateway_dpop_proofs')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('gateway_dpop_proofs_expiry')
        .on('gateway_dpop_proofs')
        .column('expires_at')
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('gateway_dpop_proofs').execute();
      await db.schema.dropTable('gateway_upstreams').execute();
    },
  },
};
