import { z } from 'zod';
import { ForbiddenError } from '../../core/index.ts';
import { actorOf } from '../../identity/index.ts';
import {
  accountViewSchema,
  connectionInputSchema,
  connectionPatchSchema,
  connectionViewSchema,
  credentialInputSchema,
  credentialViewSchema,
  vaultNameSchema,
} from '../../vault/index.ts';
import { type AnyRoute, defineRoute } from '../route.ts';
import type { Warden } from '../warden.ts';

const READERS = ['admin', 'security_analyst'] as const;
const EVERYONE = ['admin', 'security_analyst', 'auditor', 'approver', 'agent_owner'] as const;
const refParams = z.object({ ref: z.string().min(1).max(100) }).strict();
const connectionParams = z.object({ connection: vaultNameSchema }).strict();
const listOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item) });

/** The callback's query: the authorization response parameters (RFC 6749 §4.1.2, RFC 9207 `iss`). */
const callbackQuery = z.looseObject({
  state: z.string().max(2000).optional(),
  code: z.string().max(4000).optional(),
  iss: z.string().max(2000).optional(),
  error: z.string().max(200).optional(),
  error_description: z.string().max(2000).optional(),
});

/**
 * Admin API of the token vault. Secrets are write-only: every response is metadata; no route
 * returns a client secret, refresh token, access token or credential value.
 */
export function vaultRoutes(warden: Warden): AnyRoute[] {
  const { vault } = warden;
  const callbackUrl = (connection: string) =>
    `${warden.publicUrl}/v1/vault/connect/${encodeURIComponent(connection)}/callback`;
  return [
    // ---- connections ----
    defineRoute({
      method: 'GET',
      url: '/v1/vault/connections',
      tag: 'vault',
      summary: 'List upstream OAuth connections',
      auth: READERS,
      response: { status: 200, schema: listOf(connectionViewSchema) },
      handler: async () => ({ items: await vault.listConnections() }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/vault/connections',
      tag: 'vault',
      summary:
        'Create a connection to an upstream OAuth 2 authorization server (client secret is write-only)',
      auth: ['admin'],
      body: connectionInputSchema,
      response: { status: 201, schema: connectionViewSchema },
      handler: ({ body, caller }) => vault.createConnection(body, actorOf(caller)),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/vault/connections/:ref',
      tag: 'vault',
      summary: 'Show a connection (id or name)',
      auth: READERS,
      params: refParams,
      response: { status: 200, schema: connectionViewSchema },
      handler: ({ params }) => vault.getConnection(params.ref),
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/vault/connections/:ref',
      tag: 'vault',
      summary: 'Change scopes or access rule, or write a new client secret version',
      auth: ['admin'],
      params: refParams,
      body: connectionPatchSchema,
      response: { status: 200, schema: connectionViewSchema },
      handler: ({ params, body, caller }) => vault.updateConnection(params.ref, body, actorOf(caller)),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/vault/connections/:ref',
      tag: 'vault',
      summary: 'Delete a connection, its connected accounts and all their secrets',
      auth: ['admin'],
      params: refParams,
      response: { status: 204 },
      handler: async ({ params, caller }) => {
        await vault.deleteConnection(params.ref, actorOf(caller));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/vault/connections/:ref/accounts',
      tag: 'vault',
      summary: 'List the connected accounts of a connection',
      auth: READERS,
      params: refParams,
      response: { status: 200, schema: listOf(accountViewSchema) },
      handler: async ({ params }) => ({ items: await vault.listAccounts({ connection: params.ref }) }),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/vault/accounts/:id',
      tag: 'vault',
      summary: 'Disconnect an account (its owner or an admin); every refresh-token version is deleted',
      auth: EVERYONE,
      params: z.object({ id: z.uuid() }).strict(),
      response: { status: 204 },
      handler: async ({ params, caller }) => {
        const account = await vault.getAccount(params.id);
        if (caller.role !== 'admin' && account.userId !== caller.userId) {
          throw new ForbiddenError('only the account owner or an admin may disconnect it');
        }
        await vault.disconnectAccount(params.id, actorOf(caller));
      },
    }),
    // ---- connecting an account (the caller connects their own) ----
    defineRoute({
      method: 'POST',
      url: '/v1/vault/connect/:connection/start',
      tag: 'vault',
      summary:
        "Start connecting the caller's account on a connection: returns the upstream authorization URL",
      auth: EVERYONE,
      params: connectionParams,
      response: {
        status: 200,
        schema: z.object({
          authorizationUrl: z.string(),
          expiresAt: z.number().int(),
          redirectUri: z.string(),
        }),
      },
      handler: async ({ params, caller }) => {
        const redirectUri = callbackUrl(params.connection);
        const started = await vault.beginConnect(params.connection, caller.userId, redirectUri);
        return { ...started, redirectUri };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/vault/connect/:connection/callback',
      tag: 'vault',
      summary: 'Where the upstream sends the user back: finishes the connect (state, PKCE, code exchange)',
      // The user's browser arrives here from the upstream without an API token; the single-use,
      // sealed state bound to the user who started the connect is the credential.
      auth: 'public',
      params: connectionParams,
      query: callbackQuery,
      response: { status: 200, schema: accountViewSchema },
      handler: ({ params, request }) => {
        const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
        return vault.completeConnect(query, { connection: params.connection });
      },
    }),
    // ---- service credentials ----
    defineRoute({
      method: 'GET',
      url: '/v1/vault/credentials',
      tag: 'vault',
      summary: 'List service credentials (metadata only)',
      auth: READERS,
      response: { status: 200, schema: listOf(credentialViewSchema) },
      handler: async () => ({ items: await vault.listCredentials() }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/vault/credentials',
      tag: 'vault',
      summary: 'Store a service credential, or a new version of an existing one (value is write-only)',
      auth: ['admin'],
      body: credentialInputSchema,
      response: { status: 201, schema: credentialViewSchema },
      handler: ({ body, caller }) => vault.putCredential(body, actorOf(caller)),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/vault/credentials/:ref',
      tag: 'vault',
      summary: 'Show a service credential (metadata only; id or name)',
      auth: READERS,
      params: refParams,
      response: { status: 200, schema: credentialViewSchema },
      handler: ({ params }) => vault.getCredentialInfo(params.ref),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/vault/credentials/:ref',
      tag: 'vault',
      summary: 'Delete a service credential and every version of its secret',
      auth: ['admin'],
      params: refParams,
      response: { status: 204 },
      handler: async ({ params, caller }) => {
        await vault.deleteCredential(params.ref, actorOf(caller));
      },
    }),
  ];
}
