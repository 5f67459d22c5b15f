import { Writable } from 'node:stream';
import { after } from 'node:test';
import { type AuditEventInput, Auditor, auditMigrations } from '../../../src/audit/index.ts';
import {
  type Clock,
  createLogger,
  generateMasterKey,
  Keyring,
  type Logger,
  systemClock,
} from '../../../src/core/index.ts';
import { exportMigrations } from '../../../src/export/index.ts';
import { Store, storeMigrations } from '../../../src/store/index.ts';
import { type Backend, freshDatabase } from '../../support/databases.ts';

/** A real store with the store, audit and export migrations, a real Auditor, and a captured log. */
export interface Ledger {
  store: Store;
  auditor: Auditor;
  keyring: Keyring;
  clock: Clock;
  logger: Logger;
  /** Every log line written so far. */
  logLines: string[];
  dataDir: string;
  url: string | undefined;
}

/** Opens a fresh database of `backend` (closed when the test file ends). */
export async function openLedger(backend: Backend, partition = 'node-a'): Promise<Ledger> {
  const { url, dataDir } = await freshDatabase(backend);
  const store = await Store.open({ url, dataDir });
  await store.migrate({ ...storeMigrations, ...auditMigrations, ...exportMigrations });
  const logLines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const auditor = await Auditor.open({ store, partition, clock: systemClock, logger, failMode: 'closed' });
  after(() => store.close());
  return {
    store,
    auditor,
    keyring: new Keyring(generateMasterKey().key),
    clock: systemClock,
    logger,
    logLines,
    dataDir,
    url,
  };
}

/** A tool call by an agent acting for a user, with text that needs escaping in every format. */
export function toolCall(i: number, agent = 'agent-1'): AuditEventInput {
  return {
    type: 'tool.call',
    actor: {
      type: 'agent',
      id: agent,
      name: `Bot "${agent}"`,
      on_behalf_of: { type: 'user', id: 'user-7', name: 'Ada' },
    },
    action: 'tools/call',
    resource: { type: 'mcp_tool', id: `github.get_issue#${i}`, name: 'github.get_issue' },
    intent: { text: `triage [issue] #${i} \\ "quoted" a=b | c\nnext line ü`, task_id: `task-${i}` },
    decision: { effect: 'permit', policies: ['p1', 'p2'] },
    outcome: 'success',
    request: { source_ip: '10.0.0.7', user_agent: 'warden-sdk/1.0', request_id: `req-${i}` },
    latency_ms: 12,
    details: { n: i },
  };
}

/** Waits until `check` returns true, polling; fails after `ms`. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  ms: number,
  what: string,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
