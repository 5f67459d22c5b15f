import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  mountHttpProxy,
  mountMcpEndpoint,
  mountProtectedResourceMetadata,
  upstreamCreateSchema,
  upstreamSchema,
} from '../../gateway/index.ts';
import { type AnyRoute, defineRoute } from '../route.ts';
import type { Warden } from '../warden.ts';

const refParams = z.object({ ref: z.string().min(1).max(64) }).strict();

/** Admin API for the gateway's upstreams (MCP servers and HTTP APIs). */
export function gatewayRoutes(warden: Warden): AnyRoute[] {
  const { gateway } = warden;
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/gateway/upstreams',
      tag: 'gateway',
      summary: 'List upstreams',
      auth: ['admin', 'security_analyst'],
      response: { status: 200, schema: z.object({ items: z.array(upstreamSchema) }) },
      handler: async () => ({ items: await gateway.upstreams.list() }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/gateway/upstreams',
      tag: 'gateway',
      summary: 'Register an upstream (pending until approved)',
      auth: ['admin'],
      body: upstreamCreateSchema,
      response: { status: 201, schema: upstreamSchema },
      handler: ({ body, caller }) => gateway.upstreams.create(body, caller),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/gateway/upstreams/:ref',
      tag: 'gateway',
      summary: 'Show an upstream (id or name)',
      auth: ['admin', 'security_analyst'],
      params: refParams,
      response: { status: 200, schema: upstreamSchema },
      handler: ({ params }) => gateway.upstreams.get(params.ref),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/gateway/upstreams/:ref/approve',
      tag: 'gateway',
      summary: 'Approve an upstream and pin its current tool definitions (also re-approves changed ones)',
      auth: ['admin'],
      params: refParams,
      response: { status: 200, schema: upstreamSchema },
      handler: ({ params, caller }) => gateway.approveUpstream(params.ref, caller),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/gateway/upstreams/:ref',
      tag: 'gateway',
      summary: 'Remove an upstream',
      auth: ['admin'],
      params: refParams,
      response: { status: 204 },
      handler: async ({ params, caller }) => {
        await gateway.upstreams.remove(params.ref, caller);
      },
    }),
  ];
}

/** The agent-facing endpoints: MCP, the HTTP proxy and their RFC 9728 metadata. */
export function registerGateway(app: FastifyInstance, warden: Warden): void {
  mountProtectedResourceMetadata(app, warden.gateway);
  mountMcpEndpoint(app, warden.gateway);
  mountHttpProxy(app, warden.gateway);
}
