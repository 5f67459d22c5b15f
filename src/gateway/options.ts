import { z } from 'zod';

const bucket = z
  .object({ capacity: z.number().int().min(1).max(1_000_000), per_second: z.number().positive() })
  .strict();

/** Gateway settings, validated when the gateway is created so a bad value fails at start. */
export const gatewayOptionsSchema = z
  .object({
    /** Path of the MCP endpoint; the MCP resource identifier is `<publicUrl><mcpPath>`. */
    mcpPath: z
      .string()
      .regex(/^\/[a-z0-9/_-]*$/)
      .default('/mcp'),
    /** Seconds of clock skew tolerated on token times. */
    clockSkewSeconds: z.number().int().min(0).max(300).default(5),
    /** How long a DPoP proof is acceptable around its `iat`, in seconds. */
    dpopWindowSeconds: z.number().int().min(5).max(600).default(60),
    /** How long an upstream's tool list is reused before it is asked again. */
    toolsTtlMs: z.number().int().min(0).max(3_600_000).default(30_000),
    /** Calls per agent (every upstream), per node. */
    agentRateLimit: bucket.default({ capacity: 200, per_second: 100 }),
    /** Calls per tool/endpoint across agents, per node, unless the upstream sets its own. */
    toolRateLimit: bucket.default({ capacity: 1000, per_second: 500 }),
    /**
     * What a `tools/call` that needs a person's approval does: `hold` keeps the call open until
     * the request is decided (at most `approvalWaitSeconds`, then answers as `pending`); `pending`
     * answers at once with the request id, and the agent retries with it once approved.
     */
    approvalMode: z.enum(['hold', 'pending']).default('hold'),
    /** Longest a held call waits for a decision (keep it below the MCP client's request timeout). */
    approvalWaitSeconds: z.number().int().min(0).max(3600).default(30),
    /** Time a person has to decide a request the gateway opens (default: the approvals setting). */
    approvalTtlSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .optional(),
    /** Seconds between MCP progress notifications to a held call that supplied a progressToken. */
    approvalProgressSeconds: z.number().min(0.1).max(300).default(5),
  })
  .strict();

export type GatewayOptions = z.input<typeof gatewayOptionsSchema>;
export type GatewaySettings = z.infer<typeof gatewayOptionsSchema>;
