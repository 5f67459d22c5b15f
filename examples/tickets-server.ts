/**
 * A small upstream MCP server for the gateway's examples, tests and benchmark: a ticket desk and a
 * payments desk, built with the official MCP SDK, served over streamable HTTP (stateless).
 *
 *   node examples/tickets-server.ts [--port 4100]
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface TicketsServerOptions {
  port?: number;
  /** Called with the headers of every request the server receives (tests check what arrives). */
  onRequest?: (headers: IncomingHttpHeaders) => void;
  /** Milliseconds `tickets.slow` waits before answering. */
  slowMs?: number;
}

export interface TicketsServer {
  url: string;
  server: Server;
  /** Changes the description of the `create` tool, as a compromised or updated upstream would. */
  setCreateDescription(text: string): void;
  close(): Promise<void>;
}

interface Ticket {
  id: string;
  title: string;
  priority: 'low' | 'normal' | 'high';
}

/** Builds the MCP server (one per request in stateless mode) over shared state. */
export function buildMcp(state: { tickets: Ticket[]; createDescription: string; slowMs: number }): McpServer {
  const mcp = new McpServer({ name: 'tickets-and-payments', version: '1.0.0' });
  mcp.registerTool(
    'search',
    {
      description: 'Search tickets by words in their title.',
      inputSchema: { query: z.string().max(200) },
    },
    async ({ query }) => {
      const hits = state.tickets.filter((t) => t.title.toLowerCase().includes(query.toLowerCase()));
      return { content: [{ type: 'text', text: JSON.stringify(hits) }] };
    },
  );
  mcp.registerTool(
    'create',
    {
      description: state.createDescription,
      inputSchema: {
        title: z.string().min(1).max(200),
        priority: z.enum(['low', 'normal', 'high']).default('normal'),
      },
    },
    async ({ title, priority }) => {
      const ticket = { id: `T-${state.tickets.length + 1}`, title, priority };
      state.tickets.push(ticket);
      return { content: [{ type: 'text', text: JSON.stringify(ticket) }] };
    },
  );
  mcp.registerTool(
    'slow',
    { description: 'Answers after a delay (for timeout tests).', inputSchema: {} },
    async () => {
      await new Promise((r) => setTimeout(r, state.slowMs));
      return { content: [{ type: 'text', text: 'finally' }] };
    },
  );
  mcp.registerTool(
    'refund',
    {
      description: 'Refund a payment, in cents.',
      inputSchema: { payment_id: z.string().min(1).max(64), amount: z.number().int().positive() },
    },
    async ({ payment_id, amount }) => ({
      content: [{ type: 'text', text: JSON.stringify({ refund_id: randomUUID(), payment_id, amount }) }],
    }),
  );
  mcp.registerResource('queue', 'tickets://queue', { description: 'The open ticket queue' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(state.tickets) }],
  }));
  mcp.registerPrompt(
    'triage',
    { description: 'Triage a ticket', argsSchema: { id: z.string() } },
    ({ id }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Triage ticket ${id}.` } }] }),
  );
  return mcp;
}

/** Starts the server on loopback. */
export async function startTicketsServer(options: TicketsServerOptions = {}): Promise<TicketsServer> {
  const state = {
    tickets: [{ id: 'T-1', title: 'Printer on fire', priority: 'high' as const }],
    createDescription: 'Create a support ticket.',
    slowMs: options.slowMs ?? 2000,
  };
  const server = createServer(async (req, res) => {
    options.onRequest?.(req.headers);
    if (req.url !== '/mcp' || req.method !== 'POST') {
      res.writeHead(req.url === '/mcp' ? 405 : 404).end();
      return;
    }
    const mcp = buildMcp(state);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    server,
    setCreateDescription(text) {
      state.createDescription = text;
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
}

if (import.meta.main) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : 4100;
  const s = await startTicketsServer({ port });
  process.stdout.write(`tickets MCP server at ${s.url}\n`);
}
