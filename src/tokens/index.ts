export { type BackchannelHook, type BackchannelRequest, CIBA_GRANT } from './backchannel.ts';
export { CONSOLE_CLIENT_ID } from './console-client.ts';
export {
  type DelegationGrant,
  type DelegationGrantInput,
  type DelegationGrantQuery,
  type DelegationGrantSource,
  DelegationGrants,
  isGrantActive,
} from './delegation-grants.ts';
export {
  type DelegationUsers,
  type GrantRequest,
  type GrantRevocation,
  MAX_GRANT_LIFETIME_MS,
} from './grant-admin.ts';
export {
  type ConsentedDelegation,
  INTERACTION_CSRF_COOKIE,
  type InteractionResponse,
  Interactions,
} from './interactions.ts';
export { type IssuedToken, type IssuedTokenRecord, IssuedTokens } from './issued-tokens.ts';
export { tokensMigrations } from './migrations.ts';
export { ProviderRecords } from './provider-records.ts';
export { RateLimiter } from './rate-limiter.ts';
export { type ClaimKind, ReplayCache, ReplayClaims, ReplayDetectedError } from './replay-cache.ts';
export {
  MAX_TOKEN_LIFETIME_MS,
  rewrapTokenKeys,
  type SigningAlg,
  type SigningKey,
  SigningKeyStore,
} from './signing-keys.ts';
export { type IntrospectionResponse, TokenService, type TokenServiceOptions } from './token-service.ts';
export {
  type UpstreamExchange,
  type UpstreamExchangeOutcome,
  UpstreamExchangeRefused,
  type UpstreamExchangeRequest,
  type UpstreamExchangeResult,
  VAULT_CONNECTION_RESOURCE_PREFIX,
  vaultConnectionOf,
} from './upstream-exchange.ts';
