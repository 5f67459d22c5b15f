import { type Logger, WardenError } from '../core/index.ts';
import { agentPrincipalEntity } from '../gateway/index.ts';
import type { Identity } from '../identity/index.ts';
import type { Decision } from '../policy/index.ts';
import {
  type UpstreamExchange,
  UpstreamExchangeRefused,
  type UpstreamExchangeRequest,
} from '../tokens/index.ts';
import type { Vault } from '../vault/index.ts';

/** The Cedar action a policy (or a template's `exchangeConnections`) permits for exchange mode. */
export const VAULT_EXCHANGE_ACTION = 'exchange_credential';

export interface VaultExchangeHookOptions {
  identity: Identity;
  /** The node's policy engine (the one the gateway decides with). */
  decide(request: unknown): Decision;
  /** The vault (assembled after the token service). */
  vault(): Vault;
  logger: Logger;
}

/**
 * The vault's exchange mode as the token service's {@link UpstreamExchange} hook: Cedar decides
 * `exchange_credential` on `Credential::"<connection>"` for the agent (deny by default; a permit
 * that needs a person's approval is refused, since a token request cannot wait), then the vault
 * returns the delegating user's own upstream access token.
 */
export function vaultExchangeHook(options: VaultExchangeHookOptions): UpstreamExchange {
  return async (request: UpstreamExchangeRequest) => {
    const resolved = await options.identity.agents.resolve(request.agentId);
    const { agent } = resolved;
    let decision: Decision;
    try {
      decision = options.decide({
        principal: agentPrincipalEntity(agent),
        action: VAULT_EXCHANGE_ACTION,
        resource: { type: 'Credential', id: request.connection, attrs: { kind: 'oauth_connection' } },
        context: {
          delegation: { user: request.userId, agents: request.actors, grant: request.grantId },
          scopes: request.scopes,
        },
      });
    } catch (e) {
      options.logger.error({ err: { message: (e as Error).message } }, 'exchange policy decision failed');
      throw new UpstreamExchangeRefused('invalid_grant', 'policy_error', 'the policy decision failed');
    }
    if (decision.decision !== 'permit') {
      throw new UpstreamExchangeRefused(
        'invalid_grant',
        'policy_denied',
        'policy does not permit this exchange',
      );
    }
    if (decision.approval_required) {
      throw new UpstreamExchangeRefused(
        'invalid_grant',
        'policy_approval_required',
        'policy requires an approval, which exchange mode cannot wait for',
      );
    }
    try {
      const minted = await options.vault().exchangeAccessToken({
        agentId: agent.id,
        templateId: agent.template_id,
        userId: request.userId,
        connectionOrCredentialId: request.connection,
      });
      return { ...minted, determiningPolicies: decision.determining_policies.map((p) => p.id) };
    } catch (e) {
      if (!(e instanceof WardenError)) throw e;
      const code = e.code.replace(/^ERR_/, '').toLowerCase();
      if (e.status >= 500) throw new UpstreamExchangeRefused('temporarily_unavailable', code, e.message);
      if (e.code === 'ERR_VAULT_CREDENTIAL_NOT_FOUND') {
        throw new UpstreamExchangeRefused('invalid_target', code, e.message);
      }
      throw new UpstreamExchangeRefused('invalid_grant', code, e.message);
    }
  };
}
