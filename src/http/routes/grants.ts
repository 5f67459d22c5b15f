import { z } from 'zod';
import { NotFoundError } from '../../core/index.ts';
import { actorOf, listQuerySchema, ROLES } from '../../identity/index.ts';
import { type DelegationGrant, isGrantActive, MAX_GRANT_LIFETIME_MS } from '../../tokens/index.ts';
import { type AnyRoute, defineRoute } from '../route.ts';
import type { Warden } from '../warden.ts';

const scopeSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'an RFC 6749 scope token');

const grantSchema = z.object({
  id: z.uuid(),
  user_id: z.string(),
  agent_id: z.string(),
  scopes: z.array(z.string()),
  resources: z.array(z.string()).describe('resource indicators; empty = any configured resource'),
  purpose: z.string(),
  authorization_details: z.array(z.unknown()).nullable(),
  source: z.enum(['consent', 'api', 'ciba']),
  created_by: z.string(),
  created_at: z.string(),
  expires_at: z.string(),
  revoked_at: z.string().nullable(),
  revoked_by: z.string().nullable(),
  revoke_reason: z.string().nullable(),
  active: z.boolean(),
});

const grantCreateSchema = z
  .object({
    user: z.string().min(1).max(64).describe('user id or username'),
    agent: z.string().min(1).max(64).describe('agent id or name'),
    scopes: z.array(scopeSchema).min(1).max(100),
    resources: z
      .array(z.url({ protocol: /^https?$/ }))
      .max(50)
      .default([]),
    purpose: z.string().min(1).max(1000),
    duration_seconds: z
      .number()
      .int()
      .min(60)
      .max(MAX_GRANT_LIFETIME_MS / 1000)
      .default(30 * 86_400),
    authorization_details: z
      .array(z.object({ type: z.string().min(1).max(200) }).passthrough())
      .max(20)
      .optional(),
  })
  .strict();

const listSchema = listQuerySchema
  .extend({
    include_inactive: z.enum(['true', 'false']).optional(),
    agent_id: z.uuid().optional(),
  })
  .strict();
const adminListSchema = listSchema.extend({ user_id: z.uuid().optional() }).strict();
const idParams = z.object({ id: z.uuid() }).strict();
const revokeSchema = z
  .object({ reason: z.string().min(1).max(500).optional() })
  .strict()
  .default({});
const revocationSchema = z.object({ grant: grantSchema, revoked_tokens: z.number().int() });
const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next_cursor: z.string().nullable() });

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Admin API for delegation grants (what users let agents do for them) and users' own view. */
export function grantRoutes(warden: Warden): AnyRoute[] {
  const { tokens } = warden;
  const view = (g: DelegationGrant) => ({
    id: g.id,
    user_id: g.userId,
    agent_id: g.agentId,
    scopes: g.scopes,
    resources: g.resources,
    purpose: g.purpose,
    authorization_details: g.authorizationDetails,
    source: g.source,
    created_by: g.createdBy,
    created_at: new Date(g.createdAt).toISOString(),
    expires_at: new Date(g.expiresAt).toISOString(),
    revoked_at: iso(g.revokedAt),
    revoked_by: g.revokedBy,
    revoke_reason: g.revokeReason,
    active: isGrantActive(g, warden.clock.now()),
  });
  const list = async (q: z.infer<typeof adminListSchema>) => {
    const page = await tokens.grants.list({
      userId: q.user_id,
      agentId: q.agent_id,
      includeInactive: q.include_inactive === 'true',
      cursor: q.cursor,
      limit: q.limit,
    });
    return { items: page.items.map(view), next_cursor: page.next_cursor };
  };
  const notFound = (id: string) =>
    new NotFoundError(`grant ${id} does not exist`, { code: 'ERR_GRANT_NOT_FOUND' });
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/me/grants',
      tag: 'grants',
      summary: 'The delegation grants the caller gave to agents (active ones unless include_inactive)',
      auth: ROLES,
      query: listSchema,
      response: { status: 200, schema: pageOf(grantSchema) },
      handler: ({ query, caller }) => list({ ...query, user_id: caller.userId }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/me/grants/:id/revoke',
      tag: 'grants',
      summary: 'Revoke one of the caller’s own grants, and every token an agent obtained under it',
      auth: ROLES,
      params: idParams,
      body: revokeSchema,
      response: { status: 200, schema: revocationSchema },
      handler: async ({ params, body, caller }) => {
        const grant = await tokens.grants.find(params.id);
        // Someone else's grant answers exactly like a missing one.
        if (!grant || grant.userId !== caller.userId) throw notFound(params.id);
        const r = await tokens.revokeGrant(
          grant.id,
          actorOf(caller),
          caller.request,
          body.reason ?? 'revoked by the user',
        );
        return { grant: view(r.grant), revoked_tokens: r.revokedTokens.length };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/grants',
      tag: 'grants',
      summary: 'List delegation grants (filter by user and agent)',
      auth: ['admin', 'security_analyst'],
      query: adminListSchema,
      response: { status: 200, schema: pageOf(grantSchema) },
      handler: ({ query }) => list(query),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/grants/:id',
      tag: 'grants',
      summary: 'Show a delegation grant',
      auth: ['admin', 'security_analyst'],
      params: idParams,
      response: { status: 200, schema: grantSchema },
      handler: async ({ params }) => {
        const grant = await tokens.grants.find(params.id);
        if (!grant) throw notFound(params.id);
        return view(grant);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/grants',
      tag: 'grants',
      summary: 'Create a delegation grant for a user to an agent (scopes within the agent template)',
      auth: ['admin'],
      body: grantCreateSchema,
      response: { status: 201, schema: grantSchema },
      handler: async ({ body, caller }) => {
        const grant = await tokens.createGrant(
          {
            userId: body.user,
            agentId: body.agent,
            scopes: body.scopes,
            resources: body.resources,
            purpose: body.purpose,
            authorizationDetails: body.authorization_details ?? null,
            source: 'api',
            createdBy: caller.userId,
            expiresAt: warden.clock.now() + body.duration_seconds * 1000,
          },
          actorOf(caller),
          caller.request,
        );
        return view(grant);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/grants/:id/revoke',
      tag: 'grants',
      summary: 'Revoke a grant and every token issued under it (takes effect on every node at once)',
      auth: ['admin', 'security_analyst'],
      params: idParams,
      body: revokeSchema,
      response: { status: 200, schema: revocationSchema },
      handler: async ({ params, body, caller }) => {
        const r = await tokens.revokeGrant(
          params.id,
          actorOf(caller),
          caller.request,
          body.reason ?? 'revoked by an administrator',
        );
        return { grant: view(r.grant), revoked_tokens: r.revokedTokens.length };
      },
    }),
  ];
}
