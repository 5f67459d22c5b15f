import type { Kysely } from 'kysely';
import { Counter, Histogram, type Registry } from 'prom-client';
import { z } from 'zod';
import type { AuditActor, Auditor, AuditRequestMeta } from '../audit/index.ts';
import {
  type Clock,
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  type Keyring,
  type Logger,
  NotFoundError,
  RateLimitedError,
  uuidv7,
} from '../core/index.ts';
import type { Identity, Role, TemplateSpec } from '../identity/index.ts';
import { isUniqueViolation, type Store } from '../store/index.ts';
import { authorizationDetailsOf, callHash, type GatedCall, toolMatches } from './call.ts';
import { NotificationChannels } from './channels.ts';
import { ApprovalRefusedError } from './errors.ts';
import { ApproverGroups } from './groups.ts';
import {
  type ApprovalRequestInput,
  type ApprovalStatus,
  type ApprovalView,
  type ApproverStats,
  type Approvers,
  approvalListQuerySchema,
  approvalRequestInputSchema,
} from './schemas.ts';

/** The change-feed channel decisions and expiries are published on (wakes waiters on every node). */
export const APPROVALS_CHANNEL = 'approvals';

export const approvalSettingsSchema = z
  .object({
    /** Time a person has to decide, unless the request says otherwise. */
    defaultTtlSeconds: z
      .number()
      .int()
      .min(10)
      .max(7 * 24 * 3600)
      .default(900),
    /** How long an approval may be used, counted from the decision. */
    grantTtlSeconds: z
      .number()
      .int()
      .min(5)
      .max(24 * 3600)
      .default(300),
    /** Approval-fatigue guard: at most `max` new requests per agent per `windowSeconds`. */
    rateLimit: z
      .object({
        max: z.number().int().min(1).max(10_000).default(20),
        windowSeconds: z.number().int().min(1).max(86_400).default(300),
      })
      .strict()
      .default({ max: 20, windowSeconds: 300 }),
    /** How often undecided requests past their expiry are marked expired. */
    sweepIntervalMs: z.number().int().min(100).max(600_000).default(5_000),
    notifyTimeoutMs: z.number().int().min(100).max(60_000).default(10_000),
  })
  .strict();
export type ApprovalSettings = z.infer<typeof approvalSettingsSchema>;

export interface ApprovalsDeps {
  store: Store;
  auditor: Auditor;
  clock: Clock;
  logger: Logger;
  keyring: Keyring;
  identity: Identity;
  metrics: Registry;
  /** Base URL of this Warden (links in notifications point to `<publicUrl>/approvals/<id>`). */
  publicUrl: string;
  settings?: z.input<typeof approvalSettingsSchema>;
}

/** Who is deciding. Agents are represented so that they can be refused explicitly. */
export interface Approver {
  type: 'user' | 'agent';
  id: string;
  name?: string | undefined;
  /** Roles this credential carries (an API token carries one; a page sign-in the user's roles). */
  roles: readonly Role[];
  request?: AuditRequestMeta | undefined;
}

/** Result of asking for approval: the request, and whether an identical pending one was reused. */
export interface RequestOutcome {
  request: ApprovalView;
  grouped: boolean;
}

/** What the gateway does with a call that needs approval. */
export type GateOutcome =
  | { status: 'granted'; request: ApprovalView }
  | { status: 'pending'; request: ApprovalView };

type Row = {
  id: string;
  agent_id: string;
  agent_name: string;
  owner_id: string;
  user_id: string | null;
  intent: string | null;
  tool: string;
  resource: string | null;
  arguments: string;
  authorization_details: string;
  binding_message: string;
  call_hash: string;
  approvers: string;
  policies: string;
  status: ApprovalStatus;
  created_at: number;
  expires_at: number;
  decision: 'approved' | 'denied' | null;
  decided_at: number | null;
  decided_by: string | null;
  decided_by_name: string | null;
  decision_comment: string | null;
  grant_expires_at: number | null;
  consumed_at: number | null;
};

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
const DECIDING_ROLES: readonly Role[] = ['approver', 'admin'];
const SYSTEM: AuditActor = { type: 'system', id: 'approvals' };

