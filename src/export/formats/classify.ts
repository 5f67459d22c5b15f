import type { AuditEvent, AuditEventType } from '../../audit/index.ts';

/** The OCSF 1.8.0 event classes Warden maps its catalogue onto. */
export const OCSF_CLASSES = {
  account_change: { uid: 3001, category: 3, name: 'Account Change' },
  authentication: { uid: 3002, category: 3, name: 'Authentication' },
  authorize_session: { uid: 3003, category: 3, name: 'Authorize Session' },
  entity_management: { uid: 3004, category: 3, name: 'Entity Management' },
  user_access: { uid: 3005, category: 3, name: 'User Access Management' },
  detection_finding: { uid: 2004, category: 2, name: 'Detection Finding' },
  api_activity: { uid: 6003, category: 6, name: 'API Activity' },
} as const;

export type OcsfClass = keyof typeof OCSF_CLASSES;

/** OCSF category captions by `category_uid`. */
export const OCSF_CATEGORIES: Record<number, string> = {
  2: 'Findings',
  3: 'Identity & Access Management',
  6: 'Application Activity',
};

/** Activity captions of each class (OCSF 1.8.0 `activity_id` enums). */
export const OCSF_ACTIVITIES: Record<OcsfClass, Record<number, string>> = {
  account_change: {
    1: 'Create',
    2: 'Enable',
    3: 'Password Change',
    4: 'Password Reset',
    5: 'Disable',
    6: 'Delete',
    7: 'Attach Policy',
    8: 'Detach Policy',
    9: 'Lock',
    10: 'MFA Factor Enable',
    11: 'MFA Factor Disable',
    12: 'Unlock',
  },
  authentication: {
    1: 'Logon',
    2: 'Logoff',
    3: 'Authentication Ticket',
    4: 'Service Ticket Request',
    5: 'Service Ticket Renew',
    6: 'Preauth',
    7: 'Account Switch',
  },
  authorize_session: { 1: 'Assign Privileges', 2: 'Assign Groups' },
  entity_management: {
    1: 'Create',
    2: 'Read',
    3: 'Update',
    4: 'Delete',
    5: 'Move',
    6: 'Enroll',
    7: 'Unenroll',
    8: 'Enable',
    9: 'Disable',
    10: 'Activate',
    11: 'Deactivate',
    12: 'Suspend',
    13: 'Resume',
  },
  user_access: { 1: 'Assign Privileges', 2: 'Revoke Privileges' },
  detection_finding: { 1: 'Create', 2: 'Update', 3: 'Close' },
  api_activity: { 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete' },
};

/** How one catalogue type is classified: its OCSF class and activity (99 = Other, named). */
export interface Classification {
  class: OcsfClass;
  activity: number | ((event: AuditEvent) => number);
  /** Caption used when the activity is 99 (Other). */
  otherName?: string;
}

const HTTP_METHOD_ACTIVITY: Record<string, number> = {
  POST: 1,
  GET: 2,
  HEAD: 2,
  OPTIONS: 2,
  PUT: 3,
  PATCH: 3,
  DELETE: 4,
};

function detail(event: AuditEvent, key: string): unknown {
  return event.details?.[key];
}

/**
 * Every catalogue type's OCSF class. Typed as a full record over the catalogue, so adding an event
 * type without deciding how it is exported fails the type check.
 */
export const CLASSIFICATION: Record<AuditEventType, Classification> = {
  'system.started': { class: 'entity_management', activity: 10 },
  'system.stopped': { class: 'entity_management', activity: 11 },
  'keys.master_rotated': { class: 'entity_management', activity: 3 },
  'user.created': { class: 'account_change', activity: 1 },
  'user.updated': {
    class: 'account_change',
    activity: (e) => (detail(e, 'status') === 'disabled' ? 5 : detail(e, 'status') === 'active' ? 2 : 99),
    otherName: 'Update',
  },
  'user.password_changed': { class: 'account_change', activity: 3 },
  'auth.login_succeeded': { class: 'authentication', activity: 1 },
  'auth.login_failed': { class: 'authentication', activity: 1 },
  'auth.request_refused': { class: 'authentication', activity: 99, otherName: 'Request Refused' },
  'api_token.created': { class: 'entity_management', activity: 1 },
  'api_token.revoked': { class: 'entity_management', activity: 11 },
  'provider.created': { class: 'entity_management', activity: 1 },
  'provider.updated': { class: 'entity_management', activity: 3 },
  'provider.distrusted': { class: 'entity_management', activity: 9 },
  'provider.trusted': { class: 'entity_management', activity: 8 },
  'template.created': { class: 'entity_management', activity: 1 },
  'template.versioned': { class: 'entity_management', activity: 3 },
  'agent.created': { class: 'account_change', activity: 1 },
  'agent.updated': { class: 'account_change', activity: 99, otherName: 'Update' },
  'agent.suspended': { class: 'account_change', activity: 5 },
  'agent.resumed': { class: 'account_change', activity: 2 },
  'agent.retired': { class: 'account_change', activity: 6 },
  'token.issued': { class: 'authentication', activity: 1 },
  'authorization.code_issued': { class: 'authentication', activity: 3 },
  'authorization.backchannel_requested': { class: 'user_access', activity: 99, otherName: 'Request' },
  'authorization.consent_denied': { class: 'user_access', activity: 99, otherName: 'Deny' },
  'token.refused': { class: 'authentication', activity: 1 },
  'token.revoked': { class: 'authentication', activity: 2 },
  'token.introspected': { class: 'api_activity', activity: 2 },
  'token.signing_key_rotated': { class: 'entity_management', activity: 3 },
  'upstream.created': { class: 'entity_management', activity: 1 },
  'upstream.approved': { class: 'entity_management', activity: 10 },
  'upstream.removed': { class: 'entity_management', activity: 4 },
  'upstream.tool_withheld': { class: 'detection_finding', activity: 1 },
  'delegation.granted': { class: 'user_access', activity: 1 },
  'delegation.revoked': { class: 'user_access', activity: 2 },
  'delegation.grant_created': { class: 'user_access', activity: 1 },
  'delegation.grant_revoked': { class: 'user_access', activity: 2 },
  'policy.decision': { class: 'authorize_session', activity: 1 },
  'policy.changed': { class: 'entity_management', activity: 3 },
  'tool.call': { class: 'api_activity', activity: 99, otherName: 'Call' },
  'http.call': {
    class: 'api_activity',
    activity: (e) => HTTP_METHOD_ACTIVITY[String(detail(e, 'method') ?? '').toUpperCase()] ?? 99,
    otherName: 'Call',
  },
  'approval.requested': { class: 'entity_management', activity: 1 },
  'approval.decided': { class: 'entity_management', activity: 3 },
  'approval.expired': { class: 'entity_management', activity: 11 },
  'approval.consumed': { class: 'entity_management', activity: 99, otherName: 'Consume' },
  'approval.settings_changed': { class: 'entity_management', activity: 3 },
  'vault.secret_written': {
    class: 'entity_management',
    activity: (e) => (Number(detail(e, 'version') ?? 1) > 1 ? 3 : 1),
  },
  'vault.secret_deleted': { class: 'entity_management', activity: 4 },
  'vault.credential_used': { class: 'entity_management', activity: 2 },
  'vault.credential_refused': { class: 'entity_management', activity: 2 },
  'vault.credential_exchanged': { class: 'entity_management', activity: 2 },
  'vault.token_refreshed': { class: 'entity_management', activity: 3 },
  'risk.signal': { class: 'detection_finding', activity: 1 },
  'risk.response': { class: 'detection_finding', activity: 2 },
  'audit.checkpoint': { class: 'entity_management', activity: 1 },
  'audit.retention': { class: 'entity_management', activity: 4 },
  'export.sink_changed': {
    class: 'entity_management',
    activity: (e) => ({ create: 1, update: 3, delete: 4 })[String(detail(e, 'operation'))] ?? 3,
  },
};

/** The class, activity id and activity caption of an event. */
export function classify(event: AuditEvent): { class: OcsfClass; activityId: number; activityName: string } {
  const c = CLASSIFICATION[event.type];
  const activityId = typeof c.activity === 'function' ? c.activity(event) : c.activity;
  const activityName = OCSF_ACTIVITIES[c.class][activityId] ?? c.otherName ?? 'Other';
  return { class: c.class, activityId, activityName };
}

/** Warden's severity scale, mapped to each format's own. */
export type SeverityLevel = 'info' | 'low' | 'medium' | 'high' | 'critical';

const LEVELS: readonly SeverityLevel[] = ['info', 'low', 'medium', 'high', 'critical'];

/** Severity of an event: risk events carry their own; otherwise failures are low, denials medium. */
export function severityOf(event: AuditEvent): SeverityLevel {
  const declared = detail(event, 'severity');
  if (typeof declared === 'string' && (LEVELS as string[]).includes(declared)) {
    return declared as SeverityLevel;
  }
  if (event.type === 'risk.signal') return 'medium';
  if (event.type === 'risk.response') return 'high';
  if (event.outcome === 'denied') return 'medium';
  if (event.outcome === 'failure') return 'low';
  return 'info';
}

/** OCSF `severity_id` (1 Informational … 5 Critical). */
export const OCSF_SEVERITY: Record<SeverityLevel, { id: number; name: string }> = {
  info: { id: 1, name: 'Informational' },
  low: { id: 2, name: 'Low' },
  medium: { id: 3, name: 'Medium' },
  high: { id: 4, name: 'High' },
  critical: { id: 5, name: 'Critical' },
};

/** CEF / ECS numeric severity (0–10). */
export const NUMERIC_SEVERITY: Record<SeverityLevel, number> = {
  info: 1,
  low: 3,
  medium: 5,
  high: 8,
  critical: 10,
};

/** Syslog severity (RFC 5424 §6.2.1): 6 Informational … 2 Critical. */
export const SYSLOG_SEVERITY: Record<SeverityLevel, number> = {
  info: 6,
  low: 5,
  medium: 4,
  high: 3,
  critical: 2,
};

/** The person an event concerns as actor: the user acting, or the user an agent acts for. */
export function personOf(event: AuditEvent): { id: string; name?: string | undefined } | undefined {
  if (event.actor.type === 'user') return { id: event.actor.id, name: event.actor.name };
  if (event.actor.type === 'agent' && event.actor.on_behalf_of) return event.actor.on_behalf_of;
  return undefined;
}

/** The agent that acted, if an agent did. */
export function agentOf(event: AuditEvent): { id: string; name?: string | undefined } | undefined {
  return event.actor.type === 'agent' ? { id: event.actor.id, name: event.actor.name } : undefined;
}
