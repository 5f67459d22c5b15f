import { AsyncLocalStorage } from 'node:async_hooks';
import type { ReplayClaims } from './replay-cache.ts';

/** What Warden learns about one request to the authorization server while oidc-provider runs it. */
export interface RequestState {
  /** Why the client was refused before the library could say (e.g. `agent_suspended`). */
  refusal?: string;
  agentName?: string;
  /** Single-use ids reserved by this request, written with its outcome (token endpoint only). */
  claims?: ReplayClaims;
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
