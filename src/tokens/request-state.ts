import { AsyncLocalStorage } from 'node:async_hooks';
import type { KeyObject } from 'node:crypto';
import type { AttestedClaims, ResolvedAgent } from '../identity/index.ts';
import type { ReplayClaims } from './replay-cache.ts';
import type { UpstreamExchangeOutcome } from './upstream-exchange.ts';

/** How a request presents a client attestation: with its own PoP header, or with DPoP as the PoP. */
export type PresentedAttestation = 'attestation_pop_jwt' | 'dpop_combined';

/** A client attestation that passed the library's and Warden's checks (never key material). */
export interface VerifiedAttestation {
  method: PresentedAttestation;
  providerId: string;
  /** The provider key that signed it. */
  kid: string;
  /** RFC 7638 thumbprint of the attested instance key (`cnf.jwk`). */
  instanceId: string;
  claims: AttestedClaims;
  digest: string;
  /** The attestation's `exp`, epoch milliseconds. */
  expiresAt: number;
}

/** An RFC 8693 §4.1 `act` claim: the current actor, and the one before it nested inside. */
export interface ActClaim {
  sub: string;
  act?: ActClaim;
}

/** What the token endpoint learned about one token exchange, for the record and the audit event. */
export interface ExchangeOutcome {
  userId: string;
  grantId: string;
  /** Every grant the issued token depends on, its own included. */
  grantChain: string[];
  /** The actors, current (the client) first. */
  actors: string[];
  act: ActClaim;
  subjectIssuer: string;
  subjectTokenType: string;
}

/** What Warden learns about one request to the authorization server while oidc-provider runs it. */
export interface RequestState {
  /** Why the client was refused before the library could say (e.g. `agent_suspended`). */
  refusal?: string;
  agentName?: string;
  /** Set by a successful token exchange: the user, grant and actor chain of the issued token. */
  exchange?: ExchangeOutcome;
  /** Set when the request carries an `OAuth-Client-Attestation` header. */
  attestation?: PresentedAttestation;
  /** The agent behind the client, as resolved for this request (reused by attestation checks). */
  resolved?: ResolvedAgent;
  /** The provider key the attestation named (to tell a bad attestation from a bad PoP). */
  attestationKey?: KeyObject;
  attested?: VerifiedAttestation;
  /** Single-use ids reserved by this request, written with its outcome (token endpoint only). */
  claims?: ReplayClaims;
  /** Set by a successful exchange-mode request: the upstream token handed out (never the token). */
  upstream?: UpstreamExchangeOutcome;
  /** Set once a token exchange names a vault connection, for the refusal's audit event. */
  upstreamAttempt?: { connection: string; userId: string; grantId?: string };
}

const storage = new AsyncLocalStorage<RequestState>();

/** Runs `fn` with a fresh per-request state visible to {@link requestState}. */
export function withRequestState<T>(state: RequestState, fn: () => Promise<T>): Promise<T> {
  return storage.run(state, fn);
}

/** The current request's state, inside {@link withRequestState}. */
export function requestState(): RequestState | undefined {
  return storage.getStore();
}
