import type { AuditEvent } from './event.ts';

/** The body of an event: everything but the chain fields, which is what the chain hash covers. */
export type AuditEventBody = Omit<AuditEvent, 'hash' | 'prev_hash'>;

/** The columns of `audit_events` that are copies of body fields, kept for queries. */
export interface EventIndexColumns {
  id: string;
  time: number;
  type: string;
  actor_type: string;
  actor_id: string;
  user_id: string | null;
  agent_id: string | null;
  outcome: string;
}

/**
 * Derives the query columns from an event body. The verifier recomputes them, so a column edited
 * to hide an event from searches is caught like an edited body.
 */
export function indexColumns(body: AuditEventBody): EventIndexColumns {
  return {
    id: body.id,
    time: body.time,
    type: body.type,
    actor_type: body.actor.type,
    actor_id: body.actor.id,
    user_id: body.actor.type === 'user' ? body.actor.id : (body.actor.on_behalf_of?.id ?? null),
    agent_id:
      body.actor.type === 'agent'
        ? body.actor.id
        : body.resource?.type === 'agent'
          ? (body.resource.id ?? null)
          : null,
    outcome: body.outcome,
  };
}
