import type { Migration } from 'kysely';
import { approvalsMigrations } from '../approvals/index.ts';
import { auditMigrations } from '../audit/index.ts';
import { exportMigrations } from '../export/index.ts';
import { gatewayMigrations } from '../gateway/index.ts';
import { identityMigrations } from '../identity/index.ts';
import { policyMigrations } from '../policy/index.ts';
import { storeMigrations } from '../store/index.ts';
import { tokensMigrations } from '../tokens/index.ts';
import { vaultMigrations } from '../vault/index.ts';

/** Every part's migrations; the store runs them in name (timestamp) order. */
export const allMigrations: Record<string, Migration> = {
  ...storeMigrations,
  ...auditMigrations,
  ...identityMigrations,
  ...exportMigrations,
  ...tokensMigrations,
  ...gatewayMigrations,
  ...policyMigrations,
  ...vaultMigrations,
  ...approvalsMigrations,
};
