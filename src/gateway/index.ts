export {
  ACCESS_TOKEN_ALGS,
  type AccessTokenClaims,
  currentJwks,
  JwtTokenVerifier,
  type JwtTokenVerifierOptions,
  TokenRefusal,
  type TokenVerifier,
} from './access-token.ts';
export { agentPrincipalEntity } from './agent-entity.ts';
export { AgentGate, type CallPrincipal } from './agent-gate.ts';
export {
  type CredentialInjector,
  type CredentialRequest,
  GATEWAY_REQUESTER,
  type InjectedCredential,
  noVault,
} from './credentials.ts';
export {
  type DecisionEntity,
  denyAllDecider,
  type GatewayDecision,
  type GatewayDecisionRequest,
  type PolicyDecider,
} from './decider.ts';
export { accessTokenHash, DPOP_ALGS, DpopVerifier, type ReplayCache, StoreReplayCache } from './dpop.ts';
export {
  type Authenticated,
  approvalRequestIdOf,
  Gateway,
  type GatewayDeps,
  type IncomingCall,
  parseIntent,
  type ToolCallContext,
} from './gateway.ts';
export { GatewayDenial, MCP_ERRORS } from './gateway-denial.ts';
export { mountHttpProxy } from './http-proxy.ts';
export { INTENT_HEADER, INTENT_META_KEY, mountMcpEndpoint } from './mcp-endpoint.ts';
export { gatewayMigrations } from './migrations.ts';
export { type GatewayOptions, type GatewaySettings, gatewayOptionsSchema } from './options.ts';
export { mountProtectedResourceMetadata, protectedResourceMetadata } from './protected-resource.ts';
export { RateLimiter } from './rate-limiter.ts';
export { type IssuedTokenLookup, RevocationGate, type TokenStatus } from './revocations.ts';
export { matchRoute } from './route-match.ts';
export {
  type RouteRule,
  type Upstream,
  type UpstreamInput,
  upstreamCreateSchema,
  upstreamNameSchema,
  upstreamSchema,
} from './schemas.ts';
export { STEPS, StepStats, type StepTimings } from './step-timings.ts';
export { type ToolDefinition, toolDefinitionHash } from './tool-pin.ts';
export { UPSTREAM_CHANNEL, UpstreamRegistry } from './upstream-registry.ts';
