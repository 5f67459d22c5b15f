import type { AuditEventType } from './catalogue.ts';

/** Who acted. For an agent acting for a person: `type: 'agent'` with `on_behalf_of`. */
export interface AuditActor {
  type: 'user' | 'agent' | 'system' | 'anonymous';
  id: string;
  name?: string | undefined;
  /** The person an agent acts for (delegated tokens: `sub`). */
  on_behalf_of?: { type: 'user'; id: string; name?: string | undefined } | undefined;
  /** The full delegation chain, outermost (current) actor first, as in nested `act` claims. */
  chain?: { type: 'agent' | 'user'; id: string }[] | undefined;
  /** The admin role used, for people. */
  role?: string | undefined;
}

/** What the actor declared it was trying to do. */
export interface AuditIntent {
  text?: string | undefined;
  task_id?: string | undefined;
  goal?: string | undefined;
}

export interface AuditDecision {
  effect: 'permit' | 'deny';
  approval_required?: boolean | undefined;
  /** Ids of the policies that determined the decision. */
  policies?: string[] | undefined;
  reason?: string | undefined;
}

export interface AuditRequestMeta {
  source_ip?: string | undefined;
  user_agent?: string | undefined;
  request_id?: string | undefined;
  /** Set by the ledger: the node that recorded the event. */
  node?: string | undefined;
}

/** An event as a part hands it to {@link Auditor.record}. */
export interface AuditEventInput {
  type: AuditEventType;
  actor: AuditActor;
  /** The operation, e.g. `agents.create`, `tools/call`, `token`. */
  action: string;
  resource?: { type: string; id?: string | undefined; name?: string | undefined } | undefined;
  intent?: AuditIntent | undefined;
  decision?: AuditDecision | undefined;
  outcome: 'success' | 'failure' | 'denied';
  /** Stable error code when `outcome` is not success. */
  error_code?: string | undefined;
  request?: AuditRequestMeta | undefined;
  latency_ms?: number | undefined;
  /** Event-specific facts. Passed through the redactor: never secrets. */
  details?: Record<string, unknown> | undefined;
}

/** An event as stored in the ledger. */
export interface AuditEvent extends AuditEventInput {
  /** UUIDv7: stable, time-sortable, used by receivers to de-duplicate. */
  id: string;
  /** Epoch milliseconds. */
  time: number;
  partition: string;
  seq: number;
  prev_hash: string;
  hash: string;
}
