import type { Adapter, AdapterPayload } from 'oidc-provider';
import { isUuid, NotFoundError } from '../core/index.ts';
import type { AgentRegistry } from '../identity/index.ts';
import { clientAuthMethod } from './client-attestation.ts';
import { requestState } from './request-state.ts';

/** Extra client metadata Warden attaches to an agent client; read back when issuing its tokens. */
export const CLIENT_EXTRA_PROPERTIES = [
  'warden_template_id',
  'warden_template_version',
  'warden_token_lifetime',
  'warden_agent_name',
  'warden_allowed_scopes',
] as const;

/**
 * The OAuth client behind an agent id, built on every lookup from the live registry (oidc-provider
 * caches the parsed client by a hash of this metadata, so a changed key set takes effect at once).
 * An agent that may not act (suspended, retired, provider distrusted) or an unknown id is no client:
 * the library answers `invalid_client`, and the reason is kept for the audit event. The client's
 * authentication method follows the request and the template (see `clientAuthMethod`).
 */
export async function agentClientMetadata(
  agents: AgentRegistry,
  clientId: string,
): Promise<AdapterPayload | undefined> {
  const state = requestState();
  if (!isUuid(clientId)) {
    if (state) state.refusal = 'unknown_client';
    return undefined;
  }
  let resolved: Awaited<ReturnType<AgentRegistry['resolve']>>;
  try {
    resolved = await agents.resolve(clientId);
  } catch (e) {
    if (e instanceof NotFoundError) {
      if (state) state.refusal = 'unknown_client';
      return undefined;
    }
    throw e;
  }
  const { agent, provider, template } = resolved;
  if (state) {
    state.agentName = agent.name;
    state.resolved = resolved;
  }
  if (!resolved.usable) {
    if (state) {
      // The provider first: distrusting it is what suspended its agents.
      state.refusal =
        provider.status !== 'trusted'
          ? 'provider_distrusted'
          : agent.status !== 'active'
            ? `agent_${agent.status}`
            : 'agent_unusable';
    }
    return undefined;
  }
  const required = template.spec.attestation.required;
  if (required && state && !state.attestation) state.refusal = 'attestation_required';
  return {
    client_id: agent.id,
    client_name: agent.name,
    token_endpoint_auth_method: clientAuthMethod(required, state?.attestation),
    jwks: agent.jwks as AdapterPayload['jwks'],
    grant_types: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
    response_types: [],
    redirect_uris: [],
    dpop_bound_access_tokens: template.spec.require_dpop,
    warden_template_id: template.template_id,
    warden_template_version: template.version,
    warden_token_lifetime: template.spec.token_lifetime,
    warden_agent_name: agent.name,
    warden_allowed_scopes: template.spec.allowed_scopes,
  } as AdapterPayload;
}

/**
 * oidc-provider's storage adapter. `Client` is answered from the agent registry. Nothing else is
 * persisted by the flows Warden enables: client credentials tokens are JWTs the library never
 * stores, and single-use ids go to {@link ReplayCache} (ReplayDetection.unique is replaced). Any
 * other write would mean an unreviewed flow was reached, so it fails loudly instead of silently
 * keeping state in one process's memory.
 */
export function adapterFor(agents: AgentRegistry): new (name: string) => Adapter {
  return class WardenAdapter implements Adapter {
    readonly #name: string;
    constructor(name: string) {
      this.#name = name;
    }
    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.#name === 'Client') return agentClientMetadata(agents, id);
      return undefined;
    }
    async findByUserCode(): Promise<undefined> {
      return undefined;
    }
    async findByUid(): Promise<undefined> {
      return undefined;
    }
    async upsert(): Promise<void> {
      throw new Error(`oidc-provider tried to persist a ${this.#name}, which Warden does not enable`);
    }
    async consume(): Promise<void> {
      throw new Error(`oidc-provider tried to consume a ${this.#name}, which Warden does not enable`);
    }
    async destroy(): Promise<void> {}
    async revokeByGrantId(): Promise<void> {}
  };
}
