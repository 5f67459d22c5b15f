import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Kysely } from 'kysely';
import { decodeEventRow } from './reader.ts';

/** The `format` of the first line of a ledger export. */
export const EXPORT_FORMAT = 'warden-audit-ledger/1';

/**
 * Writes the whole ledger to a JSON Lines file that {@link verifyLedgerFile} checks offline.
 *
 * Format (UTF-8, one JSON object per line):
 * 1. `{"format":"warden-audit-ledger/1","exported_at":<epoch ms>,"public_key":<verifier key or null>}`
 *    — the key is informational; a verifier must use its own trusted copy.
 * 2. For each partition, in name order:
 *    - `{"partition":{"name":…,"pruned_seq":k,"pruned_frontier":[hex…]}}`: events `1…k` were
 *      removed by retention; the frontier holds the RFC 9162 subtree roots over them;
 *    - `{"checkpoint":{"partition":…,"size":n,"time":…,"root_hash":hex,"note":"<C2SP signed note>"}}`
 *      for each checkpoint, by size;
 *    - `{"event":{…}}` for each event in sequence order: the stored event (body fields plus
 *      `prev_hash` and `hash`). The chain hash covers the canonical JSON of the body (the event
 *      without `prev_hash` and `hash`).
 *
 * Returns the number of events written.
 */
export async function exportLedger(
  db: Kysely<any>,
  path: string,
  options: { publicKey?: string | undefined; now?: number } = {},
): Promise<number> {
  const out = createWriteStream(path, { encoding: 'utf8', mode: 0o600 });
  const write = async (obj: unknown) => {
    if (!out.write(`${JSON.stringify(obj)}\n`)) await once(out, 'drain');
  };
  let count = 0;
  try {
    await write({
      format: EXPORT_FORMAT,
      exported_at: options.now ?? Date.now(),
      public_key: options.publicKey ?? null,
    });
    const names = new Set<string>();
    for (const t of ['audit_events', 'audit_partitions', 'audit_checkpoints']) {
      for (const r of await db.selectFrom(t).select('partition').distinct().execute())
        names.add(r.partition as string);
    }
    for (const name of [...names].sort()) {
      const part = await db
        .selectFrom('audit_partitions')
        .select(['pruned_seq', 'pruned_frontier'])
        .where('partition', '=', name)
        .executeTakeFirst();
      await write({
        partition: {
          name,
          pruned_seq: Number(part?.pruned_seq ?? 0),
          pruned_frontier: part ? JSON.parse(part.pruned_frontier) : [],
        },
      });
      const cps = await db
        .selectFrom('audit_checkpoints')
        .select(['size', 'time', 'root_hash', 'note'])
        .where('partition', '=', name)
        .orderBy('size')
        .execute();
      for (const c of cps) {
        await write({
          checkpoint: {
            partition: name,
            size: Number(c.size),
            time: Number(c.time),
            root_hash: c.root_hash,
            note: c.note,
          },
        });
      }
      for (let after = -1; ; ) {
        const rows = await db
          .selectFrom('audit_events')
          .select(['seq', 'body', 'prev_hash', 'hash'])
          .where('partition', '=', name)
          .where('seq', '>', after)
          .orderBy('seq')
          .limit(5000)
          .execute();
        for (const r of rows) {
          await write({ event: decodeEventRow(r as { body: string; prev_hash: string; hash: string }) });
          count++;
        }
        if (rows.length < 5000) break;
        after = Number((rows.at(-1) as { seq: number }).seq);
      }
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  return count;
}
