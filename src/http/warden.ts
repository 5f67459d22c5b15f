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
import { Exporter, registerExportMetrics } from '../export/index.ts';
import {
  type CredentialInjector,
  currentJwks,
  Gateway,
  type GatewayOptions,
  JwtTokenVerifier,
  type PolicyDecider,
  RevocationGate,
  type TokenVerifier,
} from '../gateway/index.ts';
import { Identity } from '../identity/index.ts';
import { PolicyAdmin, PolicyEngine } from '../policy/index.ts';
import { getMeta, Store, setMeta } from '../store/index.ts';
import { TokenService } from '../tokens/index.ts';
import { Vault } from '../vault/index.ts';
import { connectBackchannelApprovals } from './backchannel-approvals.ts';
import { allMigrations } from './migrations.ts';
import { vaultExchangeHook } from './vault-exchange.ts';

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
  /** The OAuth 2 authorization server for agents. */
  tokens: TokenService;
  /** The decision point: versioned policy sets (admin) and this node's warm engine. */
  policy: { admin: PolicyAdmin; engine: PolicyEngine };
  vault: Vault;
  /** Streams the ledger to SIEM sinks; its loops run while the node is open. */
  exporter: Exporter;
  gateway: Gateway;
  approvals: Approvals;
  metrics: Registry;
  close(): Promise<void>;
}

