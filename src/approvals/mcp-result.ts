import type { ApprovalView } from './schemas.ts';

/** The `_meta` key the gateway and agents use to carry an approval request id. */
export const APPROVAL_META_KEY = 'warden/approval';

/** What `_meta["warden/approval"]` carries in a pending answer. */
export function approvalMeta(view: ApprovalView): Record<string, unknown> {
  return {
    request_id: view.id,
    status: view.status,
    url: view.url,
    expires_at: view.expires_at,
    binding_message: view.binding_message,
    call_hash: view.call_hash,
  };
}

/**
 * The MCP `tools/call` result for "approval pending": a tool error the model can read, and the
 * request id under `_meta["warden/approval"]`. The agent retries the identical call with
 * `_meta: {"warden/approval": {"request_id": …}}` once a person approved; the retry uses the
 * one-time grant, so the call runs once.
 */
export function pendingToolResult(view: ApprovalView): {
  content: { type: 'text'; text: string }[];
  isError: true;
  _meta: Record<string, unknown>;
} {
  return {
    content: [
      {
        type: 'text',
        text: `Approval pending: "${view.binding_message}". A person must approve this exact call before ${view.expires_at}. Retry the identical call with _meta["${APPROVAL_META_KEY}"].request_id = "${view.id}".`,
      },
    ],
    isError: true,
    _meta: { [APPROVAL_META_KEY]: approvalMeta(view) },
  };
}
