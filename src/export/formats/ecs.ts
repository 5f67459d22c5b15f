import { AUDIT_EVENT_TYPES, type AuditEvent } from '../../audit/index.ts';
import { agentOf, classify, NUMERIC_SEVERITY, type OcsfClass, personOf, severityOf } from './classify.ts';
import { compact, type ProductInfo, WARDEN_PRODUCT } from './product.ts';

/** The Elastic Common Schema version the ECS documents follow. */
export const ECS_VERSION = '8.17.0';

const ECS_CATEGORY: Record<OcsfClass, string[]> = {
  account_change: ['iam'],
  authentication: ['authentication'],
  authorize_session: ['iam'],
  entity_management: ['configuration'],
  user_access: ['iam'],
  detection_finding: ['intrusion_detection'],
  api_activity: ['api'],
};

function ecsTypes(cls: OcsfClass, activityName: string, event: AuditEvent): string[] {
  const denied = event.outcome !== 'success';
  switch (cls) {
    case 'authentication':
      return [activityName === 'Logoff' ? 'end' : 'start'];
    case 'authorize_session':
      return [denied ? 'denied' : 'allowed'];
    case 'detection_finding':
      return ['indicator'];
    case 'api_activity':
      return ['access', denied ? 'denied' : 'allowed'];
    case 'account_change':
    case 'user_access':
      return [
        'user',
        /Create/.test(activityName) ? 'creation' : /Delete/.test(activityName) ? 'deletion' : 'change',
      ];
    default:
      return [
        /Create/.test(activityName)
          ? 'creation'
          : /Delete/.test(activityName)
            ? 'deletion'
            : /Read/.test(activityName)
              ? 'access'
              : 'change',
      ];
  }
}

/**
 * Formats a ledger event as an Elastic ECS document: `user.*` is the person (the acting user, or
 * the user an agent acts for), `user.effective.*` the agent that acted.
 */
export function toEcs(event: AuditEvent, product: ProductInfo = WARDEN_PRODUCT): Record<string, unknown> {
  const { class: cls, activityName } = classify(event);
  const person = personOf(event);
  const agent = agentOf(event);
  const principal = person ?? (agent ? undefined : { id: event.actor.id, name: event.actor.name });
  return compact({
    '@timestamp': new Date(event.time).toISOString(),
    ecs: { version: ECS_VERSION },
    message: AUDIT_EVENT_TYPES[event.type],
    event: {
      id: event.id,
      kind: cls === 'detection_finding' ? 'alert' : 'event',
      category: ECS_CATEGORY[cls],
      type: ecsTypes(cls, activityName, event),
      action: event.type,
      outcome: event.outcome === 'success' ? 'success' : 'failure',
      reason: event.decision?.reason ?? event.error_code,
      code: event.error_code,
      severity: NUMERIC_SEVERITY[severityOf(event)],
      duration: event.latency_ms === undefined ? undefined : Math.round(event.latency_ms * 1e6),
      sequence: event.seq,
      provider: 'warden',
      dataset: 'warden.audit',
      module: 'warden',
    },
    observer: {
      vendor: product.vendor,
      product: product.name,
      version: product.version,
      hostname: event.request?.node,
    },
    user: {
      id: principal?.id,
      name: principal?.name,
      roles: event.actor.role ? [event.actor.role] : undefined,
      effective: agent ? { id: agent.id, name: agent.name } : undefined,
      target:
        event.resource?.type === 'user' || event.resource?.type === 'agent'
          ? { id: event.resource.id, name: event.resource.name }
          : undefined,
    },
    source: event.request?.source_ip ? { ip: event.request.source_ip } : undefined,
    user_agent: event.request?.user_agent ? { original: event.request.user_agent } : undefined,
    http: event.request?.request_id ? { request: { id: event.request.request_id } } : undefined,
    rule: event.decision?.policies?.length ? { id: event.decision.policies.join(',') } : undefined,
    warden: {
      partition: event.partition,
      seq: event.seq,
      hash: event.hash,
      prev_hash: event.prev_hash,
      action: event.action,
      actor: { type: event.actor.type, id: event.actor.id, chain: event.actor.chain },
      resource: event.resource,
      intent: event.intent,
      decision: event.decision,
      details: event.details,
    },
  });
}
