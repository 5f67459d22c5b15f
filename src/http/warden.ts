import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { Approvals } from '../approvals/index.ts';
import { Auditor } from '../audit/index.ts';
import {
  type Clock,
  ConfigError,
  createLogger,
  type Keyring,
  type LoadedKeyring,
  type Logger,
  loadKeyring,
  publicUrlOf,
  SealError,
  systemClock,
  type WardenConfig,
} from '../core/index.ts';
import { Identity } from '../identity/index.ts';
import { getMeta, Store, setMeta } from '../store/index.ts';
import { Vault } from '../vault/index.ts';
import { allMigrations } from './migrations.ts';

const KEY_CHECK = 'master_key_check';
const KEY_CHECK_PLAINTEXT = 'warden master key check';

/** A running Warden node's components, assembled once and shared by the server and the CLI. */
export interface Warden {
  config: WardenConfig;
  publicUrl: string;
  nodeId: string;
  clock: Clock;
  logger: Logger;
  keyring: Keyring;
  keySource: LoadedKeyring['source'];
  store: Store;
  auditor: Auditor;
  identity: Identity;
  vault: Vault;
  approvals: Approvals;
  metrics: Registry;
  close(): Promise<void>;
}

export interface CreateWardenOptions {
  clock?: Clock;
  logger?: Logger;
  /** Skip migrations (the CLI's `migrate` runs them itself). */
  migrate?: boolean;
}

/** This node's id: configured, or generated once and kept in the data directory. */
function nodeIdOf(config: WardenConfig): string {
  if (config.nodeId) return config.nodeId;
  const file = join(resolve(config.dataDir), 'node-id');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const id = `node-${randomBytes(6).toString('hex')}`;
  writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return id;
}

/**
 * Refuses to start with a master key other than the one the database was created with: opening
 * a sealed canary proves the key before anything else is read.
 */
async function checkMasterKey(store: Store, keyring: Keyring): Promise<void> {
  const sealed = await getMeta(store.db, KEY_CHECK);
  if (sealed === undefined) {
    await setMeta(store.db, KEY_CHECK, keyring.seal(KEY_CHECK_PLAINTEXT, `meta:${KEY_CHECK}`));
    return;
  }
  try {
    if (keyring.openText(sealed, `meta:${KEY_CHECK}`) === KEY_CHECK_PLAINTEXT) return;
  } catch (e) {
    if (!(e instanceof SealError)) throw e;
  }
  throw new ConfigError(
    'the master key does not match this database: set WARDEN_MASTER_KEY (or the master.key file) to the key the database was created with',
  );
}

/** Re-wraps the store's own sealed values under the current master key. */
export async function rewrapCoreSecrets(store: Store, keyring: Keyring): Promise<number> {
  const sealed = await getMeta(store.db, KEY_CHECK);
  if (sealed === undefined) return 0;
  await setMeta(store.db, KEY_CHECK, keyring.rewrap(sealed));
  return 1;
}

/** Assembles a Warden node: keys, database (migrated), ledger, registry. */
export async function createWarden(config: WardenConfig, options: CreateWardenOptions = {}): Promise<Warden> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const { keyring, source } = loadKeyring(config);
  const store = await Store.open({ url: config.databaseUrl, dataDir: config.dataDir });
  try {
    if (options.migrate !== false) await store.migrate(allMigrations);
    await checkMasterKey(store, keyring);
    const nodeId = nodeIdOf(config);
    const auditor = await Auditor.open({
      store,
      partition: nodeId,
      clock,
      logger,
      failMode: config.audit.failMode,
    });
    const identity = new Identity({ store, auditor, clock });
    const vault = new Vault({
      store,
      keyring,
      auditor,
      clock,
      logger,
      settings: { nodeId },
      // No notification channel exists yet: the broken account is in the ledger and the log.
      onAccountBroken: (n) =>
        logger.warn(
          { accountId: n.accountId, userId: n.userId, connection: n.connectionName },
          'vault: a connected account must be reconnected by its user',
        ),
    });
    const metrics = new Registry();
    collectDefaultMetrics({ register: metrics, prefix: 'warden_' });
    const publicUrl = publicUrlOf(config);
    const approvals = new Approvals({ store, auditor, clock, logger, keyring, identity, metrics, publicUrl });
    approvals.start();
    return {
      config,
      publicUrl,
      nodeId,
      clock,
      logger,
      keyring,
      keySource: source,
      store,
      auditor,
      identity,
      vault,
      approvals,
      metrics,
      async close() {
        vault.close();
        await approvals.close();
        await store.close();
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}
