import type { AuditEventInput, AuditRequestMeta } from '../audit/index.ts';
import type { Decision } from './decision.ts';
import type { NormalizedRequest } from './request.ts';

/**
 * Builds the `policy.decision` audit event for a decision. The normalised request (with the time
 * it was decided at) is kept in `details.request`, so a proposed policy version can later be
 * replayed against exactly what was asked (see simulation).
 */
export function decisionEvent(
  request: NormalizedRequest,
  decision: Decision,
  extra: { latency_ms?: number; request?: AuditRequestMeta } = {},
): AuditEventInput {
  const p = request.principal;
  const user = request.context.delegation?.user;
  const actor: AuditEventInput['actor'] =
    p.type === 'User'
      ? { type: 'user', id: p.id }
      : {
          type: 'agent',
          id: p.id,
          ...(user ? { on_behalf_of: { type: 'user' as const, id: user } } : {}),
          ...(request.context.delegation?.agents?.length
            ? {
                chain: [
                  { type: 'agent' as const, id: p.id },
                  ...request.context.delegation.agents
                    .filter((a) => a !== p.id)
                    .map((a) => ({ type: 'agent' as const, id: a })),
                  ...(user ? [{ type: 'user' as const, id: user }] : []),
                ],
              }
            : {}),
        };
  return {
    type: 'policy.decision',
    actor,
    action: request.action,
    resource: { type: request.resource.type, id: request.resource.id },
    ...(request.context.intent ? { intent: request.context.intent } : {}),
    decision: {
      effect: decision.decision,
      approval_required: decision.approval_required,
      policies: decision.determining_policies.map((d) => d.id),
      reason: decision.reason,
    },
    outcome: decision.decision === 'permit' ? 'success' : 'denied',
    ...(extra.latency_ms !== undefined ? { latency_ms: extra.latency_ms } : {}),
    ...(extra.request ? { request: extra.request } : {}),
    details: {
      request,
      policy_version: decision.policy_version,
      errors: decision.errors,
    },
  };
}
