import type { AccessTokenClaims } from './access-token.ts';
import type { GatewayDecisionRequest } from './decider.ts';

/**
 * The policy context's `attestation` for a call, from its access token. Warden puts
 * `agent_attestation: {digest, iss}` only in tokens issued on a verified provider attestation, and
 * such a token never outlives it; the attestation counts only when it came from the agent's own
 * provider (whose trust the gateway has just checked). Policies see `verified`, `level` =
 * `provider`, and `claims` = `digest:<digest>` and `provider:<id>`.
 */
export function attestationContext(
  claims: AccessTokenClaims,
  providerId: string,
): Pick<GatewayDecisionRequest['context'], 'attestation'> {
  const a = claims.agent_attestation;
  if (!a || typeof a.digest !== 'string' || a.iss !== providerId) return {};
  return {
    attestation: { verified: true, level: 'provider', claims: [`digest:${a.digest}`, `provider:${a.iss}`] },
  };
}
