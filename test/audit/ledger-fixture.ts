import {
  type AuditEventInput,
  Auditor,
  type AuditorOptions,
  auditMigrations,
} from '../../src/audit/index.ts';
import { createLogger, generateMasterKey, Keyring, type Logger, systemClock } from '../../src/core/index.ts';
import { Store, storeMigrations } from '../../src/store/index.ts';
import { type Backend, freshDatabase } from '../support/databases.ts';

/** A fresh database with the audit schema, a keyring and an open auditor on partition `node-a`. */
export async function openLedger(
  backend: Backend,
  overrides: Partial<AuditorOptions> = {},
): Promise<{
  store: Store;
  auditor: Auditor;
  keyring: Keyring;
  logger: Logger;
  url: string | undefined;
  dataDir: string;
}> {
  const { url, dataDir } = await freshDatabase(backend);
  const store = await Store.open({ url, dataDir });
  await store.migrate({ ...storeMigrations, ...auditMigrations });
  const keyring = new Keyring(generateMasterKey().key);
  const logger = createLogger({ level: 'silent' });
  const auditor = await Auditor.open({
    store,
    partition: 'node-a',
    clock: systemClock,
    logger,
    failMode: 'closed',
    keyring,
    checkpointIntervalSeconds: 0,
    ...overrides,
  });
  return { store, auditor, keyring, logger, url, dataDir };
}

/** A plausible event: an agent calling a tool for a user. */
export function toolCall(i: number, overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    type: 'tool.call',
    actor: {
      type: 'agent',
      id: `agent-${i % 7}`,
      on_behalf_of: { type: 'user', id: `user-${i % 3}` },
      chain: [{ type: 'agent', id: `agent-${i % 7}` }],
    },
    action: 'tools/call',
    resource: { type: 'tool', id: `tool-${i % 5}`, name: 'search' },
    intent: { text: `find invoices batch ${i}`, task_id: `task-${i}` },
    decision: { effect: 'permit', policies: ['p-1'] },
    outcome: i % 10 === 0 ? 'denied' : 'success',
    request: { source_ip: '127.0.0.1', user_agent: 'test' },
    latency_ms: i % 50,
    details: { n: i },
    ...overrides,
  };
}
