import { z } from 'zod';
import { jwksSchema } from './jwks.ts';
import { roleSchema } from './roles.ts';

/** Names: what people type on the CLI; stable, URL-safe, unique per kind. */
export const nameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[a-z0-9][a-z0-9._-]*$/,
    'lower-case letters, digits, ".", "_" and "-", starting with a letter or digit',
  );

const reasonSchema = z.string().min(1).max(500);
const uuidSchema = z.uuid();

// ---- users ----
export const userCreateSchema = z
  .object({
    username: nameSchema,
    display_name: z.string().min(1).max(200).optional(),
    email: z.email().max(254).optional(),
    roles: z.array(roleSchema).max(5).default([]),
    password: z.string().min(12).max(1024).optional(),
  })
  .strict();
export const userUpdateSchema = z
  .object({
    display_name: z.string().min(1).max(200).optional(),
    email: z.email().max(254).optional(),
    roles: z.array(roleSchema).max(5).optional(),
    status: z.enum(['active', 'disabled']).optional(),
    password: z.string().min(12).max(1024).optional(),
  })
  .strict();
export const userSchema = z.object({
  id: uuidSchema,
  username: z.string(),
  display_name: z.string().nullable(),
  email: z.string().nullable(),
  roles: z.array(roleSchema),
  status: z.enum(['active', 'disabled']),
  created_at: z.string(),
  updated_at: z.string(),
});
export type User = z.infer<typeof userSchema>;

// ---- API tokens ----
export const apiTokenCreateSchema = z
  .object({
    name: z.string().min(1).max(100),
    role: roleSchema,
    /** Lifetime in seconds; at most a year. */
    expires_in: z
      .number()
      .int()
      .min(60)
      .max(365 * 24 * 3600)
      .default(30 * 24 * 3600),
    /** Admins may create a token for another user. */
    user_id: uuidSchema.optional(),
  })
  .strict();
export const apiTokenSchema = z.object({
  id: uuidSchema,
  user_id: uuidSchema,
  name: z.string(),
  role: roleSchema,
  created_at: z.string(),
  expires_at: z.string(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
export type ApiToken = z.infer<typeof apiTokenSchema>;

export const loginSchema = z
  .object({
    username: z.string().min(1).max(64),
    password: z.string().min(1).max(1024),
    role: roleSchema.optional(),
    /** Lifetime of the issued token in seconds; at most 12 hours. */
    expires_in: z
      .number()
      .int()
      .min(60)
      .max(12 * 3600)
      .default(8 * 3600),
  })
  .strict();

// ---- providers ----
export const providerCreateSchema = z
  .object({
    name: nameSchema,
    display_name: z.string().min(1).max(200).optional(),
    contact: z.string().min(1).max(254),
    jwks: jwksSchema,
  })
  .strict();
export const providerUpdateSchema = z
  .object({
    display_name: z.string().min(1).max(200).optional(),
    contact: z.string().min(1).max(254).optional(),
    jwks: jwksSchema.optional(),
  })
  .strict();
export const providerStatusChangeSchema = z.object({ reason: reasonSchema }).strict();
export const providerSchema = z.object({
  id: uuidSchema,
  name: z.string(),
  display_name: z.string().nullable(),
  contact: z.string(),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }),
  status: z.enum(['trusted', 'distrusted']),
  status_reason: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type Provider = z.infer<typeof providerSchema>;

// ---- templates ----
const scopeSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'an RFC 6749 scope token');
const toolSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_.:/*-]+$/, 'a tool name, e.g. tickets.create or tickets.*');
export const approvalRuleSchema = z
  .object({
    tool: toolSchema,
    /** Optional: approval only when this argument exceeds `above`. */
    argument: z.string().min(1).max(100).optional(),
    above: z.number().optional(),
    approvers: z.enum(['user', 'owner', 'group']).default('owner'),
    group: z.string().min(1).max(100).optional(),
  })
  .strict();
export const attestationRequirementSchema = z
  .object({
    required: z.boolean().default(false),
    /** Allowed container image digests (sha256:…); empty means any. */
    image_digests: z
      .array(z.string().regex(/^sha256:[0-9a-f]{64}$/))
      .max(100)
      .default([]),
    /** Allowed model identifiers; empty means any. */
    models: z.array(z.string().min(1).max(200)).max(100).default([]),
    min_software_version: z.string().max(50).optional(),
  })
  .strict();
/**
 * Whether agents of a template may ask people for delegated access with `authorization_code` +
 * PKCE (the consent screen), where the user is sent back to, and the longest grant a user may give.
 * Absent: not allowed.
 */
