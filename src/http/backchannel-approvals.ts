import { APPROVALS_CHANNEL, type Approvals, type GatedCall } from '../approvals/index.ts';
import type { Clock, Logger } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import type { BackchannelRequest, TokenService } from '../tokens/index.ts';

/** The pseudo-tool of a CIBA approval: the person delegates access, no tool runs. */
export const BACKCHANNEL_TOOL = 'oauth.backchannel';

interface Deps {
  tokens: TokenService;
  approvals: Approvals;
  store: Store;
  clock: Clock;
  logger: Logger;
}

/**
 * Connects OpenID CIBA (src/tokens) to the approvals part: a /backchannel request becomes an
 * approval request for the person named by login_hint (approvers: that user alone), notified on
 * the usual channels and shown on the approval page. The decision comes back on the store's change
 * feed to every node; on approval, the node that wins the one-time consumption of the approval
 * (one conditional UPDATE) completes the library request, so it completes exactly once whichever
 * node received /backchannel or the decision. A denial ends the request with `access_denied`.
 * @returns a function that disconnects the change feed subscription.
 */
export function connectBackchannelApprovals(deps: Deps): () => void {
  const { tokens, approvals, store, clock, logger } = deps;
  tokens.backchannel = {
    request: async (r: BackchannelRequest) => {
      await approvals.request({
        agent_id: r.agentId,
        user_id: r.userId,
        intent: r.bindingMessage,
        tool: BACKCHANNEL_TOOL,
        resource: r.resource,
        arguments: callArguments(r.authReqId, r.scopes),
        binding_message: r.bindingMessage,
        // The person whose access is delegated decides, even when they own the agent.
        approvers: { kind: 'user', allow_owner: true },
        ttl_seconds: Math.max(1, Math.ceil((r.expiresAt - clock.now()) / 1000)),
        policies: [],
      });
    },
  };
  const settle = async (id: string, status: string) => {
    if (status !== 'approved' && status !== 'denied') return;
    const view = await approvals.get(id);
    if (view.tool !== BACKCHANNEL_TOOL || !view.user_id) return;
    const authReqId = String(view.arguments.auth_req_id);
    const decider = view.decided_by ?? { id: view.user_id, name: null };
    const actor = { type: 'user' as const, id: decider.id, ...(decider.name ? { name: decider.name } : {}) };
    if (status === 'denied') {
      await tokens.decideBackchannel(authReqId, { approved: false }, actor);
      return;
    }
    const call: GatedCall = {
      agentId: view.agent.id,
      userId: view.user_id,
      tool: BACKCHANNEL_TOOL,
      resource: view.resource ?? undefined,
      arguments: view.arguments,
    };
    try {
      await approvals.consume(id, call);
    } catch {
      return; // another node consumed it (and completes the request)
    }
    await tokens.decideBackchannel(authReqId, { approved: true, purpose: view.binding_message }, actor);
  };
  return store.changes.subscribe(APPROVALS_CHANNEL, (change) => {
    const { id, status } = change.payload as { id?: unknown; status?: unknown };
    if (typeof id !== 'string' || typeof status !== 'string') return;
    settle(id, status).catch((e: unknown) =>
      logger.error({ err: { message: (e as Error).message } }, 'CIBA decision could not be completed'),
    );
  });
}

function callArguments(authReqId: string, scopes: string[]): Record<string, unknown> {
  return { auth_req_id: authReqId, scopes };
}
