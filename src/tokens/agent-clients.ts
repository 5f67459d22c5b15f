import type { Adapter, AdapterPayload } from 'oidc-provider';
import { isUuid, NotFoundError } from '../core/index.ts';
import type { AgentRegistry } from '../identity/index.ts';
import { CIBA_RECORD_GRACE_SECONDS } from './backchannel.ts';
import { clientAuthMethod } from './client-attestation.ts';
import { PERSISTED_MODELS, type ProviderRecords } from './provider-records.ts';
import { requestState } from './request-state.ts';

/** Extra client metadata Warden attaches to an agent client; read back when issuing its tokens. */
export const CLIENT_EXTRA_PROPERTIES = [
  'warden_template_id',
  'warden_template_version',
  'warden_token_lifetime',
  'warden_agent_name',
  'warden_allowed_scopes',
  'warden_delegation_max_seconds',
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
  // Only templates that allow delegation make an agent an authorization_code client; for the others
  // the library answers a /auth request with unauthorized_client.
  const delegation = template.spec.delegation?.allowed ? template.spec.delegation : undefined;
  // CIBA: the person is asked out of band; ping when the template names a notification endpoint.
  const ciba = template.spec.delegation?.ciba ? template.spec.delegation : undefined;
  return {
    client_id: agent.id,
    client_name: agent.name,
    token_endpoint_auth_method: clientAuthMethod(required, state?.attestation),
    jwks: agent.jwks as AdapterPayload['jwks'],
    grant_types: [
      'client_credentials',
      'urn:ietf:params:oauth:grant-type:token-exchange',
      ...(delegation ? ['authorization_code'] : []),
      ...(ciba ? ['urn:openid:params:grant-type:ciba'] : []),
    ],
    ...(ciba
      ? ciba.ciba_notification_endpoint
        ? {
            backchannel_token_delivery_mode: 'ping',
            backchannel_client_notification_endpoint: ciba.ciba_notification_endpoint,
          }
        : { backchannel_token_delivery_mode: 'poll' }
      : {}),
    response_types: delegation ? ['code'] : [],
    redirect_uris: delegation ? delegation.redirect_uris : [],
    warden_delegation_max_seconds: delegation ? delegation.max_duration_seconds : 0,
    dpop_bound_access_tokens: template.spec.require_dpop,
    warden_template_id: template.template_id,
    warden_template_version: template.version,
    warden_token_lifetime: template.spec.token_lifetime,
    warden_agent_name: agent.name,
    warden_allowed_scopes: template.spec.allowed_scopes,
  } as AdapterPayload;
}

/** What the storage adapter answers from. */
export interface AdapterDeps {
  agents: AgentRegistry;
  records: ProviderRecords;
  /** The first-party console client's metadata (`warden-console`). */
  consoleClient: AdapterPayload;
  /**
   * Called when an authorization code turns out to be consumed already at the moment of consuming
   * it (a concurrent replay on another node): revokes what the grant issued; returns the error to throw.
   */
  codeReplayed: (grantId: string | undefined) => Promise<Error>;
  /**
   * Whether the Warden delegation grant of this id is active: false makes the library's Grant of
   * the same id vanish (codes under it fail), undefined means no Warden grant (the console's).
   */
  delegationActive: (grantId: string) => Promise<boolean | undefined>;
  /** Revokes the (JWT) access tokens issued under a grant: the library asks on code replay. */
  revokeAccessTokens: (grantId: string) => Promise<void>;
}

/**
 * oidc-provider's storage adapter. `Client` is answered from the agent registry (and the console
 * client); sessions, interactions, authorization codes and grants go to {@link ProviderRecords}.
 * Client credentials tokens are JWTs the library never stores, and single-use ids go to
 * {@link ReplayCache} (ReplayDetection.unique is replaced). Any other write would mean an
 * unreviewed flow was reached, so it fails loudly instead of silently keeping state in one
 * process's memory.
 */
export function adapterFor(deps: AdapterDeps): new (name: string) => Adapter {
  const { agents, records, consoleClient } = deps;
  return class WardenAdapter implements Adapter {
    readonly #name: string;
    constructor(name: string) {
      this.#name = name;
    }
    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.#name === 'Client') {
        return id === consoleClient.client_id ? consoleClient : agentClientMetadata(agents, id);
      }
      if (this.#name === 'Grant' && (await deps.delegationActive(id)) === false) return undefined;
      if (PERSISTED_MODELS.has(this.#name)) return records.find(this.#name, id);
      return undefined;
    }
    async findByUserCode(): Promise<undefined> {
      return undefined;
    }
    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      if (PERSISTED_MODELS.has(this.#name)) return records.findByUid(this.#name, uid);
      return undefined;
    }
    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (!PERSISTED_MODELS.has(this.#name)) {
        throw new Error(`oidc-provider tried to persist a ${this.#name}, which Warden does not enable`);
      }
      const grace = this.#name === 'BackchannelAuthenticationRequest' ? CIBA_RECORD_GRACE_SECONDS : 0;
      await records.upsert(this.#name, id, payload, expiresIn + grace);
    }
    async consume(id: string): Promise<void> {
      if (this.#name !== 'AuthorizationCode' && this.#name !== 'BackchannelAuthenticationRequest') {
        throw new Error(`oidc-provider tried to consume a ${this.#name}, which Warden does not enable`);
      }
      if (!(await records.consume(this.#name, id))) {
        if (this.#name !== 'AuthorizationCode') throw await deps.codeReplayed(undefined);
        const code = await records.find(this.#name, id);
        throw await deps.codeReplayed(typeof code?.grantId === 'string' ? code.grantId : undefined);
      }
    }
    async destroy(id: string): Promise<void> {
      if (PERSISTED_MODELS.has(this.#name)) await records.destroy(this.#name, id);
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      if (this.#name === 'AccessToken') await deps.revokeAccessTokens(grantId);
      if (PERSISTED_MODELS.has(this.#name)) await records.revokeByGrantId(this.#name, grantId);
    }
  };
}
