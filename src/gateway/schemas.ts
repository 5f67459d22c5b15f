import { z } from 'zod';

/** An upstream's name is its namespace: tools appear to agents as `<name>.<tool>`. */
export const upstreamNameSchema = z
  .string()
  .min(1)
  .max(48)
  .regex(
    /^[a-z0-9][a-z0-9_-]*$/,
    'lower-case letters, digits, "_" and "-" (no dots: the name is a namespace)',
  );

/** Upstream URLs never carry credentials: those live in the vault and are injected per call. */
const httpUrl = z
  .url({ protocol: /^https?$/ })
  .max(2000)
  .refine((u) => {
    const url = new URL(u);
    return url.username === '' && url.password === '';
  }, 'credentials do not belong in the URL; store them in the vault and name them in "credential"');

/** One HTTP proxy rule: requests matching method + path pattern are the Cedar resource `Endpoint::<endpoint>`. */
export const routeRuleSchema = z
  .object({
    method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', '*']),
    /** `/tickets/:id`, `/files/*` (a trailing `*` matches the rest of the path). */
    path: z
      .string()
      .min(1)
      .max(500)
      .regex(/^\/[A-Za-z0-9._~:@!$&'()+,;=/*-]*$/, 'an absolute path pattern, e.g. /tickets/:id'),
    endpoint: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[A-Za-z0-9_.:-]+$/, 'an endpoint id, e.g. tickets.read'),
  })
  .strict();
export type RouteRule = z.infer<typeof routeRuleSchema>;

export const rateLimitSchema = z
  .object({
    capacity: z.number().int().min(1).max(100_000),
    per_second: z.number().positive().max(100_000),
  })
  .strict();

export const upstreamCreateSchema = z
  .object({
    name: upstreamNameSchema,
    kind: z.enum(['mcp', 'http']).default('mcp'),
    transport: z.enum(['streamable_http', 'stdio']).optional(),
    url: httpUrl.optional(),
    /** stdio upstreams: the command Warden starts (no shell). */
    command: z
      .object({
        command: z.string().min(1).max(500),
        args: z.array(z.string().max(2000)).max(100).default([]),
        cwd: z.string().min(1).max(1000).optional(),
      })
      .strict()
      .optional(),
    /** Vault connection or credential (id or name) injected into every upstream call. */
    credential: z.string().min(1).max(200).optional(),
    /** Scopes an access token must carry to reach this upstream. */
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/))
      .max(50)
      .default([]),
    routes: z.array(routeRuleSchema).max(500).default([]),
    timeout_ms: z.number().int().min(100).max(300_000).default(30_000),
    /** Per-tool (MCP) or per-endpoint (HTTP) token bucket, across all agents. */
    rate_limit: rateLimitSchema.optional(),
  })
  .strict()
  .superRefine((u, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (u.kind === 'http') {
      if (!u.url) issue('url', 'an HTTP upstream needs its base URL');
      if (u.transport || u.command) issue('transport', 'an HTTP upstream has no MCP transport or command');
      if (u.routes.length === 0)
        issue('routes', 'an HTTP upstream needs at least one route rule (nothing is allowed by default)');
      return;
    }
    if (u.routes.length > 0) issue('routes', 'route rules apply to HTTP upstreams only');
    const transport = u.transport ?? 'streamable_http';
    if (transport === 'streamable_http') {
      if (!u.url) issue('url', 'a streamable HTTP upstream needs its URL');
      if (u.command) issue('command', 'a streamable HTTP upstream has no command');
    } else {
      if (!u.command) issue('command', 'a stdio upstream needs its command');
      if (u.url) issue('url', 'a stdio upstream has no URL');
      if (u.credential) issue('credential', 'credential injection is supported for HTTP transports only');
    }
  });
export type UpstreamInput = z.input<typeof upstreamCreateSchema>;

export const upstreamSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  kind: z.enum(['mcp', 'http']),
  transport: z.enum(['streamable_http', 'stdio', 'http']),
  url: z.string().nullable(),
  command: z
    .object({ command: z.string(), args: z.array(z.string()), cwd: z.string().optional() })
    .nullable(),
  credential: z.string().nullable(),
  scopes: z.array(z.string()),
  routes: z.array(routeRuleSchema),
  timeout_ms: z.number().int(),
  rate_limit: rateLimitSchema.nullable(),
  status: z.enum(['pending', 'approved']),
  /** Tool name → SHA-256 of its approved definition. */
  pins: z.record(z.string(), z.string()),
  approved_by: z.string().nullable(),
  approved_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type Upstream = z.infer<typeof upstreamSchema>;
