import { Auditor, auditMigrations } from '../../src/audit/index.ts';
import { createLogger, ManualClock } from '../../src/core/index.ts';
import { PolicyAdmin, PolicyEngine, policyMigrations } from '../../src/policy/index.ts';
import { Store, storeMigrations } from '../../src/store/index.ts';
import { type Backend, freshDatabase } from '../support/databases.ts';

export const admin = { type: 'user' as const, id: 'admin-1' };

export interface PolicyWorld {
  store: Store;
  auditor: Auditor;
  admin: PolicyAdmin;
  engine: PolicyEngine;
  clock: ManualClock;
  url: string | undefined;
  dataDir: string;
  close(): Promise<void>;
}

/** A migrated database with the policy admin, an auditor and a decision engine on it. */
export async function policyWorld(
  backend: Backend,
  db?: { url: string | undefined; dataDir: string },
): Promise<PolicyWorld> {
  const { url, dataDir } = db ?? (await freshDatabase(backend));
  const store = await Store.open({ url, dataDir });
  await store.migrate({ ...storeMigrations, ...auditMigrations, ...policyMigrations });
  const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
  const logger = createLogger({ level: 'silent' });
  const auditor = await Auditor.open({
    store,
    partition: `node-${Math.random().toString(36).slice(2, 8)}`,
    clock,
    logger,
    failMode: 'closed',
  });
  const engine = await PolicyEngine.open({ store, clock, logger });
  return {
    store,
    auditor,
    admin: new PolicyAdmin({ store, auditor, clock }),
    engine,
    clock,
    url,
    dataDir,
    async close() {
      await engine.close();
      await store.close();
    },
  };
}

/** An agent of template `t` and provider `p`. */
export function agent(id: string, template = 'support-bot', provider = 'acme') {
  return {
    type: 'Agent',
    id,
    parents: [
      { type: 'Template', id: template },
      { type: 'Provider', id: provider },
    ],
  };
}

export function tool(id: string) {
  const server = id.includes('/') ? id.split('/')[0] : undefined;
  return { type: 'Tool', id, ...(server ? { parents: [{ type: 'Server', id: server }] } : {}) };
}
