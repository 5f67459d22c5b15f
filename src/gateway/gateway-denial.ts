import type { Logger } from '../core/index.ts';
import { WardenError } from '../core/index.ts';
import type { GatewayDecision } from './decider.ts';
import type { Upstream } from './schemas.ts';

/**
 * JSON-RPC error codes the gateway answers MCP calls with (implementation-defined range), each
 * with a stable `ERR_…` code in `error.data.code`.
 */
export const MCP_ERRORS = {
  denied: -32010,
  approvalRequired: -32011,
  rateLimited: -32012,
  upstream: -32013,
  timeout: -32014,
  withheld: -32015,
  unavailable: -32016,
  unknown: -32602,
  internal: -32603,
} as const;

/** A call the gateway refused or could not complete; rendered as an MCP error or a problem document. */
/**
 * An MCP SDK `McpError` (an upstream's JSON-RPC error), recognised by its name so this module
 * does not load the SDK's schemas at start.
 */
function isMcpError(e: unknown): e is Error & { code: number } {
  return e instanceof Error && e.name === 'McpError' && typeof (e as { code?: unknown }).code === 'number';
}

export class GatewayDenial extends Error {
  readonly code: string;
  readonly mcpCode: number;
  readonly status: number;
  readonly outcome: 'denied' | 'failure';
  readonly decision: GatewayDecision | undefined;
  readonly retryAfter: number | undefined;

  constructor(
    message: string,
    fields: {
      code: string;
      mcpCode: number;
      status: number;
      outcome: 'denied' | 'failure';
      decision?: GatewayDecision | undefined;
      retryAfter?: number | undefined;
    },
  ) {
    super(message);
    this.code = fields.code;
    this.mcpCode = fields.mcpCode;
    this.status = fields.status;
    this.outcome = fields.outcome;
    this.decision = fields.decision;
    this.retryAfter = fields.retryAfter;
  }

  static denied(reason: string, decision?: GatewayDecision, code = 'ERR_POLICY_DENIED'): GatewayDenial {
    return new GatewayDenial(`denied: ${reason}`, {
      code,
      mcpCode: MCP_ERRORS.denied,
      status: 403,
      outcome: 'denied',
      decision,
    });
  }

  static approvalRequired(decision: GatewayDecision): GatewayDenial {
    return new GatewayDenial(
      `approval required: ${decision.reason}. Warden cannot take approvals on this node yet, so the call was not made`,
      {
        code: 'ERR_APPROVAL_REQUIRED',
        mcpCode: MCP_ERRORS.approvalRequired,
        status: 403,
        outcome: 'denied',
        decision,
      },
    );
  }

  /** A call whose approval was refused (denied, expired, already used, altered, or not obtainable). */
  static approvalRefused(message: string, code: string, decision: GatewayDecision): GatewayDenial {
    return new GatewayDenial(`approval refused: ${message}`, {
      code,
      mcpCode: MCP_ERRORS.approvalRequired,
      status: 403,
      outcome: 'denied',
      decision,
    });
  }

  static rateLimited(message: string, retryAfter: number): GatewayDenial {
    return new GatewayDenial(message, {
      code: 'ERR_RATE_LIMITED',
      mcpCode: MCP_ERRORS.rateLimited,
      status: 429,
      outcome: 'denied',
      retryAfter: Math.max(1, Math.ceil(retryAfter)),
    });
  }

  static withheld(name: string): GatewayDenial {
    return new GatewayDenial(
      `the definition of ${name} changed since an admin approved it; it is withheld until it is re-approved`,
      { code: 'ERR_TOOL_DEFINITION_CHANGED', mcpCode: MCP_ERRORS.withheld, status: 403, outcome: 'denied' },
    );
  }

  static unknown(message: string): GatewayDenial {
    return new GatewayDenial(message, {
      code: 'ERR_UNKNOWN_TOOL',
      mcpCode: MCP_ERRORS.unknown,
      status: 404,
      outcome: 'denied',
    });
  }

  static credential(e: unknown): GatewayDenial {
    const detail = e instanceof WardenError ? e.message : 'the upstream credential could not be obtained';
    return new GatewayDenial(`credential refused: ${detail}`, {
      code: e instanceof WardenError ? e.code : 'ERR_CREDENTIAL_UNAVAILABLE',
      mcpCode: MCP_ERRORS.unavailable,
      status: e instanceof WardenError && e.status < 500 ? 403 : 503,
      outcome: 'denied',
    });
  }

  static upstream(e: unknown, upstream: Upstream): GatewayDenial {
    if (e instanceof GatewayDenial) return e;
    const timedOut =
      (isMcpError(e) && e.code === -32001) || (e as { name?: string })?.name === 'TimeoutError';
    if (timedOut) {
      return new GatewayDenial(
        `the upstream ${upstream.name} did not answer within ${upstream.timeout_ms} ms`,
        {
          code: 'ERR_UPSTREAM_TIMEOUT',
          mcpCode: MCP_ERRORS.timeout,
          status: 504,
          outcome: 'failure',
        },
      );
    }
    // An upstream's own JSON-RPC error is passed on by code and message (they are the upstream's words).
    const detail = isMcpError(e) ? `: ${e.message.replace(/^MCP error -?\d+: /, '').slice(0, 500)}` : '';
    return new GatewayDenial(`the upstream ${upstream.name} failed${detail}`, {
      code: 'ERR_UPSTREAM_FAILED',
      mcpCode: MCP_ERRORS.upstream,
      status: 502,
      outcome: 'failure',
    });
  }

  static internal(e: unknown, logger: Logger): GatewayDenial {
    if (e instanceof WardenError) {
      return new GatewayDenial(e.message, {
        code: e.code,
        mcpCode: MCP_ERRORS.unavailable,
        status: e.status,
        outcome: 'failure',
      });
    }
    logger.error({ err: { message: (e as Error)?.message } }, 'gateway call failed');
    return new GatewayDenial('the gateway failed to process the call', {
      code: 'ERR_INTERNAL',
      mcpCode: MCP_ERRORS.internal,
      status: 500,
      outcome: 'failure',
    });
  }

  /**
   * The MCP (JSON-RPC) error for this refusal: an Error carrying `code` and `data`, which the SDK
   * sends as the JSON-RPC error as is (an `McpError` would prefix its message twice on the way).
   */
  toMcpError(): Error & { code: number; data: Record<string, unknown> } {
    return jsonRpcError(this.mcpCode, this.message, {
      code: this.code,
      ...(this.decision
        ? {
            decision: this.decision.decision,
            approval_required: this.decision.approval_required,
            policies: this.decision.determining_policies.map((p) => p.id),
          }
        : {}),
      ...(this.retryAfter ? { retry_after: this.retryAfter } : {}),
    });
  }
}

/** An error the MCP SDK turns into a JSON-RPC error response with exactly this code, message and data. */
export function jsonRpcError(
  code: number,
  message: string,
  data: Record<string, unknown>,
): Error & { code: number; data: Record<string, unknown> } {
  return Object.assign(new Error(message), { code, data });
}
