import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditIntent } from '../audit/index.ts';
import { WardenError } from '../core/index.ts';
import {
  type Authenticated,
  approvalRequestIdOf,
  type Gateway,
  type IncomingCall,
  parseIntent,
  unwrapUri,
} from './gateway.ts';
import { GatewayDenial, jsonRpcError, MCP_ERRORS } from './gateway-denial.ts';

/** The `_meta` key (and HTTP header) an agent declares its intent with. */
export const INTENT_META_KEY = 'warden/intent';
export const INTENT_HEADER = 'x-warden-intent';

/** Every value of a request header, from the raw list (Node joins or drops duplicates otherwise). */
export function rawHeaderValues(request: FastifyRequest, name: string): string[] {
  const raw = request.raw.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2)
    if ((raw[i] as string).toLowerCase() === name) out.push(raw[i + 1] as string);
  return out;
}

/** The gateway's view of an incoming HTTP request. */
export function incomingCall(request: FastifyRequest): IncomingCall {
  return {
    method: request.method,
    url: request.url,
    headers: request.headers,
    dpop: rawHeaderValues(request, 'dpop'),
    meta: {
      source_ip: request.ip,
      user_agent: request.headers['user-agent']?.slice(0, 300),
      request_id: request.id,
    },
  };
}

function intentOf(meta: unknown, header: AuditIntent | undefined): AuditIntent | undefined {
  const fromMeta =
    meta && typeof meta === 'object'
      ? parseIntent((meta as Record<string, unknown>)[INTENT_META_KEY])
      : undefined;
  return fromMeta ?? header;
}

function mcpErrorOf(e: unknown): Error {
  if (e instanceof GatewayDenial) return e.toMcpError();
  if (e instanceof McpError) return e;
  if (e instanceof WardenError) return jsonRpcError(MCP_ERRORS.unavailable, e.message, { code: e.code });
  return jsonRpcError(MCP_ERRORS.internal, 'the gateway failed to process the call', {
    code: 'ERR_INTERNAL',
  });
}

/** An MCP server bound to one authenticated request; its handlers all go through the gateway. */
function serverFor(
  gateway: Gateway,
  auth: Authenticated,
  headerIntent: AuditIntent | undefined,
  validator: AjvJsonSchemaValidator,
): Server {
  const server = new Server(
    { name: 'warden-gateway', version: '0.1.0' },
    {
      capabilities: { tools: {}, resources: {}, prompts: {} },
      jsonSchemaValidator: validator,
      instructions:
        'Tools of the upstreams this agent may use, governed by Warden. Declare intent in _meta["warden/intent"].',
    },
  );
  const guard =
    <A, X, R>(fn: (req: A, extra: X) => Promise<R>) =>
    async (req: A, extra: X): Promise<R> => {
      try {
        return await fn(req, extra);
      } catch (e) {
        throw mcpErrorOf(e);
      }
    };
  server.setRequestHandler(
    ListToolsRequestSchema,
    guard(async () => ({ tools: await gateway.listTools(auth) })),
  );
  server.setRequestHandler(
    CallToolRequestSchema,
    guard(async (req, extra) => {
      const progressToken = req.params._meta?.progressToken;
      return gateway.callTool(
        auth,
        req.params.name,
        req.params.arguments,
        intentOf(req.params._meta, headerIntent),
        {
          approvalRequestId: approvalRequestIdOf(req.params._meta),
          progress:
            progressToken === undefined
              ? undefined
              : (progress, message) =>
                  extra.sendNotification({
                    method: 'notifications/progress',
                    params: { progressToken, progress, message },
                  }),
        },
      );
    }),
  );
  server.setRequestHandler(
    ListResourcesRequestSchema,
    guard(async () => ({ resources: await gateway.listResources(auth) })),
  );
  server.setRequestHandler(
    ReadResourceRequestSchema,
    guard(async (req) =>
      gateway.readResource(auth, req.params.uri, intentOf(req.params._meta, headerIntent)),
    ),
  );
  server.setRequestHandler(
    ListPromptsRequestSchema,
    guard(async () => ({ prompts: await gateway.listPrompts(auth) })),
  );
  server.setRequestHandler(
    GetPromptRequestSchema,
    guard(async (req) =>
      gateway.getPrompt(
        auth,
        req.params.name,
        req.params.arguments,
        intentOf(req.params._meta, headerIntent),
      ),
    ),
  );
  return server;
}

