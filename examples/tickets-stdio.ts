/**
 * The tickets and payments MCP server over stdio, for gateway upstreams registered as a command:
 *
 *   warden upstreams add desk --command node --arg examples/tickets-stdio.ts
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { buildMcp } from './tickets-server.ts';

const mcp = buildMcp({
  tickets: [{ id: 'T-1', title: 'Printer on fire', priority: 'high' }],
  createDescription: 'Create a support ticket.',
  slowMs: 2000,
});
await mcp.connect(new StdioServerTransport());
