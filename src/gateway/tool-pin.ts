import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit/index.ts';

/** The parts of an MCP tool definition an agent (and its model) relies on. */
export interface ToolDefinition {
  name: string;
  description?: string | undefined;
  inputSchema?: unknown;
}

/**
 * SHA-256 (hex) of a tool's canonical definition: its name, description and input schema, in
 * canonical JSON so key order does not matter. Pinned at approval; any change withholds the tool.
 */
export function toolDefinitionHash(tool: ToolDefinition): string {
  const canonical = canonicalJson({
    name: tool.name,
    description: tool.description ?? null,
    inputSchema: tool.inputSchema ?? null,
  });
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}
