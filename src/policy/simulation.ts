import { type AuditEvent, listPartitions, readEvents } from '../audit/index.ts';
import { type Clock, InvalidRequestError, WardenError } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import { decideWith } from './decision.ts';
import type { PolicyIndex } from './policy-index.ts';
import { normalizeRequest, type RequestEntity, toCedarRequest } from './request.ts';
import { ACTIONS } from './schema.ts';

/** A time window over the ledger, epoch milliseconds, `from` inclusive, `to` exclusive. */
export interface Window {
  from: number;
  to: number;
}

function checkWindow(w: Window): void {
  if (!Number.isSafeInteger(w.from) || !Number.isSafeInteger(w.to) || w.from >= w.to) {
    throw new InvalidRequestError('the window needs integer from < to (epoch milliseconds)', {
      code: 'ERR_POLICY_WINDOW_INVALID',
      invalidParams: [{ name: 'window', reason: 'from < to, epoch milliseconds' }],
    });
  }
}

/**
 * Every `policy.decision` event recorded in the window, from every partition of the ledger (read
 * through the audit outbox reader), at most `maxEvents`.
 */
export async function decisionEvents(
  store: Store,
  window: Window,
  maxEvents: number,
  filter: (e: AuditEvent) => boolean = () => true,
): Promise<{ events: AuditEvent[]; truncated: boolean }> {
  const events: AuditEvent[] = [];
  for (const { partition } of await listPartitions(store.db)) {
    let after = 0;
    for (;;) {
      const batch = await readEvents(store.db, partition, after, 1000);
      for (const e of batch) {
        if (e.type === 'policy.decision' && e.time >= window.from && e.time < window.to && filter(e)) {
          if (events.length >= maxEvents) return { events, truncated: true };
          events.push(e);
        }
      }
      if (batch.length < 1000) break;
      after = (batch[batch.length - 1] as AuditEvent).seq;
    }
  }
  return { events, truncated: false };
}

/** One recorded decision whose outcome a proposed version would change. */
export interface ChangedOutcome {
  event_id: string;
  time: number;
  principal: { type: string; id: string };
  action: string;
  resource: { type: string; id: string };
  before: { decision: 'permit' | 'deny'; approval_required: boolean; policies: string[] };
  after: { decision: 'permit' | 'deny'; approval_required: boolean; policies: string[]; reason: string };
}

export interface SimulationReport {
  window: Window;
  evaluated: number;
  unchanged: number;
  allowed_to_denied: ChangedOutcome[];
  denied_to_allowed: ChangedOutcome[];
  /** Still permitted, but approval is now (or no longer) required. */
  approval_changed: ChangedOutcome[];
  /** Recorded requests the proposed version could not evaluate (e.g. no longer valid). */
  failed: { event_id: string; error: string }[];
  /** More decisions were recorded than `maxEvents`; only the first were replayed. */
  truncated: boolean;
}

/**
 * Replays the decisions recorded in the ledger over a window against a proposed (not active)
 * policy set and reports which outcomes would change.
 */
export async function simulate(
  store: Store,
  proposed: PolicyIndex,
  proposedVersion: number | null,
  window: Window,
  clock: Clock,
  options: { maxEvents?: number } = {},
): Promise<SimulationReport> {
  checkWindow(window);
  const { events, truncated } = await decisionEvents(store, window, options.maxEvents ?? 100_000);
  const report: SimulationReport = {
    window,
    evaluated: 0,
    unchanged: 0,
    allowed_to_denied: [],
    denied_to_allowed: [],
    approval_changed: [],
    failed: [],
    truncated,
  };
  for (const e of events) {
    const recorded = (e.details as { request?: unknown } | undefined)?.request;
    const before = e.decision;
    if (!recorded || !before) {
      report.failed.push({ event_id: e.id, error: 'the event does not carry its request' });
      continue;
    }
    let after: ReturnType<typeof decideWith>;
    let request: ReturnType<typeof normalizeRequest>;
    try {
      request = normalizeRequest(recorded, clock);
      after = decideWith(proposed, proposedVersion, request);
    } catch (err) {
      if (!(err instanceof WardenError) || err.status >= 500) throw err;
      report.failed.push({ event_id: e.id, error: err.message });
      continue;
    }
    report.evaluated++;
    const outcome: ChangedOutcome = {
      event_id: e.id,
      time: e.time,
      principal: { type: request.principal.type, id: request.principal.id },
      action: request.action,
      resource: { type: request.resource.type, id: request.resource.id },
      before: {
        decision: before.effect,
        approval_required: before.approval_required ?? false,
        policies: before.policies ?? [],
      },
      after: {
        decision: after.decision,
        approval_required: after.approval_required,
        policies: after.determining_policies.map((p) => p.id),
        reason: after.reason,
      },
    };
    if (before.effect === 'permit' && after.decision === 'deny') report.allowed_to_denied.push(outcome);
    else if (before.effect === 'deny' && after.decision === 'permit') report.denied_to_allowed.push(outcome);
    else if (after.decision === 'permit' && (before.approval_required ?? false) !== after.approval_required) {
      report.approval_changed.push(outcome);
    } else report.unchanged++;
  }
  return report;
}

