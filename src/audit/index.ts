export { Auditor, type AuditorOptions, chainHash, eventBody, GENESIS_HASH } from './auditor.ts';
export { canonicalJson } from './canonical.ts';
export { AUDIT_EVENT_TYPES, type AuditEventType, isAuditEventType } from './catalogue.ts';
export type {
  AuditActor,
  AuditDecision,
  AuditEvent,
  AuditEventInput,
  AuditIntent,
  AuditRequestMeta,
} from './event.ts';
export { auditMigrations } from './migrations.ts';
export { decodeEventRow, listPartitions, readEvents } from './reader.ts';
export { REDACTED, redact, redactString } from './redact.ts';