export interface CreateWardenOptions {
  clock?: Clock;
  logger?: Logger;
  /** Skip migrations (the CLI's `migrate` runs them itself). */
  migrate?: boolean;
  /**
   * Gateway settings and, until their parts are assembled here, the token verifier, decision
   * point and vault it uses. Missing ones fail closed: no verifier refuses every call, no decider
   * denies every call, no vault refuses upstreams that need a credential.
   */
  gateway?: {
    options?: GatewayOptions;
    tokenVerifier?: TokenVerifier;
    decider?: PolicyDecider;
    credentials?: CredentialInjector;
  };
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
  let auditor: Auditor | undefined;
  let exporter: Exporter | undefined;
  try {
    if (options.migrate !== false) await store.migrate(allMigrations);
    await checkMasterKey(store, keyring);
    const nodeId = nodeIdOf(config);
    const auditOptions = {
      store,
      clock,
      logger,
      failMode: config.audit.failMode,
      keyring,
      checkpointIntervalSeconds: config.audit.checkpointIntervalSeconds,
      commitDelayMs: config.audit.commitDelayMs,
      retentionDays: config.audit.retentionDays,
      // Until the exporter exists nothing may be removed; then only what every sink has confirmed.
      retentionHold: (partition: string) => exporter?.confirmedThrough(partition) ?? Promise.resolve(0),
    };
    try {
      auditor = await Auditor.open({ ...auditOptions, partition: nodeId });
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_AUDIT_PARTITION_OWNED') throw e;
      // Another live process of this node (a server, while this is a CLI command; or a crashed
      // one whose lease has not run out) owns the node's chain. Never share it: write to a
      // partition of our own.
      const partition = `${nodeId.slice(0, 55)}.${randomBytes(4).toString('hex')}`;
      logger.warn({ partition, node: nodeId }, 'audit partition busy; using a partition of this process');
      auditor = await Auditor.open({ ...auditOptions, partition });
    }
    const ledger = auditor;
    const identity = new Identity({ store, auditor: ledger, clock });
    const publicUrl = publicUrlOf(config);
    const mcpResource = `${publicUrl}${options.gateway?.options?.mcpPath ?? '/mcp'}`;
    const tokens = await TokenService.create({
      issuer: publicUrl,
      // Unconfigured, tokens may be issued for Warden itself and for its MCP gateway endpoint.
      config: {
        ...config.tokens,
        resources: config.tokens.resources.length > 0 ? config.tokens.resources : [publicUrl, mcpResource],
      },
      trustProxy: config.http.trustProxy,
      store,
      keyring,
      clock,
      logger: logger.child({ component: 'tokens' }),
      auditor: ledger,
      agents: identity.agents,
      users: identity.users,
      templates: identity.templates,
      console: config.console,
      // Exchange mode of the vault: policy decides, the vault mints (both assembled below).
      upstreamExchange: vaultExchangeHook({
        identity,
        decide: (request) => policy.engine.decide(request),
        vault: () => vault,
        logger: logger.child({ component: 'vault-exchange' }),
      }),
    });
    const policy = {
      admin: new PolicyAdmin({ store, auditor: ledger, clock }),
      engine: await PolicyEngine.open({ store, clock, logger }),
    };
    const vault = new Vault({
      store,
      keyring,
      auditor: ledger,
      clock,
      logger,
      settings: { nodeId },
      // The user hears of it through the notification channels (the ledger has it already).
      onAccountBroken: async (n) => {
        await approvals.channels.notifyUser({
          type: 'vault.account_broken',
          user_id: n.userId,
          title: `Reconnect your ${n.connectionName} account`,
          text: [
            `Warden can no longer use your ${n.connectionName} account for your agents (${n.reason}).`,
            'Agents that act for you there will be refused until you connect it again:',
            `  warden connections connect ${n.connectionName}`,
            `or POST ${publicUrl}/v1/vault/connect/${encodeURIComponent(n.connectionName)}/start`,
          ].join('\n'),
          details: { account_id: n.accountId, connection: n.connectionName, reason: n.reason },
        });
      },
    });
    const sinks = await Exporter.create({ store, keyring, auditor, clock, logger }, config.export);
    exporter = sinks;
    await sinks.start();
    const metrics = new Registry();
    collectDefaultMetrics({ register: metrics, prefix: 'warden_' });
    registerExportMetrics(metrics, sinks);
    // The gateway trusts the token service's published keys and its record of revocations; tests
    // may hand it their own verifier instead (and then no revocation record applies).
    const ownVerifier = options.gateway?.tokenVerifier === undefined;
    const revocations = ownVerifier ? new RevocationGate(tokens.issued, store, clock) : undefined;
    // Approvals comes first: the gateway's approve step asks it about calls that need a person.
    const approvals = new Approvals({
      store,
      auditor: ledger,
      clock,
      logger,
      keyring,
      identity,
      metrics,
      publicUrl,
    });
    approvals.start();
    // OpenID CIBA: the token service asks people through approvals (tokens must not import it).
    const disconnectBackchannel = connectBackchannelApprovals({ tokens, approvals, store, clock, logger });
    const gateway = new Gateway({
      metrics,
      store,
      auditor: ledger,
      identity,
      clock,
      logger: logger.child({ component: 'gateway' }),
      publicUrl,
      issuer: publicUrl,
      tokenVerifier:
        options.gateway?.tokenVerifier ??
        new JwtTokenVerifier({ issuer: tokens.issuer, keys: currentJwks(() => tokens.publicJwks), clock }),
      tokenStatus: revocations,
      decider: options.gateway?.decider ?? policy.engine,
      credentials: options.gateway?.credentials ?? vault,
      approvals,
      // The configured approval behaviour, unless the caller's gateway options say otherwise.
      options: { ...config.gateway, ...options.gateway?.options },
    });
    return {
      config,
      publicUrl,
      nodeId,
      clock,
      logger,
      keyring,
      keySource: source,
      store,
      auditor: ledger,
      identity,
      tokens,
      policy,
      vault,
      exporter: sinks,
      gateway,
      approvals,
      metrics,
      async close() {
        await gateway.close();
        revocations?.close();
        await sinks.stop();
        vault.close();
        disconnectBackchannel();
        await approvals.close();
        await tokens.close();
        await policy.engine.close();
        await ledger.close();
        await store.close();
      },
    };
  } catch (e) {
    await auditor?.close();
    await store.close();
    throw e;
  }
}
