import type { Kysely } from 'kysely';
import { ConflictError, NotFoundError } from '../core/index.ts';
import { chainHash, checkpointOrigin } from './auditor.ts';
import { canonicalJson } from './canonical.ts';
import type { AuditEvent } from './event.ts';
import { eventLeafHash, Frontier, PartialTree, verifyInclusion } from './merkle.ts';
import { decodeEventRow } from './reader.ts';
import { type NoteVerifier, openNote, parseCheckpointText, parseNoteVerifier } from './signed-note.ts';

/** An RFC 9162 §2.1.3 inclusion proof of one event in a signed checkpoint of its partition. */
export interface InclusionProof {
  event: AuditEvent;
  /** Zero-based leaf index: `seq - 1`. */
  leaf_index: number;
  tree_size: number;
  /** The audit path, bottom first, base64. */
  inclusion_path: string[];
  /** The C2SP signed checkpoint whose root the path leads to. */
  checkpoint: string;
}

/**
 * Builds the inclusion proof of event `id` against the first checkpoint that covers it.
 * @throws NotFoundError for an unknown event; ConflictError `ERR_AUDIT_NOT_CHECKPOINTED` when no
 * checkpoint covers it yet.
 */
export async function inclusionProof(db: Kysely<any>, id: string): Promise<InclusionProof> {
  const row = await db
    .selectFrom('audit_events')
    .select(['partition', 'seq', 'body', 'prev_hash', 'hash'])
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('no such audit event', { code: 'ERR_AUDIT_EVENT_NOT_FOUND' });
  const partition = row.partition as string;
  const seq = Number(row.seq);
  const cp = await db
    .selectFrom('audit_checkpoints')
    .select(['size', 'note'])
    .where('partition', '=', partition)
    .where('size', '>=', seq)
    .orderBy('size')
    .limit(1)
    .executeTakeFirst();
  if (!cp) {
    throw new ConflictError('the event is not covered by a signed checkpoint yet; try again later', {
      code: 'ERR_AUDIT_NOT_CHECKPOINTED',
    });
  }
  const size = Number(cp.size);
  const part = await db
    .selectFrom('audit_partitions')
    .select(['pruned_seq', 'pruned_frontier'])
    .where('partition', '=', partition)
    .executeTakeFirst();
  const prefix = Frontier.from(
    Number(part?.pruned_seq ?? 0),
    part ? (JSON.parse(part.pruned_frontier) as string[]) : [],
  );
  const leaves: Buffer[] = [];
  for (let after = prefix.count; after < size; ) {
    const rows = await db
      .selectFrom('audit_events')
      .select(['seq', 'body', 'hash'])
      .where('partition', '=', partition)
      .where('seq', '>', after)
      .where('seq', '<=', size)
      .orderBy('seq')
      .limit(5000)
      .execute();
    if (rows.length === 0) break;
    for (const r of rows) leaves.push(eventLeafHash(r.body as string, r.hash as string));
    after = Number((rows.at(-1) as { seq: number }).seq);
  }
  if (prefix.count + leaves.length !== size) {
    throw new ConflictError('the partition has a gap; run audit verify', { code: 'ERR_AUDIT_CORRUPT' });
  }
  const tree = new PartialTree(prefix, leaves);
  return {
    event: decodeEventRow(row as { body: string; prev_hash: string; hash: string }),
    leaf_index: seq - 1,
    tree_size: size,
    inclusion_path: tree.inclusionProof(seq - 1).map((h) => h.toString('base64')),
    checkpoint: cp.note as string,
  };
}

/**
 * Checks an inclusion proof offline with the trusted public key: the checkpoint is signed by it
 * for the event's partition, the event's chain hash matches its content, and the audit path leads
 * from the event's leaf to the signed root.
 */
export function verifyInclusionProof(proof: InclusionProof, publicKey: NoteVerifier | string): boolean {
  const verifier = typeof publicKey === 'string' ? parseNoteVerifier(publicKey) : publicKey;
  const text = openNote(proof.checkpoint, verifier);
  const cp = text === undefined ? undefined : parseCheckpointText(text);
  if (!cp || cp.origin !== checkpointOrigin(proof.event.partition) || cp.size !== proof.tree_size)
    return false;
  if (proof.leaf_index !== proof.event.seq - 1) return false;
  const { prev_hash, hash, ...body } = proof.event;
  const bodyText = canonicalJson(body);
  if (chainHash(prev_hash, bodyText) !== hash) return false;
  return verifyInclusion(
    proof.leaf_index,
    proof.tree_size,
    eventLeafHash(bodyText, hash),
    proof.inclusion_path.map((p) => Buffer.from(p, 'base64')),
    cp.root,
  );
}
