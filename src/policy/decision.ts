import type { Clock } from '../core/index.ts';
import type { CedarAnswer, PolicyIndex } from './policy-index.ts';
import { type NormalizedRequest, normalizeRequest, toCedarRequest } from './request.ts';

/** A policy that determined a decision, with its annotations (its explanation). */
export interface DeterminingPolicy {
  id: string;
  annotations: Record<string, string>;
}

/** The outcome of one decision, with everything needed to explain it. */
export interface Decision {
  decision: 'permit' | 'deny';
  /** A permit that a person must approve before the action may proceed. */
  approval_required: boolean;
  /** Who may approve (`owner`, `user`, `group:<name>`), from `@approvers`. */
  approvers: string[];
  reason: string;
  determining_policies: DeterminingPolicy[];
  /** Policies that failed to evaluate (they were skipped, as Cedar does). */
  errors: { policy_id: string; message: string }[];
  /** The policy-set version that decided (null when no version is active). */
  policy_version: number | null;
}

/** Turns Cedar's answer into a Warden decision: approval obligations, explanation, reason. */
export function interpret(answer: CedarAnswer, index: PolicyIndex, version: number | null): Decision {
  const determining = answer.reason.map((id) => ({
    id,
    annotations: { ...(index.byId.get(id)?.annotations ?? {}) },
  }));
  const errorNote =
    answer.errors.length > 0
      ? `; ${answer.errors.length} polic${answer.errors.length === 1 ? 'y' : 'ies'} failed to evaluate`
      : '';
  if (answer.decision === 'allow') {
    const needing = determining.filter((p) => p.annotations.approval === 'required');
    const approvers = [
      ...new Set(needing.flatMap((p) => (p.annotations.approvers ? [p.annotations.approvers] : []))),
    ];
    if (needing.length > 0) {
      const reasons = needing.map((p) => p.annotations.reason).filter((r): r is string => !!r);
      return {
        decision: 'permit',
        approval_required: true,
        approvers,
        reason:
          reasons.length > 0
            ? reasons.join('; ')
            : `approval required by policy ${needing.map((p) => p.id).join(', ')}`,
        determining_policies: determining,
        errors: answer.errors,
        policy_version: version,
      };
    }
    return {
      decision: 'permit',
      approval_required: false,
      approvers: [],
      reason: `permitted by policy ${determining.map((p) => p.id).join(', ')}${errorNote}`,
      determining_policies: determining,
      errors: answer.errors,
      policy_version: version,
    };
  }
  if (determining.length > 0) {
    const reasons = determining.map((p) => p.annotations.reason).filter((r): r is string => !!r);
    return {
      decision: 'deny',
      approval_required: false,
      approvers: [],
      reason: `forbidden by policy ${determining.map((p) => p.id).join(', ')}${reasons.length ? `: ${reasons.join('; ')}` : ''}${errorNote}`,
      determining_policies: determining,
      errors: answer.errors,
      policy_version: version,
    };
  }
  return {
    decision: 'deny',
    approval_required: false,
    approvers: [],
    reason: `no policy permits this request (default deny)${errorNote}`,
    determining_policies: [],
    errors: answer.errors,
    policy_version: version,
  };
}

/** Decides a request against an index. `naive` evaluates the whole set (for comparison only). */
export function decideWith(
  index: PolicyIndex,
  version: number | null,
  request: NormalizedRequest,
  naive = false,
): Decision {
  const cedarRequest = toCedarRequest(request);
  const answer = naive ? index.evaluateNaive(cedarRequest) : index.evaluate(cedarRequest);
  return interpret(answer, index, version);
}

/** Validates a raw request and decides it against an index. */
export function decideRaw(
  index: PolicyIndex,
  version: number | null,
  input: unknown,
  clock: Clock,
): Decision {
  return decideWith(index, version, normalizeRequest(input, clock));
}