/**
 * Human approval of individual agent actions. A request holds the exact call (as RFC 9396
 * `authorization_details`) and who may decide; an approval yields a one-time grant bound to the
 * SHA-256 of the call, consumed atomically (a conditional UPDATE, so two nodes cannot both use
 * it). Every request, decision, expiry and use is an audit event linked by request id and call
 * hash.
 */
export class Approvals {
  readonly settings: ApprovalSettings;
  readonly channels: NotificationChannels;
  readonly groups: ApproverGroups;
  readonly #deps: ApprovalsDeps;
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #metrics: {
    requests: Counter<'outcome'>;
    decisions: Counter<'decision'>;
    latency: Histogram<'decision'>;
    consumptions: Counter<'outcome'>;
  };
  #sweeper: NodeJS.Timeout | undefined;

  constructor(deps: ApprovalsDeps) {
    this.#deps = deps;
    this.settings = approvalSettingsSchema.parse(deps.settings ?? {});
    this.groups = new ApproverGroups(deps);
    this.channels = new NotificationChannels({
      ...deps,
      timeoutMs: this.settings.notifyTimeoutMs,
      recipients: (view) => this.#recipientEmails(view),
      userEmail: (id) => this.#emailOf(id),
    });
    const registers = [deps.metrics];
    this.#metrics = {
      requests: new Counter({
        name: 'warden_approval_requests_total',
        help: 'Approval requests by outcome (created, grouped with an identical pending one, rate_limited)',
        labelNames: ['outcome'],
        registers,
      }),
      decisions: new Counter({
        name: 'warden_approval_decisions_total',
        help: 'Approval decisions (approved, denied, expired)',
        labelNames: ['decision'],
        registers,
      }),
      latency: new Histogram({
        name: 'warden_approval_latency_seconds',
        help: 'Time from request to decision',
        labelNames: ['decision'],
        buckets: [5, 15, 30, 60, 120, 300, 900, 3600, 14_400, 86_400],
        registers,
      }),
      consumptions: new Counter({
        name: 'warden_approval_grant_uses_total',
        help: 'Uses of one-time approval grants by outcome (used, or the refusal reason)',
        labelNames: ['outcome'],
        registers,
      }),
    };
  }

  get #db(): Kysely<any> {
    return this.#deps.store.db;
  }

  /** Starts the expiry sweep (one per node; the conditional update makes concurrent sweeps safe). */
  start(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => {
      this.expireDue().catch((e: Error) =>
        this.#deps.logger.warn({ err: { message: e.message } }, 'approvals: expiry sweep failed'),
      );
    }, this.settings.sweepIntervalMs);
    this.#sweeper.unref();
  }

  /** Stops the sweep and waits for notifications still being delivered. */
  async close(): Promise<void> {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    await this.settled();
  }

  /** Resolves when every notification started so far has been delivered or has failed. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#inflight]);
  }

  #view(row: Row): ApprovalView {
    const approvers = JSON.parse(row.approvers) as Approvers;
    return {
      id: row.id,
      status: row.status,
      agent: { id: row.agent_id, name: row.agent_name, owner_id: row.owner_id },
      user_id: row.user_id,
      intent: row.intent,
      tool: row.tool,
      resource: row.resource,
      arguments: JSON.parse(row.arguments) as Record<string, unknown>,
      authorization_details: JSON.parse(row.authorization_details) as Record<string, unknown>[],
      binding_message: row.binding_message,
      call_hash: row.call_hash,
      approvers,
      policies: JSON.parse(row.policies) as string[],
      created_at: iso(row.created_at) as string,
      expires_at: iso(row.expires_at) as string,
      decided_at: iso(row.decided_at),
      decided_by: row.decided_by ? { id: row.decided_by, name: row.decided_by_name } : null,
      decision_comment: row.decision_comment,
      grant_expires_at: iso(row.grant_expires_at),
      consumed_at: iso(row.consumed_at),
      url: this.pageUrl(row.id),
    };
  }

  /** The approval page of a request. */
  pageUrl(id: string): string {
    return `${this.#deps.publicUrl.replace(/\/+$/, '')}/approvals/${encodeURIComponent(id)}`;
  }

  async #row(id: string, db: Kysely<any> = this.#db): Promise<Row> {
    const row = (await db
      .selectFrom('approval_requests')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()) as Row | undefined;
    if (!row)
      throw new NotFoundError(`approval request ${id} does not exist`, { code: 'ERR_APPROVAL_NOT_FOUND' });
    return row;
  }

  /** The approvers a template rule names for a call, or undefined when no rule matches. */
  static approversFromTemplate(
    spec: Pick<TemplateSpec, 'approval_rules'>,
    tool: string,
    args: Record<string, unknown>,
  ): Approvers | undefined {
    for (const rule of spec.approval_rules) {
      if (!toolMatches(rule.tool, tool)) continue;
      if (rule.argument !== undefined && rule.above !== undefined) {
        const value = Number(args[rule.argument]);
        if (!(Number.isFinite(value) && value > rule.above)) continue;
      }
      return rule.approvers === 'group'
        ? { kind: 'group', group: rule.group ?? 'approvers', allow_owner: false }
        : { kind: rule.approvers, allow_owner: rule.approvers === 'owner' };
    }
    return undefined;
  }

  /**
   * Asks for approval of one exact call (after a decision said `approval_required`). An identical
   * pending request (same call hash) is reused rather than duplicated; more than the configured
   * number of new requests per agent within the window is refused (429).
   */
  async request(input: ApprovalRequestInput, meta?: AuditRequestMeta): Promise<RequestOutcome> {
    const parsed = approvalRequestInputSchema.parse(input);
    const { clock } = this.#deps;
    const resolved = await this.#deps.identity.agents.resolve(parsed.agent_id);
    if (!resolved.usable) {
      throw new ForbiddenError(`agent ${resolved.agent.name} is not active`, {
        code: 'ERR_AGENT_NOT_USABLE',
      });
    }
    const approvers: Approvers = parsed.approvers
      ? {
          ...parsed.approvers,
          allow_owner: parsed.approvers.allow_owner ?? parsed.approvers.kind === 'owner',
        }
      : (Approvals.approversFromTemplate(resolved.template.spec, parsed.tool, parsed.arguments) ?? {
          kind: 'owner',
          allow_owner: true,
        });
    if (approvers.kind === 'user' && !parsed.user_id) {
      throw new InvalidRequestError('a request for the delegating user needs user_id', {
        code: 'ERR_APPROVAL_NO_USER',
      });
    }
    const call: GatedCall = {
      agentId: parsed.agent_id,
      userId: parsed.user_id,
      tool: parsed.tool,
      resource: parsed.resource,
      arguments: parsed.arguments,
    };
    const hash = callHash(call);
    const actor: AuditActor = {
      type: 'agent',
      id: resolved.agent.id,
      name: resolved.agent.name,
      on_behalf_of: parsed.user_id ? { type: 'user', id: parsed.user_id } : undefined,
    };

    await this.expireDue({ callHash: hash });
    const existing = await this.#pendingByHash(hash);
    if (existing) {
      this.#metrics.requests.inc({ outcome: 'grouped' });
      return { request: this.#view(existing), grouped: true };
    }

    const now = clock.now();
    const window = this.settings.rateLimit.windowSeconds * 1000;
    const recent = await this.#db
      .selectFrom('approval_requests')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('agent_id', '=', parsed.agent_id)
      .where('created_at', '>', now - window)
      .executeTakeFirst();
    if (Number(recent?.n ?? 0) >= this.settings.rateLimit.max) {
      this.#metrics.requests.inc({ outcome: 'rate_limited' });
      await this.#deps.auditor.record({
        type: 'approval.requested',
        actor,
        action: parsed.tool,
        resource: { type: 'tool', id: parsed.tool },
        outcome: 'denied',
        error_code: 'ERR_RATE_LIMITED',
        request: meta,
        details: { call_hash: hash, reason: 'too many approval requests from this agent' },
      });
      throw new RateLimitedError(
        `agent ${resolved.agent.name} asked for too many approvals; try again later`,
        this.settings.rateLimit.windowSeconds,
      );
    }

    const ttl = (parsed.ttl_seconds ?? this.settings.defaultTtlSeconds) * 1000;
    const id = uuidv7(clock);
    const binding =
      parsed.binding_message ?? `${resolved.agent.name}: ${parsed.tool} (${hash.slice(0, 8)})`.slice(0, 200);
    const row: Row = {
      id,
      agent_id: resolved.agent.id,
      agent_name: resolved.agent.name,
      owner_id: resolved.agent.owner_id,
      user_id: parsed.user_id ?? null,
      intent: parsed.intent ?? null,
      tool: parsed.tool,
      resource: parsed.resource ?? null,
      arguments: JSON.stringify(parsed.arguments),
      authorization_details: JSON.stringify(authorizationDetailsOf(call)),
      binding_message: binding,
      call_hash: hash,
      approvers: JSON.stringify(approvers),
      policies: JSON.stringify(parsed.policies),
      status: 'pending',
      created_at: now,
      expires_at: now + ttl,
      decision: null,
      decided_at: null,
      decided_by: null,
      decided_by_name: null,
      decision_comment: null,
      grant_expires_at: null,
      consumed_at: null,
    };
    try {
      await this.#deps.auditor.transact(
        (tx) => tx.insertInto('approval_requests').values(row).execute(),
        () => ({
          type: 'approval.requested',
          actor,
          action: parsed.tool,
          resource: { type: 'approval_request', id },
          intent: parsed.intent ? { text: parsed.intent } : undefined,
          decision: { effect: 'permit', approval_required: true, policies: parsed.policies },
          outcome: 'success',
          request: meta,
          details: {
            call_hash: hash,
            approvers,
            expires_at: row.expires_at,
            binding_message: binding,
            resource: parsed.resource,
          },
        }),
      );
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      // Another node created the identical request at the same moment: use that one.
      const other = await this.#pendingByHash(hash);
      if (!other) throw e;
      this.#metrics.requests.inc({ outcome: 'grouped' });
      return { request: this.#view(other), grouped: true };
    }
    this.#metrics.requests.inc({ outcome: 'created' });
    const view = this.#view(row);
    this.#track(this.channels.notify(view));
    return { request: view, grouped: false };
  }

  #track(p: Promise<unknown>): void {
    const tracked = p.catch(() => {}).finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
  }

  async #pendingByHash(hash: string): Promise<Row | undefined> {
    return (await this.#db
      .selectFrom('approval_requests')
      .selectAll()
      .where('call_hash', '=', hash)
      .where('status', '=', 'pending')
      .executeTakeFirst()) as Row | undefined;
  }

  /** A request (marked expired first if its time has passed undecided). */
  async get(id: string): Promise<ApprovalView> {
    const row = await this.#row(id);
    if (row.status === 'pending' && row.expires_at <= this.#deps.clock.now()) {
      await this.expireDue({ id });
      return this.#view(await this.#row(id));
    }
    return this.#view(row);
  }

  /**
   * Requests, newest first. People without a deciding role (`approver`, `admin`) or a reading role
   * see only requests about their own agents or made on their behalf.
   */
  async list(
    query: z.input<typeof approvalListQuerySchema>,
    viewer?: { userId: string; roles: readonly Role[] },
  ): Promise<ApprovalView[]> {
    const q = approvalListQuerySchema.parse(query);
    await this.expireDue();
    let sel = this.#db.selectFrom('approval_requests').selectAll().orderBy('id', 'desc').limit(q.limit);
    if (q.status) sel = sel.where('status', '=', q.status);
    if (q.agent_id) sel = sel.where('agent_id', '=', q.agent_id);
    const broad = viewer?.roles.some((r) => ['admin', 'approver', 'security_analyst', 'auditor'].includes(r));
    if (viewer && !broad) {
      const uid = viewer.userId;
      sel = sel.where((eb) => eb.or([eb('owner_id', '=', uid), eb('user_id', '=', uid)]));
    }
    return ((await sel.execute()) as Row[]).map((r) => this.#view(r));
  }

  /** Whether `approver` may decide this request; throws the reason when not. */
  async #assertEligible(row: Row, approver: Approver): Promise<void> {
    if (approver.type !== 'user') {
      throw new ApprovalRefusedError('agent_approver', row.id, 'an agent can never approve an action');
    }
    const rule = JSON.parse(row.approvers) as Approvers;
    if (approver.id === row.owner_id && !rule.allow_owner) {
      throw new ApprovalRefusedError(
        'self_approval',
        row.id,
        'separation of duties: the owner of the agent may not approve its requests under this rule',
      );
    }
    switch (rule.kind) {
      case 'user':
        if (approver.id === row.user_id) return;
        break;
      case 'owner':
        if (approver.id === row.owner_id) return;
        break;
      case 'group': {
        const members = await this.groups.memberIds(rule.group as string);
        if (members.includes(approver.id) && approver.roles.some((r) => DECIDING_ROLES.includes(r))) return;
        break;
      }
    }
    throw new ApprovalRefusedError(
      'not_eligible',
      row.id,
      rule.kind === 'group'
        ? `only members of the approver group ${rule.group} (with the approver or admin role) may decide this request`
        : rule.kind === 'user'
          ? 'only the user the agent acts for may decide this request'
          : "only the agent's owner may decide this request",
    );
  }

  /** True when `approver` may decide the request (for the page: whether to offer the buttons). */
  async canDecide(id: string, approver: Approver): Promise<boolean> {
    try {
      await this.#assertEligible(await this.#row(id), approver);
      return true;
    } catch (e) {
      if (e instanceof ApprovalRefusedError) return false;
      throw e;
    }
  }

  /**
   * Approves or denies a pending request. Refused (and recorded) for agents, for the owner of the
   * agent unless the rule allows it, for anyone the rule does not name, and after expiry or an
   * earlier decision. The decision is published on the change feed so waiters on every node wake.
   */
  async decide(
    id: string,
    decision: 'approve' | 'deny',
    approver: Approver,
    comment?: string,
  ): Promise<ApprovalView> {
    const { clock, auditor, store } = this.#deps;
    const actor: AuditActor = {
      type: approver.type,
      id: approver.id,
      name: approver.name,
      role: approver.roles.join(','),
    };
    const row = await this.#row(id);
    const refuse = async (e: ApprovalRefusedError) => {
      await auditor.record({
        type: 'approval.decided',
        actor,
        action: `approvals.${decision}`,
        resource: { type: 'approval_request', id },
        outcome: 'denied',
        error_code: e.code,
        request: approver.request,
        details: { call_hash: row.call_hash, reason: e.reason },
      });
      return e;
    };
    try {
      await this.#assertEligible(row, approver);
    } catch (e) {
      if (e instanceof ApprovalRefusedError) throw await refuse(e);
      throw e;
    }
    const now = clock.now();
    if (row.status === 'expired' || (row.status === 'pending' && row.expires_at <= now)) {
      if (row.status === 'pending') await this.expireDue({ id });
      throw await refuse(new ApprovalRefusedError('expired', id, 'the request expired before a decision'));
    }
    if (row.status !== 'pending') {
      throw await refuse(
        new ApprovalRefusedError('already_decided', id, `the request is already ${row.status}`),
      );
    }
    const status = decision === 'approve' ? 'approved' : 'denied';
    const grantExpires = status === 'approved' ? now + this.settings.grantTtlSeconds * 1000 : null;
    await auditor.transact(
      async (tx) => {
        const res = await tx
          .updateTable('approval_requests')
          .set({
            status,
            decision: status,
            decided_at: now,
            decided_by: approver.id,
            decided_by_name: approver.name ?? null,
            decision_comment: comment ?? null,
            grant_expires_at: grantExpires,
          })
          .where('id', '=', id)
          .where('status', '=', 'pending')
          .where('expires_at', '>', now)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) {
          throw new ConflictError('the request was decided or expired meanwhile', {
            code: 'ERR_APPROVAL_DECIDED',
          });
        }
        await store.changes.publish(APPROVALS_CHANNEL, { id, status }, tx);
      },
      () => ({
        type: 'approval.decided',
        actor,
        action: `approvals.${decision}`,
        resource: { type: 'approval_request', id },
        outcome: 'success',
        request: approver.request,
        details: {
          decision: status,
          call_hash: row.call_hash,
          agent_id: row.agent_id,
          tool: row.tool,
          latency_ms: now - row.created_at,
          comment: comment ?? undefined,
          grant_expires_at: grantExpires ?? undefined,
        },
      }),
    );
    this.#metrics.decisions.inc({ decision: status });
    this.#metrics.latency.observe({ decision: status }, (now - row.created_at) / 1000);
    return this.#view(await this.#row(id));
  }

  /**
   * Uses the one-time grant of an approved request for `call`. Succeeds once, only for the
   * identical call (same hash), only before the grant expires; the conditional UPDATE makes it
   * atomic across nodes. Otherwise throws {@link ApprovalRefusedError} with the reason.
   */
  async consume(id: string, call: GatedCall, meta?: AuditRequestMeta): Promise<ApprovalView> {
    const { clock, auditor } = this.#deps;
    const hash = callHash(call);
    const now = clock.now();
    const actor: AuditActor = {
      type: 'agent',
      id: call.agentId,
      on_behalf_of: call.userId ? { type: 'user', id: call.userId } : undefined,
    };
    const event = (outcome: 'success' | 'denied', code?: string, reason?: string) => ({
      type: 'approval.consumed' as const,
      actor,
      action: call.tool,
      resource: { type: 'approval_request', id },
      outcome,
      error_code: code,
      request: meta,
      details: { call_hash: hash, reason },
    });
    let used = false;
    try {
      await auditor.transact(
        async (tx) => {
          const res = await tx
            .updateTable('approval_requests')
            .set({ status: 'consumed', consumed_at: now })
            .where('id', '=', id)
            .where('status', '=', 'approved')
            .where('call_hash', '=', hash)
            .where('grant_expires_at', '>', now)
            .executeTakeFirst();
          used = Number(res.numUpdatedRows) === 1;
          if (!used) throw new NotUsed();
        },
        () => event('success'),
      );
    } catch (e) {
      if (!(e instanceof NotUsed)) throw e;
    }
    if (used) {
      this.#metrics.consumptions.inc({ outcome: 'used' });
      return this.#view(await this.#row(id));
    }
    const refusal = await this.#whyNot(id, hash, now);
    this.#metrics.consumptions.inc({ outcome: refusal.reason });
    await auditor.record(event('denied', refusal.code, refusal.reason));
    throw refusal;
  }

  async #whyNot(id: string, hash: string, now: number): Promise<ApprovalRefusedError> {
    const row = (await this.#db
      .selectFrom('approval_requests')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()) as Row | undefined;
    if (!row)
      throw new NotFoundError(`approval request ${id} does not exist`, { code: 'ERR_APPROVAL_NOT_FOUND' });
    if (row.call_hash !== hash) {
      return new ApprovalRefusedError('call_mismatch', id, 'the approval was given for a different call');
    }
    switch (row.status) {
      case 'consumed':
        return new ApprovalRefusedError('consumed', id, 'the approval was already used');
      case 'denied':
        return new ApprovalRefusedError('denied', id, 'the request was denied');
      case 'expired':
        return new ApprovalRefusedError('expired', id, 'the request expired undecided');
      case 'pending':
        if (row.expires_at <= now) {
          await this.expireDue({ id });
          return new ApprovalRefusedError('expired', id, 'the request expired undecided');
        }
        return new ApprovalRefusedError('pending', id, 'the request awaits a decision');
      default:
        return new ApprovalRefusedError('expired', id, 'the approval expired before it was used');
    }
  }

  /**
   * Marks undecided requests past their expiry as expired, each with an `approval.expired` event
   * and a change-feed message. Safe on many nodes at once (conditional update per request).
   */
  async expireDue(filter: { id?: string; callHash?: string } = {}): Promise<number> {
    const { clock, auditor, store } = this.#deps;
    const now = clock.now();
    let q = this.#db
      .selectFrom('approval_requests')
      .selectAll()
      .where('status', '=', 'pending')
      .where('expires_at', '<=', now)
      .limit(200);
    if (filter.id) q = q.where('id', '=', filter.id);
    if (filter.callHash) q = q.where('call_hash', '=', filter.callHash);
    const due = (await q.execute()) as Row[];
    let expired = 0;
    for (const row of due) {
      try {
        await auditor.transact(
          async (tx) => {
            const res = await tx
              .updateTable('approval_requests')
              .set({ status: 'expired' })
              .where('id', '=', row.id)
              .where('status', '=', 'pending')
              .executeTakeFirst();
            if (Number(res.numUpdatedRows) !== 1) throw new NotUsed();
            await store.changes.publish(APPROVALS_CHANNEL, { id: row.id, status: 'expired' }, tx);
          },
          () => ({
            type: 'approval.expired',
            actor: SYSTEM,
            action: row.tool,
            resource: { type: 'approval_request', id: row.id },
            outcome: 'failure',
            error_code: 'ERR_APPROVAL_EXPIRED',
            details: { call_hash: row.call_hash, agent_id: row.agent_id, expires_at: row.expires_at },
          }),
        );
        expired++;
        this.#metrics.decisions.inc({ decision: 'expired' });
      } catch (e) {
        if (!(e instanceof NotUsed)) throw e;
      }
    }
    return expired;
  }

  /**
   * Waits until the request is decided or expires, or `timeoutMs` passes, and returns it as it then
   * is. Wakes on the change feed, so a decision taken on another node is seen within a second.
   */
  async waitForDecision(id: string, timeoutMs: number): Promise<ApprovalView> {
    const { store, clock } = this.#deps;
    return new Promise<ApprovalView>((resolve, reject) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (view: ApprovalView | Error) => {
        if (done) return;
        done = true;
        unsubscribe();
        if (timer) clearTimeout(timer);
        if (view instanceof Error) reject(view);
        else resolve(view);
      };
      const check = async (final = false) => {
        try {
          const view = await this.get(id);
          if (view.status !== 'pending' || final) finish(view);
        } catch (e) {
          finish(e as Error);
        }
      };
      const unsubscribe = store.changes.subscribe(APPROVALS_CHANNEL, (change) => {
        if (change.payload.id === id) void check();
      });
      void (async () => {
        try {
          const row = await this.#row(id);
          const untilExpiry = Math.max(0, Number(row.expires_at) - clock.now());
          timer = setTimeout(() => void check(true), Math.min(timeoutMs, untilExpiry + 10));
          await check();
        } catch (e) {
          finish(e as Error);
        }
      })();
    });
  }

  /**
   * The gateway's entry point for a call the policy says needs approval.
   * - `retryRequestId` given (the agent retries with the id from a pending answer): uses that
   *   grant for this exact call; `pending` while undecided; refused when denied, expired, used or
   *   altered.
   * - `mode: 'hold'`: creates (or joins) the request and waits up to `waitMs` for the decision;
   *   an approval is consumed at once; still undecided → `pending`.
   * - `mode: 'pending'`: creates (or joins) the request and returns `pending` at once.
   */
  async authorizeCall(
    request: ApprovalRequestInput,
    options: { mode: 'hold' | 'pending'; waitMs?: number; retryRequestId?: string; meta?: AuditRequestMeta },
  ): Promise<GateOutcome> {
    const call: GatedCall = {
      agentId: request.agent_id,
      userId: request.user_id,
      tool: request.tool,
      resource: request.resource,
      arguments: request.arguments,
    };
    if (options.retryRequestId) {
      try {
        return { status: 'granted', request: await this.consume(options.retryRequestId, call, options.meta) };
      } catch (e) {
        if (e instanceof ApprovalRefusedError && e.reason === 'pending') {
          return { status: 'pending', request: await this.get(options.retryRequestId) };
        }
        throw e;
      }
    }
    const { request: created } = await this.request(request, options.meta);
    if (options.mode === 'pending') return { status: 'pending', request: created };
    const view = await this.waitForDecision(created.id, options.waitMs ?? 60_000);
    if (view.status === 'pending') return { status: 'pending', request: view };
    return { status: 'granted', request: await this.consume(created.id, call, options.meta) };
  }

  /**
   * Per-approver decision statistics (approval-fatigue signals for the risk part): counts,
   * approve ratio and decision latency, over decisions since `sinceMs` (default: all).
   */
  async stats(sinceMs = 0): Promise<ApproverStats[]> {
    const rows = (await this.#db
      .selectFrom('approval_requests')
      .select(['decided_by', 'decided_by_name', 'decision', 'decided_at', 'created_at'])
      .where('decided_by', 'is not', null)
      .where('decided_at', '>=', sinceMs)
      .execute()) as Pick<Row, 'decided_by' | 'decided_by_name' | 'decision' | 'decided_at' | 'created_at'>[];
    const by = new Map<
      string,
      { name: string | null; approved: number; denied: number; latencies: number[] }
    >();
    for (const r of rows) {
      const key = r.decided_by as string;
      const s = by.get(key) ?? { name: r.decided_by_name, approved: 0, denied: 0, latencies: [] };
      if (r.decision === 'approved') s.approved++;
      else s.denied++;
      s.latencies.push(Number(r.decided_at) - Number(r.created_at));
      by.set(key, s);
    }
    return [...by.entries()].map(([id, s]) => {
      const sorted = [...s.latencies].sort((a, b) => a - b);
      const total = s.approved + s.denied;
      return {
        approver_id: id,
        approver_name: s.name,
        approved: s.approved,
        denied: s.denied,
        approve_ratio: total ? s.approved / total : 0,
        latency_ms: {
          mean: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
          p50: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0,
          max: sorted.at(-1) ?? 0,
        },
      };
    });
  }

  /** Email addresses of the people who may decide a request. */
  async #recipientEmails(view: ApprovalView): Promise<string[]> {
    let ids: string[];
    if (view.approvers.kind === 'user') ids = view.user_id ? [view.user_id] : [];
    else if (view.approvers.kind === 'owner') ids = [view.agent.owner_id];
    else ids = await this.groups.memberIds(view.approvers.group as string);
    if (!view.approvers.allow_owner) ids = ids.filter((i) => i !== view.agent.owner_id);
    const emails: string[] = [];
    for (const id of ids) {
      const email = await this.#emailOf(id);
      if (email) emails.push(email);
    }
    return emails;
  }

  /** An active user's email address; a deleted or disabled user gets no mail. */
  async #emailOf(id: string): Promise<string | undefined> {
    try {
      const user = await this.#deps.identity.users.get(id);
      return user.email && user.status === 'active' ? user.email : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Internal signal: a conditional update matched no row (rolls the transaction back). */
class NotUsed extends Error {}
