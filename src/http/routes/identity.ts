import { z } from 'zod';
import { UnauthenticatedError } from '../../core/index.ts';
import {
  actorOf,
  agentCreateSchema,
  agentListQuerySchema,
  agentSchema,
  agentStatusChangeSchema,
  agentUpdateSchema,
  apiTokenCreateSchema,
  apiTokenSchema,
  attestedInstanceSchema,
  listQuerySchema,
  loginSchema,
  providerCreateSchema,
  providerListQuerySchema,
  providerSchema,
  providerStatusChangeSchema,
  providerUpdateSchema,
  roleSchema,
  templateCreateSchema,
  templateSchema,
  templateVersionCreateSchema,
  templateVersionSchema,
  userCreateSchema,
  userListQuerySchema,
  userSchema,
  userUpdateSchema,
} from '../../identity/index.ts';
import { type AnyRoute, defineRoute } from '../route.ts';
import type { Warden } from '../warden.ts';

const refParams = z.object({ ref: z.string().min(1).max(64) }).strict();
const idParams = z.object({ id: z.uuid() }).strict();
const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next_cursor: z.string().nullable() });

/** `POST /v1/login/console`: a console access token (never in a URL) and the wanted role. */
const consoleLoginSchema = z
  .object({
    access_token: z
      .string()
      .min(20)
      .max(16 * 1024),
    role: roleSchema.optional(),
    /** Lifetime of the issued API token in seconds; at most 12 hours. */
    expires_in: z
      .number()
      .int()
      .min(60)
      .max(12 * 3600)
      .default(8 * 3600),
  })
  .strict();

const READERS = ['admin', 'security_analyst'] as const;
const AGENT_READERS = ['admin', 'security_analyst', 'agent_owner', 'approver'] as const;

