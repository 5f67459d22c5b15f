/**
 * Exchange mode of the vault, seen from the token endpoint: an agent trades a delegated Warden
 * token for an upstream access token of the delegating user's own connected account. The token
 * service checks the token exchange itself (client, subject token, delegation grants, DPoP); the
 * decision and the upstream token come from the assembly through {@link UpstreamExchange}.
 */

/** RFC 8707 resource indicator naming a vault connection: `urn:warden:vault:connection:<name>`. */
export const VAULT_CONNECTION_RESOURCE_PREFIX = 'urn:warden:vault:connection:';

/** The connection name a resource indicator names, or undefined when it names no connection. */
export function vaultConnectionOf(resource: string): string | undefined {
  if (!resource.startsWith(VAULT_CONNECTION_RESOURCE_PREFIX)) return undefined;
  return resource.slice(VAULT_CONNECTION_RESOURCE_PREFIX.length);
}

/** A checked exchange-mode request: everything the decision and the vault need (never a token). */
export interface UpstreamExchangeRequest {
  /** The client agent (the current actor of the subject token). */
  agentId: string;
  /** The delegating user: only this user's own connected account may be used. */
  userId: string;
  /** The delegation grant to this agent that covers the request. */
  grantId: string;
  /** Every grant the subject token depends on. */
  grantChain: string[];
  /** The actors of the subject token, current first. */
  actors: string[];
  /** Scopes of the subject token. */
  scopes: string[];
  /** The vault connection, by name. */
  connection: string;
  /** Ties audit events to the token request. */
  requestId?: string | undefined;
  sourceIp?: string | undefined;
}

/** The upstream access token and when it stops being valid (epoch ms). */
export interface UpstreamExchangeResult {
  accessToken: string;
  expiresAt: number;
  /** Ids for the audit event (never secret). */
  connectionId: string;
  accountId: string;
  /** The policies that permitted the exchange. */
  determiningPolicies: string[];
}

/**
 * A refusal of the assembly's hook: `reason` is the stable code kept in the audit event,
 * `description` the text of the OAuth error (`invalid_grant`, `invalid_target` or
 * `temporarily_unavailable`).
 */
export class UpstreamExchangeRefused extends Error {
  readonly error: 'invalid_grant' | 'invalid_target' | 'temporarily_unavailable';
  readonly reason: string;
  constructor(error: UpstreamExchangeRefused['error'], reason: string, description: string) {
    super(description);
    this.name = 'UpstreamExchangeRefused';
    this.error = error;
    this.reason = reason;
  }
}

/**
 * Decides an exchange-mode request (policy) and returns the user's upstream access token (vault).
 * Throws {@link UpstreamExchangeRefused} to refuse.
 */
export type UpstreamExchange = (request: UpstreamExchangeRequest) => Promise<UpstreamExchangeResult>;

/** What the token endpoint learned about one exchange-mode request, for its audit event. */
export interface UpstreamExchangeOutcome extends UpstreamExchangeRequest {
  connectionId: string;
  accountId: string;
  expiresIn: number;
  determiningPolicies: string[];
}