/** A permission a policy grants an agent, and whether the agent used it in the window. */
export interface Grant {
  policy_id: string;
  actions: string[];
  /** `Tool::"x"`, `in Server::"s"`, `any Tool`, or `any`. */
  resource: string;
  annotations: Record<string, string>;
  uses: number;
  last_used: number | null;
}

export interface LeastAgencyReport {
  agent: string;
  window: Window;
  grants: Grant[];
  /** Grants never used in the window: candidates to remove. */
  unused: Grant[];
  truncated: boolean;
}

function describeResource(c: PolicyIndex['policies'][number]['json']['resource']): string {
  const uid = (e: unknown) => {
    const u =
      (e as { __entity?: { type: string; id: string } }).__entity ?? (e as { type: string; id: string });
    return `${u.type.replace(/^Warden::/, '')}::${JSON.stringify(u.id)}`;
  };
  if (c.op === '==' && 'entity' in c) return uid(c.entity);
  if (c.op === 'in' && 'entity' in c) return `in ${uid(c.entity)}`;
  if (c.op === 'is')
    return `any ${c.entity_type.replace(/^Warden::/, '')}${c.in && 'entity' in c.in ? ` in ${uid(c.in.entity)}` : ''}`;
  return 'any';
}

function describeActions(
  c: PolicyIndex['policies'][number]['json']['action'],
  principalType: string,
): string[] {
  const all = Object.keys(ACTIONS).filter((a) =>
    ((ACTIONS[a]?.principals ?? []) as string[]).includes(principalType),
  );
  const expandOne = (e: unknown): string[] => {
    const u = (e as { __entity?: { id: string } }).__entity ?? (e as { id: string });
    if (ACTIONS[u.id]) return [u.id];
    return all.filter((a) => ACTIONS[a]?.groups.includes(u.id));
  };
  if (c.op === '==' && 'entity' in c) return expandOne(c.entity);
  if (c.op === 'in') return [...new Set(('entity' in c ? [c.entity] : c.entities).flatMap(expandOne))].sort();
  return all;
}

/**
 * Least agency for one agent: the permits whose scope can apply to it (through its own id, its
 * template, provider or any principal), each with how often it determined a permitted decision
 * for the agent in the window. Grants never used are candidates to remove.
 */
export async function leastAgency(
  store: Store,
  index: PolicyIndex,
  agent: RequestEntity,
  window: Window,
  clock: Clock,
  options: { maxEvents?: number } = {},
): Promise<LeastAgencyReport> {
  checkWindow(window);
  // A request shape for the agent: which policies could apply is a property of the principal only.
  const shape = toCedarRequest(
    normalizeRequest(
      {
        principal: { ...agent, type: agent.type || 'Agent' },
        action: 'call_tool',
        resource: { type: 'Tool', id: '-' },
      },
      clock,
    ),
  );
  const grants = index.principalPolicies(shape).filter((p) => p.effect === 'permit');
  const { events, truncated } = await decisionEvents(
    store,
    window,
    options.maxEvents ?? 100_000,
    (e) => e.actor.id === agent.id && e.decision?.effect === 'permit',
  );
  const uses = new Map<string, { uses: number; last: number }>();
  for (const e of events) {
    for (const id of e.decision?.policies ?? []) {
      const u = uses.get(id) ?? { uses: 0, last: 0 };
      u.uses++;
      u.last = Math.max(u.last, e.time);
      uses.set(id, u);
    }
  }
  const principalType =
    shape.principal && 'type' in shape.principal ? shape.principal.type.replace(/^Warden::/, '') : 'Agent';
  const report: Grant[] = grants.map((p) => ({
    policy_id: p.id,
    actions: describeActions(p.json.action, principalType),
    resource: describeResource(p.json.resource),
    annotations: p.annotations,
    uses: uses.get(p.id)?.uses ?? 0,
    last_used: uses.get(p.id)?.last ?? null,
  }));
  return { agent: agent.id, window, grants: report, unused: report.filter((g) => g.uses === 0), truncated };
}
