import { isIP } from 'node:net';
import { AUDIT_EVENT_TYPES, type AuditEvent } from '../../audit/index.ts';
import {
  agentOf,
  classify,
  OCSF_CATEGORIES,
  OCSF_CLASSES,
  OCSF_SEVERITY,
  type OcsfClass,
  personOf,
  severityOf,
} from './classify.ts';
import { compact, type ProductInfo, WARDEN_PRODUCT } from './product.ts';

/** The OCSF schema version Warden's exported events conform to. */
export const OCSF_VERSION = '1.8.0';

type OcsfUser = { uid: string; name?: string | undefined; type_id: number; type: string };

function personUser(p: { id: string; name?: string | undefined }): OcsfUser {
  return { uid: p.id, name: p.name, type_id: 1, type: 'User' };
}

function agentUser(a: { id: string; name?: string | undefined }): OcsfUser {
  return { uid: a.id, name: a.name, type_id: 99, type: 'Agent' };
}

/** The acting principal as an OCSF user: a person, an agent, the system, or an unknown caller. */
function actorUser(event: AuditEvent): OcsfUser {
  const a = event.actor;
  switch (a.type) {
    case 'user':
      return personUser(a);
    case 'agent':
      return agentUser(a);
    case 'system':
      return { uid: a.id, name: a.name, type_id: 3, type: 'System' };
    default:
      return { uid: a.id, name: a.name, type_id: 0, type: 'Unknown' };
  }
}

/**
 * OCSF `actor`: the user context (the person an agent acts for, or the acting principal) and, when
 * an agent acted, the agent as the client application.
 */
function actorOf(event: AuditEvent): Record<string, unknown> {
  const person = personOf(event);
  const agent = agentOf(event);
  return {
    user: person ? personUser(person) : actorUser(event),
    app_uid: agent?.id,
    app_name: agent?.name,
  };
}

/** The subject of identity classes: the person for delegated actions, else the acting principal. */
function subjectUser(event: AuditEvent): OcsfUser {
  const person = personOf(event);
  if (person) return personUser(person);
  const username = event.details?.username;
  if (event.actor.type === 'anonymous' && typeof username === 'string') {
    return { uid: event.actor.id, name: username, type_id: 0, type: 'Unknown' };
  }
  return actorUser(event);
}

/** The account a change is about: the resource when it is a user or an agent. */
function accountUser(event: AuditEvent): OcsfUser {
  const r = event.resource;
  if (r?.id && r.type === 'user') return personUser({ id: r.id, name: r.name });
  if (r?.id && r.type === 'agent') return agentUser({ id: r.id, name: r.name });
  return subjectUser(event);
}

function srcEndpoint(event: AuditEvent): Record<string, unknown> | undefined {
  const ip = event.request?.source_ip;
  if (ip && isIP(ip)) return { ip };
  return undefined;
}

function stringList(value: unknown): string[] | undefined {
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  return undefined;
}

function classFields(event: AuditEvent, cls: OcsfClass): Record<string, unknown> {
  const resourceName = event.resource?.name ?? event.resource?.id;
  switch (cls) {
    case 'account_change':
      return { user: accountUser(event) };
    case 'authentication':
      return {
        user: subjectUser(event),
        service: { name: 'Warden', uid: `warden:${event.action}` },
        is_remote: event.request?.source_ip ? true : undefined,
      };
    case 'authorize_session':
      return { user: subjectUser(event), privileges: [event.action] };
    case 'user_access': {
      const grantee =
        event.resource?.type === 'agent' && event.resource.id
          ? agentUser({ id: event.resource.id, name: event.resource.name })
          : (agentOf(event) && agentUser(agentOf(event)!)) || subjectUser(event);
      return {
        user: grantee,
        privileges: stringList(event.details?.scopes) ??
          stringList(event.details?.privileges) ?? [event.action],
      };
    }
    case 'entity_management':
      return {
        entity: {
          type: event.resource?.type ?? event.type.split('.')[0],
          uid: event.resource?.id ?? (event.type.startsWith('system.') ? event.partition : undefined),
          name: event.resource?.name ?? (event.resource?.id ? undefined : event.type),
        },
      };
    case 'detection_finding': {
      const title = event.details?.title ?? event.details?.detector ?? event.details?.signal;
      return {
        finding_info: {
          uid: typeof event.details?.finding_id === 'string' ? event.details.finding_id : event.id,
          title: typeof title === 'string' ? title : AUDIT_EVENT_TYPES[event.type],
          desc: typeof event.details?.description === 'string' ? event.details.description : undefined,
          types: stringList(event.details?.signal),
        },
        resources: event.resource
          ? [{ type: event.resource.type, uid: event.resource.id, name: resourceName }]
          : undefined,
      };
    }
    case 'api_activity':
      return {
        api: {
          operation: event.action,
          service: resourceName ? { name: resourceName, uid: event.resource?.id } : undefined,
          request: event.request?.request_id ? { uid: event.request.request_id } : undefined,
        },
        src_endpoint: srcEndpoint(event) ?? { name: event.actor.name ?? event.actor.id },
        resources: event.resource
          ? [{ type: event.resource.type, uid: event.resource.id, name: resourceName }]
          : undefined,
        http_request: event.request?.user_agent ? { user_agent: event.request.user_agent } : undefined,
      };
  }
}

/**
 * Formats a ledger event as an OCSF 1.8.0 event of its class (see `CLASSIFICATION`). Absent fields
 * are omitted; Warden-specific facts (chain position, intent, decision, details) go under
 * `unmapped.warden`.
 */
export function toOcsf(event: AuditEvent, product: ProductInfo = WARDEN_PRODUCT): Record<string, unknown> {
  const { class: cls, activityId, activityName } = classify(event);
  const info = OCSF_CLASSES[cls];
  const severity = OCSF_SEVERITY[severityOf(event)];
  const success = event.outcome === 'success';
  return compact({
    activity_id: activityId,
    activity_name: activityName,
    category_uid: info.category,
    category_name: OCSF_CATEGORIES[info.category],
    class_uid: info.uid,
    class_name: info.name,
    type_uid: info.uid * 100 + activityId,
    type_name: `${info.name}: ${activityName}`,
    severity_id: severity.id,
    severity: severity.name,
    status_id: success ? 1 : 2,
    status: success ? 'Success' : 'Failure',
    status_code: event.error_code,
    status_detail: event.decision?.reason,
    time: event.time,
    duration: event.latency_ms === undefined ? undefined : Math.round(event.latency_ms),
    message: AUDIT_EVENT_TYPES[event.type],
    metadata: {
      version: OCSF_VERSION,
      uid: event.id,
      product: { name: product.name, vendor_name: product.vendor, version: product.version },
      log_name: 'warden.audit',
      event_code: event.type,
      sequence: event.seq,
      correlation_uid: event.intent?.task_id ?? event.request?.request_id,
    },
    actor: actorOf(event),
    src_endpoint: srcEndpoint(event),
    ...classFields(event, cls),
    unmapped: {
      warden: {
        partition: event.partition,
        seq: event.seq,
        hash: event.hash,
        prev_hash: event.prev_hash,
        action: event.action,
        outcome: event.outcome,
        actor_type: event.actor.type,
        actor_chain: event.actor.chain,
        actor_role: event.actor.role,
        resource: event.resource,
        intent: event.intent,
        decision: event.decision,
        request: event.request,
        details: event.details,
      },
    },
  });
}
