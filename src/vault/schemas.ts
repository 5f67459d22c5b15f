import { z } from 'zod';
import { InvalidRequestError } from '../core/index.ts';
import { accessRuleSchema } from './access-rule.ts';

/** Names of connections and credentials: what `warden secrets put NAME` and the gateway use. */
export const vaultNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/,
    'letters, digits, . _ - only, at most 100, not starting with . _ -',
  );

/** Header values must be visible ASCII: a CR or LF in a secret would split the upstream request. */
const headerValueSchema = z
  .string()
  .min(1)
  .max(16_384)
  .regex(/^[\x20-\x7e]+$/, 'must be visible ASCII (no control characters or line breaks)');

const scopesSchema = z
  .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope token (RFC 6749 §3.3)'))
  .max(100);

const httpUrl = z.url({ protocol: /^https?$/ });

/** A new connection to an upstream OAuth 2 authorization server. */
export const connectionInputSchema = z
  .object({
    name: vaultNameSchema,
    /** Issuer identifier: endpoints are discovered from it unless given explicitly. */
    issuer: httpUrl.optional(),
    authorizationEndpoint: httpUrl.optional(),
    tokenEndpoint: httpUrl.optional(),
    revocationEndpoint: httpUrl.optional(),
    clientId: z.string().min(1).max(1000),
    clientSecret: z.string().min(1).max(10_000),
    clientAuthMethod: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
    scopes: scopesSchema.default([]),
    accessRule: accessRuleSchema,
    /**
     * Exchange mode: agents may trade a delegated Warden token for the user's upstream access
     * token itself (RFC 8693 at the token endpoint). Off by default; brokering is the norm.
     */
    allowExchange: z.boolean().default(false),
  })
  .strict()
  .refine((v) => v.issuer !== undefined || (v.authorizationEndpoint && v.tokenEndpoint), {
    message: 'give an issuer (for discovery) or both authorizationEndpoint and tokenEndpoint',
    path: ['issuer'],
  })
  .refine((v) => !v.authorizationEndpoint === !v.tokenEndpoint, {
    message: 'authorizationEndpoint and tokenEndpoint are given together',
    path: ['tokenEndpoint'],
  });

export type ConnectionInput = z.input<typeof connectionInputSchema>;

/** Changes to a connection; a new client secret becomes a new secret version. */
export const connectionPatchSchema = z
  .object({
    clientSecret: z.string().min(1).max(10_000).optional(),
    scopes: scopesSchema.optional(),
    accessRule: accessRuleSchema.optional(),
    allowExchange: z.boolean().optional(),
  })
  .strict();

export type ConnectionPatch = z.input<typeof connectionPatchSchema>;

/** A service credential for an upstream without OAuth. Writing an existing name adds a version. */
export const credentialInputSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('api_key'),
      name: vaultNameSchema,
      value: headerValueSchema,
      /** The header the key is sent in. */
      headerName: z
        .string()
        .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'an HTTP header name')
        .default('x-api-key'),
      ownerUserId: z.string().min(1).max(200).optional(),
      accessRule: accessRuleSchema,
    })
    .strict(),
  z
    .object({
      kind: z.literal('bearer'),
      name: vaultNameSchema,
      value: headerValueSchema,
      ownerUserId: z.string().min(1).max(200).optional(),
      accessRule: accessRuleSchema,
    })
    .strict(),
  z
    .object({
      kind: z.literal('basic'),
      name: vaultNameSchema,
      username: z
        .string()
        .min(1)
        .max(1000)
        .regex(/^[^:\r\n]+$/, 'must not contain a colon or a line break'),
      password: z
        .string()
        .max(10_000)
        .regex(/^[^\r\n]*$/, 'must not contain a line break'),
      ownerUserId: z.string().min(1).max(200).optional(),
      accessRule: accessRuleSchema,
    })
    .strict(),
]);

export type CredentialInput = z.input<typeof credentialInputSchema>;

/**
 * Parses `input` or throws an InvalidRequestError listing each bad field. Values are never echoed:
 * the input carries secrets.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix = 'body'): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const invalidParams = result.error.issues.map((issue) => ({
    name: [prefix, ...issue.path.map(String)].join('.'),
    reason: issue.message,
  }));
  throw new InvalidRequestError(
    `invalid input: ${invalidParams.map((p) => `${p.name}: ${p.reason}`).join('; ')}`,
    { invalidParams },
  );
}

/** A connection as the API returns it (no secret). */
export const connectionViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  issuer: z.string().nullable(),
  authorizationEndpoint: z.string(),
  tokenEndpoint: z.string(),
  clientId: z.string(),
  clientAuthMethod: z.enum(['client_secret_basic', 'client_secret_post']),
  clientSecretVersion: z.number().int(),
  scopes: z.array(z.string()),
  accessRule: accessRuleSchema,
  allowExchange: z.boolean(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});

/** A connected account as the API returns it (no token). */
export const accountViewSchema = z.object({
  id: z.string(),
  connectionId: z.string(),
  userId: z.string(),
  status: z.enum(['active', 'broken']),
  scope: z.string().nullable(),
  refreshTokenVersion: z.number().int(),
  brokenReason: z.string().nullable(),
  brokenAt: z.number().int().nullable(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});

/** A service credential as the API returns it (no value). */
export const credentialViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(['api_key', 'bearer', 'basic']),
  headerName: z.string().nullable(),
  ownerUserId: z.string().nullable(),
  secretVersion: z.number().int(),
  accessRule: accessRuleSchema,
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});
