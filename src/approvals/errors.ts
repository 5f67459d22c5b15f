import { ForbiddenError, type WardenErrorOptions } from '../core/index.ts';

/** Why a grant could not be used or a request could not be decided. */
export type ApprovalRefusal =
  | 'pending'
  | 'denied'
  | 'expired'
  | 'consumed'
  | 'call_mismatch'
  | 'not_eligible'
  | 'self_approval'
  | 'agent_approver'
  | 'already_decided';

const CODES: Record<ApprovalRefusal, string> = {
  pending: 'ERR_APPROVAL_PENDING',
  denied: 'ERR_APPROVAL_DENIED',
  expired: 'ERR_APPROVAL_EXPIRED',
  consumed: 'ERR_APPROVAL_CONSUMED',
  call_mismatch: 'ERR_APPROVAL_CALL_MISMATCH',
  not_eligible: 'ERR_APPROVER_NOT_ELIGIBLE',
  self_approval: 'ERR_APPROVAL_SELF',
  agent_approver: 'ERR_APPROVAL_BY_AGENT',
  already_decided: 'ERR_APPROVAL_DECIDED',
};

/**
 * A refused approval operation (403): a grant that is pending, denied, expired, already used or
 * bound to another call, or a decision by someone who may not make it. `reason` is stable.
 */
export class ApprovalRefusedError extends ForbiddenError {
  readonly reason: ApprovalRefusal;
  readonly requestId: string;

  constructor(reason: ApprovalRefusal, requestId: string, detail: string, options: WardenErrorOptions = {}) {
    super(detail, {
      ...options,
      code: CODES[reason],
      extensions: { ...options.extensions, approval_request_id: requestId, reason },
    });
    this.reason = reason;
    this.requestId = requestId;
  }
}
