import { createRequire } from 'node:module';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { Counter, Histogram } from 'prom-client';
import type { z } from 'zod';
import {
  ForbiddenError,
  type InvalidParam,
  InvalidRequestError,
  NotFoundError,
  toProblem,
  UnauthenticatedError,
  WardenError,
} from '../core/index.ts';
import type { Caller } from '../identity/index.ts';
import { buildOpenApi } from './openapi.ts';
import type { AnyRoute } from './route.ts';
import { registerApprovalPages } from './routes/approvals.ts';
import { registerGateway } from './routes/gateway.ts';
import { allRoutes } from './routes/index.ts';
import { registerTokens } from './routes/tokens.ts';
import type { Warden } from './warden.ts';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

const VERSION = '0.1.0';

/** Sends an error as RFC 9457 problem+json; the one place errors become HTTP. */
export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: unknown): FastifyReply {
  const problem = toProblem(error, request.url.split('?')[0]);
  if (error instanceof WardenError) {
    for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
  }
  return reply.status(problem.status).type('application/problem+json').send(problem);
}

/** Maps Fastify's own errors (parsing, body size, media type) to Warden's typed errors. */
function fromFastifyError(error: FastifyError): WardenError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new InvalidRequestError('the request body is not valid JSON', { code: 'ERR_MALFORMED_JSON' });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new WardenError(
        'ERR_BODY_TOO_LARGE',
        413,
        'Request body too large',
        'the request body exceeds the size limit',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new WardenError(
        'ERR_UNSUPPORTED_MEDIA_TYPE',
        415,
        'Unsupported media type',
        'send application/json',
      );
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new InvalidRequestError('Content-Length does not match the body', {
        code: 'ERR_BAD_CONTENT_LENGTH',
      });
    default:
      return error.statusCode && error.statusCode >= 400 && error.statusCode < 500
        ? new InvalidRequestError('the request could not be processed', { code: 'ERR_BAD_REQUEST' })
        : undefined;
  }
}

function validate<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return undefined as T;
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (result.success) return result.data;
  const invalidParams: InvalidParam[] = result.error.issues.map((issue) => ({
    name: [where, ...issue.path.map(String)].join('.'),
    reason: issue.message,
  }));
  throw new InvalidRequestError(`the request ${where} is invalid`, { code: 'ERR_VALIDATION', invalidParams });
}

/** Authenticates an admin API token from `Authorization: Bearer …`. */
async function authenticate(warden: Warden, request: FastifyRequest): Promise<Caller> {
  const header = request.headers.authorization;
  const challenge = { 'www-authenticate': 'Bearer realm="warden"' };
  if (!header)
    throw new UnauthenticatedError('an API token is required', {
      code: 'ERR_TOKEN_MISSING',
      headers: challenge,
    });
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(header);
  if (!match) {
    throw new UnauthenticatedError('the Authorization header must be "Bearer <token>"', {
      code: 'ERR_TOKEN_MALFORMED',
      headers: challenge,
    });
  }
  try {
    const auth = await warden.identity.users.authenticate(match[1] as string);
    return {
      userId: auth.user.id,
      username: auth.user.username,
      role: auth.role,
      request: requestMeta(request),
    };
  } catch (e) {
    if (e instanceof WardenError) {
      await warden.auditor
        .record({
          type: 'auth.request_refused',
          actor: { type: 'anonymous', id: 'unknown' },
          action: `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`,
          outcome: 'denied',
          error_code: e.code,
          request: requestMeta(request),
        })
        .catch(() => {});
      throw new UnauthenticatedError(e.message, { code: e.code, headers: challenge });
    }
    throw e;
  }
}

function requestMeta(request: FastifyRequest) {
  return {
    source_ip: request.ip,
    user_agent: request.headers['user-agent']?.slice(0, 300),
    request_id: request.id,
  };
}

function authorize(route: AnyRoute, caller: Caller): void {
  if (route.auth === 'public') return;
  if (!route.auth.includes(caller.role)) {
    throw new ForbiddenError(`this operation needs one of the roles: ${route.auth.join(', ')}`, {
      code: 'ERR_ROLE_REQUIRED',
    });
  }
}

/**
 * Fastify's route-schema compilers (Ajv, fast-json-stringify), required from Fastify's own
 * location when a route first declares a JSON schema. Warden's routes validate with zod and
 * declare none, so a node does not load them at start (Fastify would, when it is created).
 */
const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'));
const lazyCompilers = {
  buildValidator: (...args: unknown[]) =>
    (fastifyRequire('@fastify/ajv-compiler') as () => (...a: unknown[]) => unknown)()(...args),
  buildSerializer: (...args: unknown[]) =>
    (fastifyRequire('@fastify/fast-json-stringify-compiler') as () => (...a: unknown[]) => unknown)()(
      ...args,
    ),
};

/** Builds the HTTP server: admin API, health, metrics, OpenAPI, problem+json errors. */
export async function buildServer(
  warden: Warden,
  routes: AnyRoute[] = allRoutes(warden),
): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: warden.logger.child({ component: 'http' }) as FastifyBaseLogger,
    bodyLimit: warden.config.http.bodyLimit,
    trustProxy: warden.config.http.trustProxy,
    genReqId: () => crypto.randomUUID(),
    return503OnClosing: true,
    schemaController: { compilersFactory: lazyCompilers as never },
  });

  const requests = new Counter({
    name: 'warden_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['method', 'route', 'status'],
    registers: [warden.metrics],
  });
  const duration = new Histogram({
    name: 'warden_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [warden.metrics],
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const mapped = error instanceof WardenError ? error : fromFastifyError(error);
    if (!mapped || mapped.status >= 500) {
      request.log.error(
        { err: { message: error.message, code: error.code, stack: error.stack } },
        'request failed',
      );
    }
    return sendProblem(reply, request, mapped ?? error);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      request,
      new NotFoundError(`no route ${request.method} ${request.url.split('?')[0]}`, { code: 'ERR_NO_ROUTE' }),
    ),
  );

  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      onRequest: async (request) => {
        if (route.auth !== 'public') request.caller = await authenticate(warden, request);
      },
      preHandler: async (request) => {
        if (request.caller) authorize(route, request.caller);
      },
      handler: async (request, reply) => {
        const params = validate(route.params, request.params, 'params');
        const query = validate(route.query, request.query, 'query');
        const body = validate(route.body, request.body, 'body');
        const result = await route.handler({
          params,
          query,
          body,
          caller: request.caller as Caller,
          request,
          reply,
        });
        if (reply.sent) return reply;
        reply.status(route.response.status);
        if (route.response.status === 204) return reply.send();
        return reply.send(result);
      },
    });
  }

  registerTokens(app, warden);
  registerGateway(app, warden);
  registerApprovalPages(app, warden);

  // Built when first asked for: converting every route's zod schemas is a sizeable part of a start.
  let openapi: Record<string, unknown> | undefined;
  app.get('/openapi.json', async () => {
    openapi ??= buildOpenApi(routes, { version: VERSION, serverUrl: warden.publicUrl });
    return openapi;
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const ok = await warden.store.ping();
    return reply
      .status(ok ? 200 : 503)
      .send({ status: ok ? 'ready' : 'unavailable', checks: { database: ok } });
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(warden.metrics.contentType).send(await warden.metrics.metrics()),
  );
  return app;
}
