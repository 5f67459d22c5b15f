import type { AuditIntent } from '../audit/index.ts';
import { parseIntent } from './gateway.ts';

/** The `_meta` key (and HTTP header) an agent declares its intent with. */
export const INTENT_META_KEY = 'warden/intent';
export const INTENT_HEADER = 'x-warden-intent';

/** The intent of an MCP request: its `_meta["warden/intent"]`, else the request's header. */
export function intentOf(meta: unknown, header: AuditIntent | undefined): AuditIntent | undefined {
  const fromMeta =
    meta && typeof meta === 'object'
      ? parseIntent((meta as Record<string, unknown>)[INTENT_META_KEY])
      : undefined;
  return fromMeta ?? header;
}
