/** An entity in a decision request (the shape of the policy part's AuthZEN/Cedar requests). */
export interface DecisionEntity {
  type: string;
  id: string;
  parents?: { type: string; id: string }[];
  attrs?: Record<string, string | number | boolean | string[]>;
}

/** What the gateway asks the decision point for every call. */
export interface GatewayDecisionRequest {
  principal: DecisionEntity;
  /** Cedar action: `call_tool`, `list_tools`, `read_resource`, `get_prompt`, `http_request`. */
  action: string;
  resource: DecisionEntity;
  context: {
    intent?: { text?: string; task_id?: string; goal?: string };
    args?: Record<string, unknown>;
    delegation?: { user?: string; agents?: string[] };
    scopes?: string[];
    source_ip?: string;
    http?: { method: string; host: string; path: string };
    attestation?: { verified: boolean; level?: string; claims?: string[] };
  };
}

/** The decision point's answer. */
export interface GatewayDecision {
  decision: 'permit' | 'deny';
  approval_required: boolean;
  reason: string;
  /** Who may approve (`owner`, `user`, `group:<name>`), from the policies' `@approvers`. */
  approvers?: string[] | undefined;
  determining_policies: { id: string }[];
  policy_version?: number | null;
}

/** The decision point the gateway consults (the policy part's engine, once wired). */
export interface PolicyDecider {
  decide(request: GatewayDecisionRequest): GatewayDecision | Promise<GatewayDecision>;
}

/**
 * The decider used when no decision point is configured: every request is denied and the reason
 * says why. The gateway never allows by default.
 */
export const denyAllDecider: PolicyDecider = {
  decide: () => ({
    decision: 'deny',
    approval_required: false,
    reason: 'no policy decision point is configured on this node; every call is denied',
    determining_policies: [],
  }),
};
