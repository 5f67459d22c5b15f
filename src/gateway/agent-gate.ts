import type { Clock } from '../core/index.ts';
import type { Identity, ResolvedAgent } from '../identity/index.ts';
import type { Change, Store } from '../store/index.ts';
import type { AccessTokenClaims } from './access-token.ts';
import { TokenRefusal } from './access-token.ts';

/** Who is calling, as established by the token and the registry. */
export interface CallPrincipal {
  resolved: ResolvedAgent;
  /** The person the agent acts for (delegated token: `sub` ≠ agent). */
  onBehalfOf?: string | undefined;
  /** The delegation chain from nested `act` claims, outermost (current) actor first. */
  chain: string[];
  scopes: string[];
  claims: AccessTokenClaims;
}

const CACHE_MS = 30_000;

/**
 * Step 2 of the path: is the agent active and its provider trusted, and on whose behalf does it
 * act. Answers come from a small per-node cache that the change feed clears the moment any node
 * suspends, retires or resumes an agent or distrusts a provider (`identity.agent`,
 * `identity.provider`), so the kill switch reaches this node within a second without waiting for
 * tokens to expire. A cache miss reads the store.
 */
export class AgentGate {
  readonly #identity: Identity;
  readonly #clock: Clock;
  readonly #cache = new Map<string, { resolved: ResolvedAgent; at: number }>();
  /** Agents the feed reported as not active; refused without a lookup until the store says otherwise. */
  readonly #denied = new Set<string>();
  readonly #unsubscribe: (() => void)[];

  constructor(identity: Identity, store: Store, clock: Clock) {
    this.#identity = identity;
    this.#clock = clock;
    this.#unsubscribe = [
      store.changes.subscribe('identity.agent', (c) => this.#onAgent(c)),
      store.changes.subscribe('identity.provider', (c) => this.#onProvider(c)),
    ];
  }

  #onAgent(change: Change): void {
    const id = String(change.payload.id ?? '');
    this.#cache.delete(id);
    if (change.payload.status !== undefined && change.payload.status !== 'active') this.#denied.add(id);
    else this.#denied.delete(id);
  }

  #onProvider(change: Change): void {
    const providerId = String(change.payload.id ?? '');
    for (const [id, entry] of this.#cache) {
      if (entry.resolved.provider.id === providerId) this.#cache.delete(id);
    }
    const suspended = change.payload.suspended;
    if (Array.isArray(suspended)) for (const id of suspended) this.#denied.add(String(id));
  }

  async #resolve(agentId: string): Promise<ResolvedAgent> {
    const hit = this.#cache.get(agentId);
    if (hit && this.#clock.now() - hit.at < CACHE_MS && !this.#denied.has(agentId)) return hit.resolved;
    let resolved: ResolvedAgent;
    try {
      resolved = await this.#identity.agents.resolve(agentId);
    } catch {
      throw new TokenRefusal('ERR_AGENT_UNKNOWN', 'the token names an agent that is not registered');
    }
    if (resolved.usable) this.#denied.delete(agentId);
    this.#cache.set(agentId, { resolved, at: this.#clock.now() });
    return resolved;
  }

  /** Establishes the principal of a verified token. @throws TokenRefusal */
  async identify(claims: AccessTokenClaims): Promise<CallPrincipal> {
    const agentId = claims.client_id;
    const chain: string[] = [];
    let act: unknown = claims.act;
    while (act && typeof act === 'object' && chain.length < 10) {
      const sub = (act as { sub?: unknown }).sub;
      if (typeof sub !== 'string') throw new TokenRefusal('ERR_TOKEN_CLAIMS', 'the act claim is malformed');
      chain.push(sub);
      act = (act as { act?: unknown }).act;
    }
    // Only the outermost actor counts (RFC 8693 §4.1): it must be the client the token was issued to.
    if (chain.length > 0 && chain[0] !== agentId) {
      throw new TokenRefusal('ERR_TOKEN_CLAIMS', 'the acting party (act.sub) is not the token client');
    }
    const resolved = await this.#resolve(agentId);
    if (resolved.agent.status !== 'active') {
      throw new TokenRefusal('ERR_AGENT_INACTIVE', `the agent is ${resolved.agent.status}`);
    }
    if (resolved.provider.status !== 'trusted') {
      throw new TokenRefusal('ERR_PROVIDER_DISTRUSTED', 'the agent provider is distrusted');
    }
    const onBehalfOf = claims.sub !== agentId ? claims.sub : undefined;
    if (onBehalfOf !== undefined && chain.length === 0) {
      throw new TokenRefusal('ERR_TOKEN_CLAIMS', 'a token for another subject must name the agent in act');
    }
    return {
      resolved,
      onBehalfOf,
      chain: chain.length > 0 ? chain : [agentId],
      scopes: (claims.scope ?? '').split(' ').filter(Boolean),
      claims,
    };
  }

  close(): void {
    for (const u of this.#unsubscribe) u();
  }
}
