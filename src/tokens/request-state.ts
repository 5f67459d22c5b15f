import { AsyncLocalStorage } from 'node:async_hooks';

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