/** Admin API for the registry: users, API tokens, providers, templates, agents. */
export function identityRoutes(warden: Warden): AnyRoute[] {
  const { users, providers, templates, agents } = warden.identity;
  return [
    // ---- users ----
    defineRoute({
      method: 'GET',
      url: '/v1/users',
      tag: 'users',
      summary: 'List users',
      auth: READERS,
      query: userListQuerySchema,
      response: { status: 200, schema: pageOf(userSchema) },
      handler: ({ query }) => users.list(query),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/users',
      tag: 'users',
      summary: 'Create a user',
      auth: ['admin'],
      body: userCreateSchema,
      response: { status: 201, schema: userSchema },
      handler: ({ body, caller }) => users.create(body, caller),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/users/:ref',
      tag: 'users',
      summary: 'Show a user (id or username)',
      auth: READERS,
      params: refParams,
      response: { status: 200, schema: userSchema },
      handler: ({ params }) => users.get(params.ref),
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/users/:ref',
      tag: 'users',
      summary: 'Change a user',
      auth: ['admin'],
      params: refParams,
      body: userUpdateSchema,
      response: { status: 200, schema: userSchema },
      handler: async ({ params, body, caller }) => {
        const user = await users.update(params.ref, body, caller);
        // A disabled person's delegations end with their account, on every node at once.
        if (user.status === 'disabled') {
          await warden.tokens.revokeUserGrants(user.id, actorOf(caller), caller.request);
        }
        return user;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/me',
      tag: 'users',
      summary: 'The caller and the role of its token',
      auth: ['admin', 'security_analyst', 'auditor', 'approver', 'agent_owner'],
      response: { status: 200, schema: z.object({ user: userSchema, role: z.string() }) },
      handler: async ({ caller }) => ({ user: await users.get(caller.userId), role: caller.role }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/login',
      tag: 'users',
      summary: 'Sign in with username and password; returns a short-lived API token',
      auth: 'public',
      body: loginSchema,
      response: { status: 201, schema: apiTokenSchema.extend({ token: z.string() }) },
      handler: async ({ body, request }) => {
        const { token, record } = await users.login(body, {
          source_ip: request.ip,
          user_agent: request.headers['user-agent']?.slice(0, 300),
          request_id: request.id,
        });
        return { ...record, token };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/login/console',
      tag: 'users',
      summary:
        'Trade a console access token (authorization_code + PKCE, `warden login --browser`) for a short-lived API token; the console token is spent',
      auth: 'public',
      body: consoleLoginSchema,
      response: { status: 201, schema: apiTokenSchema.extend({ token: z.string() }) },
      handler: async ({ body, request }) => {
        const meta = {
          source_ip: request.ip,
          user_agent: request.headers['user-agent']?.slice(0, 300),
          request_id: request.id,
        };
        const userId = await warden.tokens.redeemConsoleToken(body.access_token, meta);
        if (!userId) {
          await warden.auditor.record({
            type: 'auth.login_failed',
            actor: { type: 'anonymous', id: 'console-token' },
            action: 'login.console',
            outcome: 'denied',
            error_code: 'ERR_TOKEN_INVALID',
            request: meta,
          });
          throw new UnauthenticatedError('the console access token is not valid', {
            code: 'ERR_TOKEN_INVALID',
          });
        }
        const { token, record } = await users.loginAs(
          userId,
          { role: body.role, expires_in: body.expires_in },
          meta,
          'login.console',
        );
        return { ...record, token };
      },
    }),
    // ---- API tokens ----
    defineRoute({
      method: 'POST',
      url: '/v1/tokens',
      tag: 'tokens',
      summary: 'Issue an API token (shown once)',
      auth: ['admin', 'security_analyst', 'auditor', 'approver', 'agent_owner'],
      body: apiTokenCreateSchema,
      response: { status: 201, schema: apiTokenSchema.extend({ token: z.string() }) },
      handler: async ({ body, caller }) => {
        const { token, record } = await users.createToken(body, caller);
        return { ...record, token };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/tokens',
      tag: 'tokens',
      summary: 'List API tokens (own; admins: any user)',
      auth: ['admin', 'security_analyst', 'auditor', 'approver', 'agent_owner'],
      query: listQuerySchema.extend({ user_id: z.uuid().optional() }).strict(),
      response: { status: 200, schema: pageOf(apiTokenSchema) },
      handler: ({ query, caller }) => users.listTokens(caller, query),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/tokens/:id',
      tag: 'tokens',
      summary: 'Revoke an API token',
      auth: ['admin', 'security_analyst', 'auditor', 'approver', 'agent_owner'],
      params: idParams,
      response: { status: 200, schema: apiTokenSchema },
      handler: ({ params, caller }) => users.revokeToken(params.id, caller),
    }),
    // ---- providers ----
    defineRoute({
      method: 'GET',
      url: '/v1/providers',
      tag: 'providers',
      summary: 'List agent providers',
      auth: READERS,
      query: providerListQuerySchema,
      response: { status: 200, schema: pageOf(providerSchema) },
      handler: ({ query }) => providers.list(query),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/providers',
      tag: 'providers',
      summary: 'Register an agent provider',
      auth: ['admin'],
      body: providerCreateSchema,
      response: { status: 201, schema: providerSchema },
      handler: ({ body, caller }) => providers.create(body, caller),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/providers/:ref',
      tag: 'providers',
      summary: 'Show a provider',
      auth: READERS,
      params: refParams,
      response: { status: 200, schema: providerSchema },
      handler: ({ params }) => providers.get(params.ref),
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/providers/:ref',
      tag: 'providers',
      summary: 'Change a provider (contact, keys)',
      auth: ['admin'],
      params: refParams,
      body: providerUpdateSchema,
      response: { status: 200, schema: providerSchema },
      handler: ({ params, body, caller }) => providers.update(params.ref, body, caller),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/providers/:ref/distrust',
      tag: 'providers',
      summary: 'Distrust a provider and suspend all its agents',
      auth: READERS,
      params: refParams,
      body: providerStatusChangeSchema,
      response: {
        status: 200,
        schema: z.object({ provider: providerSchema, suspended: z.array(z.string()) }),
      },
      handler: ({ params, body, caller }) => providers.distrust(params.ref, body.reason, caller),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/providers/:ref/trust',
      tag: 'providers',
      summary: 'Trust a provider again',
      auth: ['admin'],
      params: refParams,
      body: providerStatusChangeSchema,
      response: { status: 200, schema: providerSchema },
      handler: ({ params, body, caller }) => providers.trust(params.ref, body.reason, caller),
    }),
    // ---- templates ----
    defineRoute({
      method: 'GET',
      url: '/v1/templates',
      tag: 'templates',
      summary: 'List agent templates',
      auth: AGENT_READERS,
      query: listQuerySchema,
      response: { status: 200, schema: pageOf(templateSchema) },
      handler: ({ query }) => templates.list(query),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/templates',
      tag: 'templates',
      summary: 'Create an agent template',
      auth: ['admin'],
      body: templateCreateSchema,
      response: { status: 201, schema: templateSchema },
      handler: ({ body, caller }) => templates.create(body, caller),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/templates/:ref',
      tag: 'templates',
      summary: 'Show a template (latest version)',
      auth: AGENT_READERS,
      params: refParams,
      response: { status: 200, schema: templateSchema },
      handler: ({ params }) => templates.get(params.ref),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/templates/:ref/versions',
      tag: 'templates',
      summary: 'List every version of a template',
      auth: AGENT_READERS,
      params: refParams,
      response: { status: 200, schema: z.object({ items: z.array(templateVersionSchema) }) },
      handler: async ({ params }) => ({ items: await templates.versions(params.ref) }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/templates/:ref/versions',
      tag: 'templates',
      summary: 'Create the next version of a template',
      auth: ['admin'],
      params: refParams,
      body: templateVersionCreateSchema,
      response: { status: 201, schema: templateSchema },
      handler: ({ params, body, caller }) => templates.createVersion(params.ref, body.spec, caller),
    }),
    // ---- agents ----
    defineRoute({
      method: 'GET',
      url: '/v1/agents',
      tag: 'agents',
      summary: 'List agents (owners see their own)',
      auth: AGENT_READERS,
      query: agentListQuerySchema,
      response: { status: 200, schema: pageOf(agentSchema) },
      handler: ({ query, caller }) => agents.list(query, caller),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/agents',
      tag: 'agents',
      summary: 'Register an agent with its public keys',
      auth: ['admin', 'agent_owner'],
      body: agentCreateSchema,
      response: { status: 201, schema: agentSchema },
      handler: ({ body, caller }) => agents.create(body, caller),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/agents/:ref',
      tag: 'agents',
      summary: 'Show an agent',
      auth: AGENT_READERS,
      params: refParams,
      response: { status: 200, schema: agentSchema },
      handler: ({ params, caller }) => agents.get(params.ref, caller),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/agents/:ref/instances',
      tag: 'agents',
      summary: 'The agent’s attested instances and what each last attested (most recent first)',
      auth: AGENT_READERS,
      params: refParams,
      response: { status: 200, schema: z.object({ items: z.array(attestedInstanceSchema) }) },
      handler: async ({ params, caller }) => {
        const agent = await agents.get(params.ref, caller);
        return { items: await agents.instances.list(agent.id) };
      },
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/agents/:ref',
      tag: 'agents',
      summary: 'Change an agent (keys, owner, purpose, template version)',
      auth: ['admin', 'agent_owner'],
      params: refParams,
      body: agentUpdateSchema,
      response: { status: 200, schema: agentSchema },
      handler: ({ params, body, caller }) => agents.update(params.ref, body, caller),
    }),
    ...(['suspend', 'resume', 'retire'] as const).map((move) =>
      defineRoute({
        method: 'POST',
        url: `/v1/agents/:ref/${move}`,
        tag: 'agents',
        summary:
          move === 'retire'
            ? 'Retire an agent (final)'
            : `${move[0]?.toUpperCase()}${move.slice(1)} an agent`,
        auth: ['admin', 'security_analyst', 'agent_owner'],
        params: refParams,
        body: agentStatusChangeSchema,
        response: { status: 200, schema: agentSchema },
        handler: ({ params, body, caller }) => agents.transition(params.ref, move, body.reason, caller),
      }),
    ),
  ];
}
