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
import type { AuditIntent } from '../audit/index.ts';
import { WardenError } from '../core/index.ts';
import { type Authenticated, approvalRequestIdOf, type Gateway } from './gateway.ts';
import { GatewayDenial, jsonRpcError, MCP_ERRORS } from './gateway-denial.ts';
import { intentOf } from './mcp-intent.ts';

// The MCP SDK's server side, loaded by the MCP endpoint on its first request (not at start).

/**
 * A server is created per request, but not its JSON Schema validator: building an Ajv instance
 * cost more than the rest of the server and transport together (~0.5 ms of CPU per call).
 */
const validator = new AjvJsonSchemaValidator();

function mcpErrorOf(e: unknown): Error {
  if (e instanceof GatewayDenial) return e.toMcpError();
  if (e instanceof McpError) return e;
  if (e instanceof WardenError) return jsonRpcError(MCP_ERRORS.unavailable, e.message, { code: e.code });
  return jsonRpcError(MCP_ERRORS.internal, 'the gateway failed to process the call', {
    code: 'ERR_INTERNAL',
  });
}

/** An MCP server bound to one authenticated request; its handlers all go through the gateway. */
function serverFor(gateway: Gateway, auth: Authenticated, headerIntent: AuditIntent | undefined): Server {
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

/**
 * A connected server/transport pair for one authenticated request. `json`: answer with plain
 * JSON; otherwise as an SSE stream (which can carry progress notifications).
 */
export async function mcpExchange(
  gateway: Gateway,
  auth: Authenticated,
  headerIntent: AuditIntent | undefined,
  json: boolean,
): Promise<{ server: Server; transport: StreamableHTTPServerTransport }> {
  const server = serverFor(gateway, auth, headerIntent);
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: json,
  });
  await server.connect(transport);
  return { server, transport };
}
