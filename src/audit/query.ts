import type { Kysely } from 'kysely';
import { z } from 'zod';
import { InvalidRequestError } from '../core/index.ts';
import { decodeCursor, type Page, pageOf } from '../store/index.ts';
import { AUDIT_EVENT_TYPES } from './catalogue.ts';
import type { AuditEvent } from './event.ts';
import { decodeEventRow } from './reader.ts';

const eventTypes = Object.keys(AUDIT_EVENT_TYPES) as [string, ...string[]];

/** Parses a time given as epoch milliseconds or an RFC 3339 date-time; undefined if neither. */
export function parseTime(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (/^[0-9]{1,16}$/.test(value)) return Number(value);
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(value)) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

const timeParam = z
  .union([z.number().int().min(0), z.string().max(40)])
  .refine((v) => parseTime(v) !== undefined, 'epoch milliseconds or an RFC 3339 date-time');

/** Filters for {@link queryEvents}; every filter given must match. */
export const auditQuerySchema = z
  .object({
    actor_id: z.string().min(1).max(200).optional(),
    agent_id: z.string().min(1).max(200).optional(),
    user_id: z.string().min(1).max(200).optional(),
    type: z.enum(eventTypes).optional(),
    outcome: z.enum(['success', 'failure', 'denied']).optional(),
    partition: z.string().min(1).max(64).optional(),
    /** Inclusive: epoch milliseconds or an RFC 3339 date-time. */
    from: timeParam.optional(),
    /** Inclusive: epoch milliseconds or an RFC 3339 date-time. */
    to: timeParam.optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().max(400).optional(),
  })
  .strict();

export type AuditQuery = z.input<typeof auditQuerySchema>;

/**
 * Searches the ledger, newest first (by event id: UUIDv7, time-ordered), one page at a time.
 * `next_cursor` continues after the last event of the page.
 * @throws InvalidRequestError on a bad filter or cursor; nothing is read.
 */
export async function queryEvents(db: Kysely<any>, query: AuditQuery): Promise<Page<AuditEvent>> {
  const parsed = auditQuerySchema.safeParse(query);
  if (!parsed.success) {
    throw new InvalidRequestError('invalid audit query', {
      invalidParams: parsed.error.issues.map((i) => ({
        name: `query.${i.path.join('.')}`,
        reason: i.message,
      })),
    });
  }
  const q = parsed.data;
  let sel = db.selectFrom('audit_events').select(['id', 'body', 'prev_hash', 'hash']);
  if (q.actor_id) sel = sel.where('actor_id', '=', q.actor_id);
  if (q.agent_id) sel = sel.where('agent_id', '=', q.agent_id);
  if (q.user_id) sel = sel.where('user_id', '=', q.user_id);
  if (q.type) sel = sel.where('type', '=', q.type);
  if (q.outcome) sel = sel.where('outcome', '=', q.outcome);
  if (q.partition) sel = sel.where('partition', '=', q.partition);
  if (q.from !== undefined) sel = sel.where('time', '>=', parseTime(q.from) as number);
  if (q.to !== undefined) sel = sel.where('time', '<=', parseTime(q.to) as number);
  if (q.cursor) sel = sel.where('id', '<', decodeCursor(q.cursor));
  const rows = await sel
    .orderBy('id', 'desc')
    .limit(q.limit + 1)
    .execute();
  const page = pageOf(
    rows as { id: string; body: string; prev_hash: string; hash: string }[],
    q.limit,
    (r) => r.id,
  );
  return { items: page.items.map(decodeEventRow), next_cursor: page.next_cursor };
}

/** Signed checkpoints, newest first, optionally of one partition. */
export async function listCheckpoints(
  db: Kysely<any>,
  options: { partition?: string | undefined; limit?: number | undefined } = {},
): Promise<{ partition: string; size: number; time: number; root_hash: string; note: string }[]> {
  let sel = db.selectFrom('audit_checkpoints').select(['partition', 'size', 'time', 'root_hash', 'note']);
  if (options.partition) sel = sel.where('partition', '=', options.partition);
  const rows = await sel
    .orderBy('time', 'desc')
    .orderBy('partition')
    .limit(Math.min(Math.max(options.limit ?? 100, 1), 1000))
    .execute();
  return rows.map((r) => ({
    partition: r.partition as string,
    size: Number(r.size),
    time: Number(r.time),
    root_hash: r.root_hash as string,
    note: r.note as string,
  }));
}
