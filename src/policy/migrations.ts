import type { Migration } from 'kysely';
import { autoIdType, isPostgres } from '../store/index.ts';

/** Policy-set versions (immutable once written) and the history of which version is active. */
export const policyMigrations: Record<string, Migration> = {
  '20261125T000500_policy_versions': {
    async up(db) {
      await db.schema
        .createTable('policy_versions')
        .addColumn('version', 'bigint', (c) => c.primaryKey())
        .addColumn('policies', 'text', (c) => c.notNull())
        // The parsed policies (ids, annotations, Cedar JSON) so nodes load a version without re-parsing.
        .addColumn('parsed', 'text', (c) => c.notNull())
        .addColumn('policy_count', 'integer', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('policy_activations')
        .addColumn('seq', autoIdType(db), (c) =>
          isPostgres(db) ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('version', 'bigint', (c) => c.notNull().references('policy_versions.version'))
        .addColumn('previous_version', 'bigint')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('by', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('policy_activations').execute();
      await db.schema.dropTable('policy_versions').execute();
    },
  },
};
