import { Writable } from 'node:stream';
import { Auditor, auditMigrations } from '../../src/audit/index.ts';
import { createLogger, generateMasterKey, Keyring, ManualClock } from '../../src/core/index.ts';
import { Store, storeMigrations } from '../../src/store/index.ts';
import {
  type AccountBrokenNotice,
  Vault,
  type VaultSettings,
  vaultMigrations,
} from '../../src/vault/index.ts';

export const ALL_MIGRATIONS = { ...storeMigrations, ...auditMigrations, ...vaultMigrations };

/** One Warden "node": its own Store, Auditor and Vault over a shared database. */
export interface VaultNode {
  store: Store;
  auditor: Auditor;
  vault: Vault;
  /** Every log line this node wrote. */
  logs: string[];
  broken: AccountBrokenNotice[];
  close(): Promise<void>;
}

export interface NodeOptions {
  url: string | undefined;
  dataDir: string;
  keyring: Keyring;
  clock: ManualClock;
  nodeId?: string;
  settings?: VaultSettings;
}

/** Opens a node on a database (migrating it) with a log sink the tests can grep. */
export async function openNode(options: NodeOptions): Promise<VaultNode> {
  const store = await Store.open({ url: options.url, dataDir: options.dataDir });
  await store.migrate(ALL_MIGRATIONS);
  const logs: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk));
        cb();
      },
    }),
  });
  const nodeId = options.nodeId ?? 'node-a';
  const auditor = await Auditor.open({
    store,
    partition: nodeId,
    clock: options.clock,
    logger,
    failMode: 'closed',
  });
  const broken: AccountBrokenNotice[] = [];
  const vault = new Vault({
    store,
    keyring: options.keyring,
    auditor,
    clock: options.clock,
    logger,
    settings: { allowHttp: true, nodeId, ...options.settings },
    onAccountBroken: (n) => {
      broken.push(n);
    },
  });
  return {
    store,
    auditor,
    vault,
    logs,
    broken,
    async close() {
      vault.close();
      await store.close();
    },
  };
}

/** A keyring with one fresh master key. */
export function newKeyring(): Keyring {
  return new Keyring(generateMasterKey().key);
}

/** A manual clock starting now, so upstream (real-time) and vault times agree at the start. */
export function nowClock(): ManualClock {
  return new ManualClock(Date.now());
}

export const ADMIN = { type: 'user', id: 'admin-1', role: 'admin' } as const;
