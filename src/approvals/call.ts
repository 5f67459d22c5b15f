import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit/index.ts';

/** The exact call an approval gates: who, for whom, what, on what, with which arguments. */
export interface GatedCall {
  agentId: string;
  /** The person the agent acts for; undefined when it acts for itself. */
  userId?: string | undefined;
  /** The tool (MCP tool name) or action. */
  tool: string;
  /** What the call touches (e.g. the upstream server or URL); undefined when the tool names it. */
  resource?: string | undefined;
  arguments: Record<string, unknown>;
}

/**
 * SHA-256 (hex) over the canonical JSON of the call. Any difference in agent, user, tool,
 * resource or arguments (including key order-independent content) yields another hash, so a grant
 * bound to one call cannot be spent on another.
 */
export function callHash(call: GatedCall): string {
  const canonical = canonicalJson({
    agent_id: call.agentId,
    user_id: call.userId ?? null,
    tool: call.tool,
    resource: call.resource ?? null,
    arguments: call.arguments,
  });
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/** The RFC 9396 `authorization_details` entry describing a gated tool call. */
export interface ToolCallAuthorizationDetail {
  type: 'warden_tool_call';
  tool: string;
  arguments: Record<string, unknown>;
  resource?: string;
  /** RFC 9396 common field: where the action happens. */
  locations?: string[];
}

/** Builds the `authorization_details` array (RFC 9396 §2) for a call. */
export function authorizationDetailsOf(call: GatedCall): ToolCallAuthorizationDetail[] {
  const detail: ToolCallAuthorizationDetail = {
    type: 'warden_tool_call',
    tool: call.tool,
    arguments: call.arguments,
  };
  if (call.resource !== undefined) {
    detail.resource = call.resource;
    detail.locations = [call.resource];
  }
  return [detail];
}

/** True when a tool name matches a rule's pattern (`tickets.create`, `tickets.*`, `*`). */
export function toolMatches(pattern: string, tool: string): boolean {
  if (pattern === '*' || pattern === tool) return true;
  if (pattern.endsWith('*')) return tool.startsWith(pattern.slice(0, -1));
  return false;
}
