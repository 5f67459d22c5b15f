import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Gateway, type IncomingCall, parseIntent, unwrapUri } from './gateway.ts';
import { INTENT_HEADER } from './mcp-intent.ts';

export { INTENT_HEADER, INTENT_META_KEY } from './mcp-intent.ts';

/** The MCP SDK's server side is loaded on the first MCP request, not at start. */
let sdkServer: Promise<typeof import('./mcp-server.ts')> | undefined;

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
  app.post(path, async (request, reply) => {
    const auth = await gateway.authenticate(incomingCall(request), path, gateway.mcpResource);
    for (const name of calledUpstreams(request.body)) {
      const upstream = (await gateway.catalog()).find((u) => u.kind === 'mcp' && u.name === name);
      if (upstream) gateway.checkScopes(auth, upstream, path);
    }
    const headerIntent = parseIntent(request.headers[INTENT_HEADER]);
    sdkServer ??= import('./mcp-server.ts');
    // A plain JSON answer cannot carry notifications: a tool call that asked for progress (and may
    // be held for a person's approval) is answered as an SSE stream instead.
    const { server, transport } = await (await sdkServer).mcpExchange(
      gateway,
      auth,
      headerIntent,
      !wantsProgress(request.body),
    );
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
