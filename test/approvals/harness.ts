import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { type ApprovalSettings, Approvals } from '../../src/approvals/index.ts';
import { Auditor, readEvents } from '../../src/audit/index.ts';
import { createLogger, generateMasterKey, Keyring, ManualClock } from '../../src/core/index.ts';
import { allMigrations } from '../../src/http/index.ts';
import {
  agentCreateSchema,
  type Caller,
  Identity,
  providerCreateSchema,
  templateCreateSchema,
  userCreateSchema,
} from '../../src/identity/index.ts';
import { Store } from '../../src/store/index.ts';
import { keyPair, templateSpec } from '../support/fixtures.ts';

/** One Warden node for approvals tests: its own Store, Auditor, Identity and Approvals. */
export interface ApprovalsNode {
  store: Store;
  auditor: Auditor;
  identity: Identity;
  approvals: Approvals;
  metrics: Registry;
  logs: string[];
  close(): Promise<void>;
}

export async function openNode(options: {
  url: string | undefined;
  dataDir: string;
  keyring: Keyring;
  clock: ManualClock;
  nodeId?: string;
  publicUrl?: string;
  settings?: Partial<ApprovalSettings>;
  /**
   * Share another node's store. Two SQLite connections in one process cannot stand in for two
   * nodes (node:sqlite is synchronous: a writer waiting on the lock blocks the thread that holds
   * it), so SQLite "second nodes" share the store and differ in ledger partition and components.
   */
  store?: Store;
}): Promise<ApprovalsNode> {
  const shared = options.store !== undefined;
  const store = options.store ?? (await Store.open({ url: options.url, dataDir: options.dataDir }));
  if (!shared) await store.migrate(allMigrations);
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
  const auditor = await Auditor.open({
    store,
    partition: options.nodeId ?? 'node-a',
    clock: options.clock,
    logger,
    failMode: 'closed',
  });
  const identity = new Identity({ store, auditor, clock: options.clock });
  const metrics = new Registry();
  const approvals = new Approvals({
    store,
    auditor,
    clock: options.clock,
    logger,
    keyring: options.keyring,
    identity,
    metrics,
    publicUrl: options.publicUrl ?? 'https://warden.example',
    settings: options.settings,
  });
  return {
    store,
    auditor,
    identity,
    approvals,
    metrics,
    logs,
    async close() {
      await approvals.close();
      if (!shared) await store.close();
    },
  };
}

export function newKeyring(): Keyring {
  return new Keyring(generateMasterKey().key);
}

export interface World {
  admin: Caller;
  owner: { id: string; username: string };
  alice: { id: string; username: string };
  approver: { id: string; username: string };
  agentId: string;
  agentName: string;
}

/**
 * Registers people (admin, an agent owner, a delegating user alice, an approver), a provider, a
 * template whose `payments.send` over 100 needs approval by the `finance` group, and one agent.
 */
export async function seedWorld(identity: Identity, approvals: Approvals): Promise<World> {
  const admin = await identity.users.create(
    userCreateSchema.parse({ username: 'root', roles: ['admin'], password: 'root-password-123' }),
    undefined,
  );
  const adminCaller: Caller = { userId: admin.id, username: admin.username, role: 'admin' };
  const mk = (username: string, roles: ('approver' | 'agent_owner' | 'admin')[], email: string) =>
    identity.users.create(
      userCreateSchema.parse({ username, roles, email, password: `${username}-password-123` }),
      adminCaller,
    );
  const owner = await mk('olivia', ['agent_owner', 'approver'], 'olivia@example.test');
  const alice = await mk('alice', [], 'alice@example.test');
  const approver = await mk('bob', ['approver'], 'bob@example.test');
  const { jwks } = await keyPair();
  await identity.providers.create(
    providerCreateSchema.parse({ name: 'acme', contact: 'sec@acme.test', jwks }),
    adminCaller,
  );
  await identity.templates.create(
    templateCreateSchema.parse({
      name: 'payments',
      spec: templateSpec({
        allowed_tools: ['payments.send', 'tickets.create'],
        approval_rules: [
          { tool: 'payments.send', argument: 'amount', above: 100, approvers: 'group', group: 'finance' },
          { tool: 'tickets.*', approvers: 'owner' },
        ],
      }),
    }),
    adminCaller,
  );
  const agent = await identity.agents.create(
    agentCreateSchema.parse({
      name: 'pay-bot',
      provider: 'acme',
      template: 'payments',
      owner: owner.id,
      purpose: 'pays invoices',
      jwks,
    }),
    adminCaller,
  );
  await approvals.groups.put('finance', [approver.username, owner.username], adminCaller);
  return {
    admin: adminCaller,
    owner: { id: owner.id, username: owner.username },
    alice: { id: alice.id, username: alice.username },
    approver: { id: approver.id, username: approver.username },
    agentId: agent.id,
    agentName: agent.name,
  };
}

/** Every audit event of the given types in the partition. */
export async function events(store: Store, partition: string, prefix = 'approval.') {
  const all = await readEvents(store.db, partition, 0, 10_000);
  return all.filter((e) => e.type.startsWith(prefix));
}

export { ManualClock };
