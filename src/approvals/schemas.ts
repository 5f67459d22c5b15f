import { z } from 'zod';
import { nameSchema } from '../identity/index.ts';

/** Who may decide a request: the delegating user, the agent's owner, or a named group. */
export const approversSchema = z
  .object({
    kind: z.enum(['user', 'owner', 'group']),
    group: nameSchema.optional(),
    /**
     * Separation of duties: the agent's owner may approve only when this is true. Rules of kind
     * `owner` set it (naming the owner is the explicit allowance); others default to false.
     */
    allow_owner: z.boolean().optional(),
  })
  .strict()
  .refine((a) => a.kind !== 'group' || a.group !== undefined, {
    message: 'a group rule names its group',
    path: ['group'],
  });
export type Approvers = z.infer<typeof approversSchema>;

const toolName = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_.:/-]+$/, 'a tool name');

/** What a decision point hands over when a call needs a person's approval. */
export const approvalRequestInputSchema = z
  .object({
    agent_id: z.uuid(),
    user_id: z.uuid().optional(),
    intent: z.string().min(1).max(2000).optional(),
    tool: toolName,
    resource: z.string().min(1).max(2000).optional(),
    arguments: z.record(z.string(), z.unknown()),
    binding_message: z.string().min(1).max(200).optional(),
    approvers: approversSchema.optional(),
    /** Time to decide, in seconds (default from settings). */
    ttl_seconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .optional(),
    /** The policies that required approval (for the audit trail). */
    policies: z.array(z.string().max(200)).max(50).default([]),
  })
  .strict();
export type ApprovalRequestInput = z.input<typeof approvalRequestInputSchema>;

export const approvalStatusSchema = z.enum(['pending', 'approved', 'denied', 'expired', 'consumed']);
export type ApprovalStatus = z.infer<typeof approvalStatusSchema>;

/** An approval request as the API shows it. */
export const approvalViewSchema = z.object({
  id: z.string(),
  status: approvalStatusSchema,
  agent: z.object({ id: z.string(), name: z.string(), owner_id: z.string() }),
  user_id: z.string().nullable(),
  intent: z.string().nullable(),
  tool: z.string(),
  resource: z.string().nullable(),
  arguments: z.record(z.string(), z.unknown()),
  authorization_details: z.array(z.record(z.string(), z.unknown())),
  binding_message: z.string(),
  call_hash: z.string(),
  approvers: z.object({
    kind: z.enum(['user', 'owner', 'group']),
    group: z.string().optional(),
    allow_owner: z.boolean().optional(),
  }),
  policies: z.array(z.string()),
  created_at: z.string(),
  expires_at: z.string(),
  decided_at: z.string().nullable(),
  decided_by: z.object({ id: z.string(), name: z.string().nullable() }).nullable(),
  decision_comment: z.string().nullable(),
  grant_expires_at: z.string().nullable(),
  consumed_at: z.string().nullable(),
  url: z.string(),
});
export type ApprovalView = z.infer<typeof approvalViewSchema>;

export const approvalListQuerySchema = z
  .object({
    status: approvalStatusSchema.optional(),
    agent_id: z.uuid().optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  .strict();

export const decisionBodySchema = z.object({ comment: z.string().min(1).max(1000).optional() }).strict();

// ---- channels ----
const channelBase = { name: nameSchema, enabled: z.boolean().default(true) };
const httpsOrLocal = z
  .url({ protocol: /^https?$/ })
  .max(2000)
  .refine((u) => {
    const url = new URL(u);
    return url.protocol === 'https:' || ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  }, 'must be https (plain http only to a loopback address)');

export const channelInputSchema = z.discriminatedUnion('kind', [
  z
    .object({
      ...channelBase,
      kind: z.literal('webhook'),
      url: httpsOrLocal,
      /** The HMAC-SHA256 key the receiver verifies `Warden-Signature` with (write-only). */
      secret: z.string().min(32).max(512),
    })
    .strict(),
  z
    .object({
      ...channelBase,
      kind: z.literal('email'),
      host: z.string().min(1).max(253),
      port: z.number().int().min(1).max(65_535).default(587),
      /** Implicit TLS (port 465); otherwise STARTTLS is required unless the host is loopback. */
      secure: z.boolean().default(false),
      from: z.email().max(254),
      /** Fixed recipients, in addition to the eligible approvers' own addresses. */
      to: z.array(z.email().max(254)).max(50).default([]),
      notify_approvers: z.boolean().default(true),
      username: z.string().min(1).max(254).optional(),
      /** SMTP password (write-only). */
      password: z.string().min(1).max(512).optional(),
    })
    .strict(),
  z
    .object({
      ...channelBase,
      kind: z.literal('slack'),
      /** The incoming-webhook URL; it is itself the credential, so it is sealed (write-only). */
      webhook_url: httpsOrLocal,
    })
    .strict(),
]);
export type ChannelInput = z.input<typeof channelInputSchema>;

export const channelViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(['webhook', 'email', 'slack']),
  enabled: z.boolean(),
  /** Non-secret settings only. */
  config: z.record(z.string(), z.unknown()),
  has_secret: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type ChannelView = z.infer<typeof channelViewSchema>;

// ---- groups ----
export const groupInputSchema = z
  .object({ members: z.array(z.string().min(1).max(64)).min(1).max(500) })
  .strict()
  .describe('member user ids or usernames');
export const groupViewSchema = z.object({
  name: z.string(),
  members: z.array(z.object({ id: z.string(), username: z.string() })),
  updated_at: z.string(),
});
export type GroupView = z.infer<typeof groupViewSchema>;

// ---- statistics ----
export const approverStatsSchema = z.object({
  approver_id: z.string(),
  approver_name: z.string().nullable(),
  approved: z.number().int(),
  denied: z.number().int(),
  approve_ratio: z.number(),
  latency_ms: z.object({ mean: z.number(), p50: z.number(), max: z.number() }),
});
export type ApproverStats = z.infer<typeof approverStatsSchema>;
