import { InvalidRequestError } from '../core/index.ts';

/** A request for one page of a list ordered by a unique, time-sortable key (UUIDv7 ids). */
export interface PageRequest {
  limit: number;
  cursor?: string | undefined;
}

/** One page of results and the opaque cursor of the next page, if there is one. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Encodes the last key of a page as an opaque cursor. */
export function encodeCursor(key: string): string {
  return Buffer.from(JSON.stringify({ k: key }), 'utf8').toString('base64url');
}

/** Decodes a cursor made by {@link encodeCursor}. @throws InvalidRequestError if malformed. */
export function decodeCursor(cursor: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { k?: unknown };
    if (typeof parsed.k === 'string' && parsed.k.length <= 200) return parsed.k;
  } catch {
    // fall through
  }
  throw new InvalidRequestError('cursor is malformed', {
    code: 'ERR_INVALID_CURSOR',
    invalidParams: [{ name: 'query.cursor', reason: 'not a cursor returned by this API' }],
  });
}

/**
 * Turns `limit + 1` fetched rows into a page: the extra row, if present, only proves there is a
 * next page.
 */
export function pageOf<T>(rows: T[], limit: number, keyOf: (row: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, next_cursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null };
}
