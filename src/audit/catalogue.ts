/**
 * The closed catalogue of audit event types. Every event Warden records has one of these types;
 * adding a type is a deliberate change to this list (and to the docs generated from it).
 */
export const AUDIT_EVENT_TYPES = {
  'system.started': 'A Warden node started.',
  'system.stopped': 'A Warden node stopped cleanly.',
  'keys.master_rotated': 'Every data key was re-wrapped under a new master key.',
  'user.created': 'A user account was created.',
  'user.updated': 'A user account was changed (roles, name, status).',
  'user.password_changed': 'A user password was set or changed.',
  'auth.login_succeeded': 'A person signed in.',
  'auth.login_failed': 'A sign-in was refused.',
  'auth.request_refused': 'An API request was refused for missing, expired or insufficient credentials.',
  'api_token.created': 'An admin API token was issued.',
  'api_token.revoked': 'An admin API token was revoked.',
  'provider.created': 'An agent provider was registered.',
  'provider.updated': 'An agent provider was changed (keys, contact).',
  'provider.distrusted': 'A provider was distrusted; its agents were suspended.',
  'provider.trusted': 'A provider was trusted again.',
  'template.created': 'An agent template was created.',
  'template.versioned': 'A new version of an agent template was created.',
  'agent.created': 'An agent was registered.',
  'agent.updated': 'An agent was changed (keys, owner, purpose, template version).',
  'agent.suspended': 'An agent was suspended.',
  'agent.resumed': 'A suspended agent was resumed.',
  'agent.retired': 'An agent was retired (final).',
  'token.issued': 'An access token was issued.',
  'authorization.code_issued':
    'An authorization code was issued to a client after a person signed in (and consented, for an agent).',
  'authorization.backchannel_requested':
    'An agent asked a person out of band for delegated access (OpenID CIBA); the person decides on an approval request.',
  'authorization.consent_denied': 'A person denied (or could not complete) a delegation consent.',
  'token.refused': 'A token request was refused.',
  'token.revoked': 'A token or grant was revoked.',
  'token.introspected': 'A token was introspected.',
  'token.signing_key_rotated': 'A new access token signing key became active.',
  'delegation.granted': 'A user delegated bounded rights to an agent.',
  'delegation.revoked': 'A delegation grant was revoked.',
  'delegation.grant_created': 'A delegation grant (user to agent, bounded scopes) was created.',
  'delegation.grant_revoked': 'A delegation grant was revoked with every token issued under it.',
  'policy.decision': 'An authorization decision was made.',
  'policy.changed': 'A policy set version was created, activated or rolled back.',
  'tool.call': 'An agent called a tool through the gateway.',
  'http.call': 'An agent called an HTTP API through the proxy.',
  'upstream.created': 'An upstream MCP server or HTTP API was registered with the gateway.',
  'upstream.approved': 'An admin approved an upstream and pinned its tool definitions.',
  'upstream.removed': 'An upstream was removed from the gateway.',
  'upstream.tool_withheld':
    'An upstream tool definition differs from the approved one and was withheld from agents.',
  'approval.requested': 'A person was asked to approve an action.',
  'approval.decided': 'A person approved or denied an action.',
  'approval.expired': 'An approval request expired undecided.',
  'approval.settings_changed':
    'An approval notification channel or approver group was created, changed or removed.',
  'approval.consumed': 'A one-time approval grant was used, or its use refused, for the call it gates.',
  'vault.secret_written': 'A credential was stored or a new version written.',
  'vault.secret_deleted': 'A credential was deleted.',
  'vault.credential_used': 'A credential was used on an agent’s behalf.',
  'vault.credential_refused': 'Use of a credential was refused.',
  'vault.credential_exchanged':
    'An agent exchanged a delegated token for the delegating user’s upstream access token (exchange mode).',
  'vault.token_refreshed': 'An upstream access token was refreshed.',
  'risk.signal': 'A risk detector raised a signal.',
  'risk.response': 'An automatic risk response was taken (step-up, suspension).',
  'audit.checkpoint': 'A signed checkpoint of the ledger was written.',
  'audit.retention': 'Events were deleted by the retention job.',
  'export.sink_changed': 'An export sink was created, changed or removed.',
} as const;

export type AuditEventType = keyof typeof AUDIT_EVENT_TYPES;

/** True when `type` is in the catalogue. */
export function isAuditEventType(type: string): type is AuditEventType {
  return Object.hasOwn(AUDIT_EVENT_TYPES, type);
}
