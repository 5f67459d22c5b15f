import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Caller, Role } from '../identity/index.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a route handler receives: validated input and the authenticated caller. */
export interface RouteContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** Present on every route that is not `auth: 'public'`. */
  caller: Caller;
  request: FastifyRequest;
  reply: FastifyReply;
}

/**
 * One admin API route. The same zod schemas validate the request (unknown fields refused) and
 * produce the OpenAPI 3.1 document, so the documentation cannot drift from the behaviour.
 */
export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: HttpMethod;
  /** Fastify path, e.g. `/v1/agents/:id`. */
  url: string;
  summary: string;
  tag: string;
  /** Roles allowed to call the route, or `public` for unauthenticated routes. */
  auth: readonly Role[] | 'public';
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Success status and the schema of its body (none for 204). */
  response: { status: 200 | 201 | 202 | 204; schema?: z.ZodType; description?: string };
  handler(ctx: RouteContext<P, Q, B>): Promise<unknown>;
}

/** Identity function that lets TypeScript infer a route's input types from its schemas. */
export function defineRoute<P = undefined, Q = undefined, B = undefined>(
  spec: RouteSpec<P, Q, B>,
): RouteSpec<P, Q, B> {
  return spec;
}

/** A list of routes of mixed input types. */
export type AnyRoute = RouteSpec<any, any, any>;
