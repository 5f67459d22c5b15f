export {
  AgentInstances,
  type AttestedInstance,
  attestedInstanceSchema,
  type InstanceAttestation,
} from './agent-instances.ts';
export { AgentRegistry, type ResolvedAgent } from './agents.ts';
export {
  type AttestedClaims,
  attestationDigest,
  attestationRefusal,
  attestedClaimsOf,
  attestedClaimsSchema,
} from './attestation.ts';
export { actorOf, type Caller, type IdentityDeps } from './context.ts';
export { Identity } from './identity.ts';
export {
  ASYMMETRIC_ALGS,
  assertPublicJwks,
  defaultAlg,
  jwkSchema,
  jwksSchema,
  type PublicJwks,
} from './jwks.ts';
export { identityMigrations } from './migrations.ts';
export { ProviderRegistry } from './providers.ts';
export { ROLES, type Role, roleSchema } from './roles.ts';
export * from './schemas.ts';
export { TemplateRegistry } from './templates.ts';
export { API_TOKEN_PREFIX, type AuthenticatedToken, hashApiToken, UserDirectory } from './users.ts';
