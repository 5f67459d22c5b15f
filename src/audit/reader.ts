import type { Kysely } from 'kysely';
import type { AuditEvent } from './event.ts';

/** A stored row of `audit_events`, decoded. */
export function decodeEventRow(row: { body: string; prev_hash: string; hash: string }): AuditEvent {
  const body = JSON.parse(row.body) as Omit<AuditEvent, 'hash' | 'prev_hash'>;
  return { ...body, prev_hash: row.prev_hash, hash: row.hash };
}

/** Every partition that has events, with its last sequence number. */
export async function listPartitions(db: Kysely<any>): Promise<{ partition: string; head: number }[]> {
  const rows = await db
    .selectFrom('audit_events')
    .select(['partition', (eb) => eb.fn.max('seq').as('head')])
    .groupBy('partition')
    .orderBy('partition')
    .execute();
  return rows.map((r) => ({ partition: r.partition as string, head: Number(r.head) }));
}

/**
 * Reads up to `limit` events of one partition with `seq > afterSeq`, in chain order. This is the
 * outbox read used by exporters and the risk engine, each keeping its own cursor.
 */
export async function readEvents(
  db: Kysely<any>,
  partition: string,
  afterSeq: number,
  limit: number,
): Promise<AuditEvent[]> {
  const rows = await db
    .selectFrom('audit_events')
    .select(['body', 'prev_hash', 'hash'])
    .where('partition', '=', partition)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((r) => decodeEventRow(r as { body: string; prev_hash: string; hash: string }));
}
