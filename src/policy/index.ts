export {
  type AuthzenDecision,
  type AuthzenEvaluationRequest,
  type AuthzenSubject,
  authzenActionSearch,
  authzenEvaluation,
  authzenEvaluations,
  authzenMetadata,
  authzenResourceSearch,
  authzenSubjectSearch,
  type DecisionListener,
  type EvaluationsOptions,
  entityTypeOf,
  type SearchOptions,
  toAuthzenDecision,
  toDecisionRequest,
} from './authzen.ts';
export { type Decision, type DeterminingPolicy, decideRaw, decideWith, interpret } from './decision.ts';
export { decisionEvent } from './decision-event.ts';
export { type EntityDirectory, StaticEntityDirectory } from './entity-directory.ts';
export { policyMigrations } from './migrations.ts';
export { loadVersionIndex, PolicyEngine, type PolicyEngineOptions } from './policy-engine.ts';
export { type CedarAnswer, PolicyIndex, type PolicyIndexOptions } from './policy-index.ts';
export { type ParsedPolicy, type ParsedPolicySet, parsePolicySet, validatePolicySet } from './policy-set.ts';
export {
  POLICY_CHANNEL,
  type PolicyActivation,
  PolicyAdmin,
  type PolicyAdminOptions,
  type PolicyVersion,
} from './policy-store.ts';
export {
  type DecisionRequest,
  decisionRequestSchema,
  type EntityRef,
  type NormalizedRequest,
  normalizeRequest,
  type RequestEntity,
  toCedarRequest,
} from './request.ts';
export { ACTIONS, ENTITY_TYPES, WARDEN_SCHEMA } from './schema.ts';
export {
  type ChangedOutcome,
  type Grant,
  type LeastAgencyReport,
  leastAgency,
  type SimulationReport,
  simulate,
  type Window,
} from './simulation.ts';
export {
  compileTemplatePolicies,
  type TemplateApprovalRule,
  type TemplateGrant,
  templatePolicyPrefix,
} from './template-compiler.ts';
