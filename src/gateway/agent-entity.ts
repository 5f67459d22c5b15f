import type { Agent } from '../identity/index.ts';
import type { DecisionEntity } from './decider.ts';

/**
 * The agent as the policy engine's principal: `Agent::"<id>"` in its template and provider, with
 * the attributes policies read. Every decision about an agent (a gateway call, an exchange-mode
 * token request) builds it here, so they judge the same principal.
 */
export function agentPrincipalEntity(agent: Agent): DecisionEntity {
  return {
    type: 'Agent',
    id: agent.id,
    parents: [
      { type: 'Template', id: agent.template_id },
      { type: 'Provider', id: agent.provider_id },
    ],
    attrs: {
      status: agent.status,
      risk_level: agent.risk_tier,
      owner: agent.owner_id,
      purpose: agent.purpose.slice(0, 2000),
    },
  };
}