/** True when a body holds a `tools/call` with `_meta.progressToken`. */
function wantsProgress(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((m) => {
    if (!m || typeof m !== 'object') return false;
    const { method, params } = m as { method?: unknown; params?: { _meta?: { progressToken?: unknown } } };
    return method === 'tools/call' && params?._meta?.progressToken !== undefined;
  });
}

/**
 * The upstreams named by the calls in a body (`tools/call`, `prompts/get` by name, `resources/read`
 * by URI), so their scopes are checked at the HTTP layer and a missing scope is a 403 challenge.
 */
function calledUpstreams(body: unknown): string[] {
  const messages = Array.isArray(body) ? body : [body];
  const out: string[] = [];
  for (const m of messages) {
    if (!m || typeof m !== 'object') continue;
    const { method, params } = m as { method?: unknown; params?: { name?: unknown; uri?: unknown } };
    if ((method === 'tools/call' || method === 'prompts/get') && typeof params?.name === 'string') {
      out.push(params.name.split('.')[0] as string);
    } else if (method === 'resources/read' && typeof params?.uri === 'string') {
      const u = unwrapUri(params.uri);
      if (u) out.push(u.upstream);
    }
  }
  return out;
}

/**
 * Mounts the MCP endpoint (streamable HTTP, stateless: every POST is authenticated on its own and
 * served by a fresh server/transport pair, so any node can serve any request).
 */
export function mountMcpEndpoint(app: FastifyInstance, gateway: Gateway): void {
  const path = gateway.settings.mcpPath;
  // A server is created per request, but not its JSON Schema validator: building an Ajv instance
  // cost more than the rest of the server and transport together (~0.5 ms of CPU per call).
  const validator = new AjvJsonSchemaValidator();
  app.post(path, async (request, reply) => {
    const auth = await gateway.authenticate(incomingCall(request), path, gateway.mcpResource);
    for (const name of calledUpstreams(request.body)) {
      const upstream = (await gateway.catalog()).find((u) => u.kind === 'mcp' && u.name === name);
      if (upstream) gateway.checkScopes(auth, upstream, path);
    }
    const headerIntent = parseIntent(request.headers[INTENT_HEADER]);
    const server = serverFor(gateway, auth, headerIntent, validator);
    // A plain JSON answer cannot carry notifications: a tool call that asked for progress (and may
    // be held for a person's approval) is answered as an SSE stream instead.
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: !wantsProgress(request.body),
    });
    await server.connect(transport);
    reply.hijack();
    reply.raw.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await transport.handleRequest(request.raw, reply.raw, request.body);
    } catch (e) {
      request.log.error({ err: { message: (e as Error).message } }, 'MCP request failed');
      if (!reply.raw.headersSent) reply.raw.writeHead(500, { 'content-type': 'application/json' });
      reply.raw.end();
    }
  });
  const notAllowed = async (_request: FastifyRequest, reply: import('fastify').FastifyReply) =>
    reply.status(405).header('allow', 'POST').type('application/problem+json').send({
      type: 'https://warden.dev/problems/method-not-allowed',
      title: 'Method not allowed',
      status: 405,
      detail: 'this MCP endpoint is stateless: send every message with POST',
      code: 'ERR_METHOD_NOT_ALLOWED',
    });
  app.get(path, notAllowed);
  app.delete(path, notAllowed);
}
