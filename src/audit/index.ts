export {
  Auditor,
  type AuditorOptions,
  type CheckpointRecord,
  chainHash,
  checkpointOrigin,
  eventBody,
  GENESIS_HASH,
  type RetentionResult,
} from './auditor.ts';
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
export { EXPORT_FORMAT, exportLedger } from './export-file.ts';
export { type InclusionProof, inclusionProof, verifyInclusionProof } from './inclusion-proof.ts';
export { LEDGER_KEY_NAME, rewrapAuditKeys, storedLedgerPublicKey } from './ledger-key.ts';
export { eventLeafHash, Frontier, leafHash, nodeHash, verifyInclusion } from './merkle.ts';
export { auditMigrations } from './migrations.ts';
export { type AuditQuery, auditQuerySchema, listCheckpoints, parseTime, queryEvents } from './query.ts';
export { decodeEventRow, listPartitions, readEvents } from './reader.ts';
export { REDACTED, redact, redactString } from './redact.ts';
export {
  type NoteVerifier,
  noteVerifier,
  openNote,
  parseCheckpointText,
  parseNoteVerifier,
} from './signed-note.ts';
export {
  type PartitionReport,
  type VerifyOptions,
  type VerifyProblem,
  type VerifyReport,
  verifyLedger,
  verifyLedgerFile,
} from './verify.ts';