export const delegationSpecSchema = z
  .object({
    allowed: z.boolean().default(false),
    /** Registered redirect URIs of the agent's callback (https, or http on a loopback address). */
    redirect_uris: z
      .array(
        z
          .url({ protocol: /^https?$/ })
          .max(500)
          .refine(
            (u) => u.startsWith('https:') || /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?\//.test(u),
            'https, or http on a loopback address',
          )
          .refine((u) => !u.includes('#'), 'no fragment'),
      )
      .max(10)
      .default([]),
    /**
     * Whether the agent may ask a person out of band (OpenID CIBA, `/backchannel`): the person
     * decides on the approval page. Independent of `allowed` (no redirect URIs needed).
     */
    ciba: z.boolean().default(false),
    /**
     * CIBA ping mode: where Warden notifies the agent that a decision is ready (https only, as
     * CIBA §4 and the library require). Absent: poll mode.
     */
    ciba_notification_endpoint: z
      .url({ protocol: /^https$/ })
      .max(500)
      .refine((u) => !u.includes('#'), 'no fragment')
      .optional(),
    /** Longest delegation a user may grant, in seconds: default 30 days, at most 90 days. */
    max_duration_seconds: z
      .number()
      .int()
      .min(300)
      .max(90 * 86_400)
      .default(30 * 86_400),
  })
  .strict()
  .refine((d) => !d.allowed || d.redirect_uris.length > 0, {
    message: 'delegation.allowed needs at least one redirect URI',
    path: ['redirect_uris'],
  });
export type DelegationSpec = z.infer<typeof delegationSpecSchema>;
export const templateSpecSchema = z
  .object({
    description: z.string().min(1).max(2000),
    allowed_scopes: z.array(scopeSchema).max(100).default([]),
    allowed_tools: z.array(toolSchema).max(500).default([]),
    resources: z.array(z.string().min(1).max(500)).max(100).default([]),
    approval_rules: z.array(approvalRuleSchema).max(100).default([]),
    /** Access token lifetime in seconds: default 5 minutes, at most 1 hour. */
    token_lifetime: z.number().int().min(30).max(3600).default(300),
    require_dpop: z.boolean().default(true),
    require_intent: z.array(toolSchema).max(500).default([]),
    risk_tier: z.enum(['low', 'medium', 'high', 'critical']).default('medium'),
    attestation: attestationRequirementSchema.default({ required: false, image_digests: [], models: [] }),
    delegation: delegationSpecSchema.optional(),
  })
  .strict();
export type TemplateSpec = z.infer<typeof templateSpecSchema>;
export const templateCreateSchema = z.object({ name: nameSchema, spec: templateSpecSchema }).strict();
export const templateVersionCreateSchema = z.object({ spec: templateSpecSchema }).strict();
export const templateSchema = z.object({
  id: uuidSchema,
  name: z.string(),
  latest_version: z.number().int(),
  spec: templateSpecSchema,
  created_at: z.string(),
  updated_at: z.string(),
});
export type Template = z.infer<typeof templateSchema>;
export const templateVersionSchema = z.object({
  template_id: uuidSchema,
  version: z.number().int(),
  spec: templateSpecSchema,
  created_at: z.string(),
  created_by: z.string(),
});
export type TemplateVersion = z.infer<typeof templateVersionSchema>;

// ---- agents ----
export const agentCreateSchema = z
  .object({
    name: nameSchema,
    provider: z.string().min(1).max(64).describe('provider id or name'),
    template: z.string().min(1).max(64).describe('template id or name'),
    template_version: z.number().int().min(1).optional(),
    owner: z.string().min(1).max(64).optional().describe('owner user id or username; defaults to the caller'),
    purpose: z.string().min(1).max(1000),
    jwks: jwksSchema,
    risk_tier: z.enum(['low', 'medium', 'high', 'critical']).optional(),
  })
  .strict();
export const agentUpdateSchema = z
  .object({
    purpose: z.string().min(1).max(1000).optional(),
    owner: z.string().min(1).max(64).optional(),
    jwks: jwksSchema.optional(),
    template_version: z.number().int().min(1).optional(),
    risk_tier: z.enum(['low', 'medium', 'high', 'critical']).optional(),
  })
  .strict();
export const agentStatusChangeSchema = z.object({ reason: reasonSchema }).strict();
export const agentSchema = z.object({
  id: uuidSchema,
  name: z.string(),
  provider_id: uuidSchema,
  owner_id: uuidSchema,
  purpose: z.string(),
  template_id: uuidSchema,
  template_version: z.number().int(),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }),
  status: z.enum(['active', 'suspended', 'retired']),
  status_reason: z.string().nullable(),
  risk_tier: z.enum(['low', 'medium', 'high', 'critical']),
  created_at: z.string(),
  updated_at: z.string(),
  last_seen_at: z.string().nullable(),
});
export type Agent = z.infer<typeof agentSchema>;

export const listQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    cursor: z.string().max(500).optional(),
  })
  .strict();
export const agentListQuerySchema = listQuerySchema
  .extend({
    status: z.enum(['active', 'suspended', 'retired']).optional(),
    provider_id: uuidSchema.optional(),
    template_id: uuidSchema.optional(),
    owner_id: uuidSchema.optional(),
  })
  .strict();
export const providerListQuerySchema = listQuerySchema
  .extend({ status: z.enum(['trusted', 'distrusted']).optional() })
  .strict();
export const userListQuerySchema = listQuerySchema.extend({ role: roleSchema.optional() }).strict();
