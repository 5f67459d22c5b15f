import type { RouteRule } from './schemas.ts';

/** The rule a proxied request matched, with the path parameters it captured. */
export interface RouteMatch {
  rule: RouteRule;
  params: Record<string, string>;
}

/**
 * Finds the first rule matching a method and path. Patterns are literal segments, `:name`
 * segments (one segment, captured) and a final `*` (the rest of the path). Paths with `..` or
 * encoded slashes never match, so a rule cannot be escaped by path tricks. No match: no access.
 */
export function matchRoute(
  rules: readonly RouteRule[],
  method: string,
  path: string,
): RouteMatch | undefined {
  if (/%2f|%5c|\\/i.test(path)) return undefined;
  const segments = path.split('/').slice(1);
  if (segments.some((s) => /^(\.|%2e){1,2}$/i.test(s))) return undefined;
  for (const rule of rules) {
    if (rule.method !== '*' && rule.method !== method && !(rule.method === 'GET' && method === 'HEAD'))
      continue;
    const pattern = rule.path.split('/').slice(1);
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < pattern.length; i++) {
      const p = pattern[i] as string;
      if (p === '*' && i === pattern.length - 1) {
        params['*'] = segments.slice(i).join('/');
        break;
      }
      const s = segments[i];
      if (s === undefined) {
        ok = false;
        break;
      }
      if (p.startsWith(':')) {
        if (s === '') {
          ok = false;
          break;
        }
        try {
          params[p.slice(1)] = decodeURIComponent(s);
        } catch {
          ok = false;
          break;
        }
      } else if (p !== s) {
        ok = false;
        break;
      }
    }
    if (ok && (pattern.at(-1) === '*' || pattern.length === segments.length)) return { rule, params };
  }
  return undefined;
}
