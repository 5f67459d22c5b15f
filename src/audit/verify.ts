import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Kysely } from 'kysely';
import { InvalidRequestError } from '../core/index.ts';
import { chainHash, checkpointOrigin, GENESIS_HASH } from './auditor.ts';
import { canonicalJson } from './canonical.ts';
import type { AuditEvent } from './event.ts';
import { type AuditEventBody, type EventIndexColumns, indexColumns } from './event-row.ts';
import { EXPORT_FORMAT } from './export-file.ts';
import { eventLeafHash, Frontier } from './merkle.ts';
import { type NoteVerifier, openNote, parseCheckpointText, parseNoteVerifier } from './signed-note.ts';

/** The first thing found wrong in a partition. */
export interface VerifyProblem {
  partition: string;
  /** The sequence number of the first bad (or missing) event. */
  seq: number;
  /** Its id, when the event is present. */
  id?: string | undefined;
  /** What is wrong, for a person. */
  problem: string;
}

export interface PartitionReport {
  partition: string;
  /** Events checked (chain, hash, Merkle leaf). */
  events: number;
  first_seq: number | null;
  last_seq: number | null;
  /** Events removed by retention (covered by the frontier and a signed checkpoint). */
  pruned_seq: number;
  /** Checkpoints whose signature and Merkle root were checked. */
  checkpoints: number;
  /** The largest verified checkpoint; events after it are chained but not yet signed. */
  signed_through: number;
  problem?: VerifyProblem | undefined;
}

export interface VerifyReport {
  ok: boolean;
  events: number;
  checkpoints: number;
  partitions: PartitionReport[];
  /** The first problem found (first partition, in name order, with a problem). */
  first_problem?: VerifyProblem | undefined;
}

/**
 * A time range (epoch ms, inclusive). Only problems concerning events in the range are reported.
 * On a database the verifier also reads only the range: it starts from the last signed checkpoint
 * before `from` (its stored frontier, checked against its signed root) and stops at the first
 * checkpoint after `to`, so every event in the range is still proven by a signed root. A file is
 * always read whole.
 */
export interface VerifyOptions {
  from?: number | undefined;
  to?: number | undefined;
}

/** One event as a source hands it to the verifier. */
interface SourceEvent {
  /** The sequence number the storage files it under (row key / line order). */
  seq: number;
  /** The canonical body text the chain hash covers. */
  bodyText: string;
  body: AuditEventBody;
  prev_hash: string;
  hash: string;
  /** Stored copies of body fields (database only). */
  columns?: EventIndexColumns & { partition: string };
}

interface SourceCheckpoint {
  size: number;
  note: string;
}

interface PartitionStart {
  partition: string;
  prunedSeq: number;
  prunedFrontier: string[];
  checkpoints: SourceCheckpoint[];
  /**
   * Range verification: start after this event, from the stored frontier of the signed
   * checkpoint of that size (checked against its signed root before anything else).
   */
  resume?: { seq: number; frontier: string[] } | undefined;
}

/**
 * Checks one partition, fed its events in order. All checks are local and streaming:
 * - sequence continuity (no gap, nothing out of order), body and stored columns agree;
 * - `prev_hash` equals the predecessor's hash; `hash = SHA-256(prev_hash || canonical body)`;
 * - every checkpoint is signed by the trusted key, names this partition's origin, and its root
 *   equals the RFC 9162 root recomputed over the events (plus the retention frontier);
 * - after retention: the first event follows the frontier and an `audit.retention` event declares
 *   exactly the removed range; no checkpoint claims more events than exist.
 */
class PartitionVerifier {
  readonly report: PartitionReport;
  readonly #options: VerifyOptions;
  readonly #pending: { size: number; root: Buffer }[] = [];
  #frontier: Frontier;
  #expected: number;
  #prev: string | undefined;
  #lastTime: number | undefined;
  #goodThrough: { seq: number; nextId: string | undefined };
  #declaredPrune = 0;
  #resumed: boolean;
  #done = false;

  constructor(start: PartitionStart, verifier: NoteVerifier, options: VerifyOptions) {
    this.#options = options;
    this.report = {
      partition: start.partition,
      events: 0,
      first_seq: null,
      last_seq: null,
      pruned_seq: start.prunedSeq,
      checkpoints: 0,
      signed_through: 0,
    };
    const base = start.resume?.seq ?? start.prunedSeq;
    this.#resumed = start.resume !== undefined;
    this.#expected = base + 1;
    this.#prev = base === 0 ? GENESIS_HASH : undefined;
    this.#goodThrough = { seq: base, nextId: undefined };
    try {
      this.#frontier = Frontier.from(base, start.resume?.frontier ?? start.prunedFrontier);
    } catch {
      this.#frontier = new Frontier();
      this.#fail(base + 1, undefined, 'the stored Merkle frontier is malformed', undefined);
      return;
    }
    const origin = checkpointOrigin(start.partition);
    for (const cp of [...start.checkpoints].sort((a, b) => a.size - b.size)) {
      const text = openNote(cp.note, verifier);
      const body = text === undefined ? undefined : parseCheckpointText(text);
      if (!body || body.origin !== origin || body.size !== cp.size) {
        this.#fail(
          cp.size,
          undefined,
          body
            ? `checkpoint at size ${cp.size} names another log or size`
            : `checkpoint at size ${cp.size} is not validly signed by ${verifier.text}`,
          undefined,
        );
        return;
      }
      if (cp.size < base) {
        // Before the retention point: its signature is all that can still be checked.
        this.report.checkpoints++;
        continue;
      }
      this.#pending.push({ size: cp.size, root: body.root });
    }
    this.#checkpointsAt(base);
  }

  get done(): boolean {
    return this.#done;
  }

  #fail(seq: number, id: string | undefined, problem: string, time: number | undefined): void {
    if (this.#done) return;
    this.#done = true;
    const t = time ?? this.#lastTime;
    if (t !== undefined) {
      if (this.#options.from !== undefined && t < this.#options.from) return;
      if (this.#options.to !== undefined && t > this.#options.to) return;
    }
    this.report.problem = { partition: this.report.partition, seq, id, problem };
  }

  #checkpointsAt(size: number): void {
    while (this.#pending.length > 0 && (this.#pending[0] as { size: number }).size === size) {
      const cp = this.#pending.shift() as { size: number; root: Buffer };
      if (!this.#frontier.root().equals(cp.root)) {
        if (size === this.#goodThrough.seq && this.report.events === 0) {
          this.#fail(
            size + 1,
            undefined,
            `the stored frontier at ${size} does not match its signed checkpoint`,
            undefined,
          );
          return;
        }
        // Every event passed its own checks, so the chain was rewritten consistently after the
        // last good checkpoint: the first event after it is the first one not proven genuine.
        this.#fail(
          this.#goodThrough.seq + 1,
          this.#goodThrough.nextId,
          `the events ${this.#goodThrough.seq + 1}…${size} do not match the signed checkpoint at size ${size} (rewritten)`,
          undefined,
        );
        return;
      }
      this.report.checkpoints++;
      this.report.signed_through = size;
      this.#goodThrough = { seq: size, nextId: undefined };
    }
  }

  feed(e: SourceEvent): void {
    if (this.#done) return;
    const body = e.body;
    const id = typeof body.id === 'string' ? body.id : undefined;
    this.#lastTime = typeof body.time === 'number' ? body.time : this.#lastTime;
    if (e.seq !== this.#expected) {
      this.#fail(
        this.#expected,
        e.seq > this.#expected ? undefined : id,
        e.seq > this.#expected
          ? `event ${this.#expected} is missing (the next stored event is ${e.seq})`
          : `event ${e.seq} is out of order (expected ${this.#expected})`,
        body.time,
      );
      return;
    }
    if (body.seq !== e.seq || body.partition !== this.report.partition) {
      this.#fail(e.seq, id, `the event body claims partition ${body.partition} seq ${body.seq}`, body.time);
      return;
    }
    if (e.columns) {
      let cols: EventIndexColumns;
      try {
        cols = indexColumns(body);
      } catch {
        this.#fail(e.seq, id, 'the event body is malformed', body.time);
        return;
      }
      for (const [k, v] of Object.entries(cols)) {
        if ((e.columns as unknown as Record<string, unknown>)[k] !== v) {
          this.#fail(e.seq, id, `the stored column ${k} does not match the event body`, body.time);
          return;
        }
      }
    }
    if (!HEX64.test(e.prev_hash) || !HEX64.test(e.hash)) {
      this.#fail(e.seq, id, 'the event hash or prev_hash is malformed', body.time);
      return;
    }
    if (this.#prev !== undefined && e.prev_hash !== this.#prev) {
      this.#fail(e.seq, id, `prev_hash does not match the hash of event ${e.seq - 1}`, body.time);
      return;
    }
    if (chainHash(e.prev_hash, e.bodyText) !== e.hash) {
      this.#fail(e.seq, id, 'the event hash does not match its content (altered)', body.time);
      return;
    }
    if (body.type === 'audit.retention') {
      const to = (body.details as { pruned_to_seq?: unknown } | undefined)?.pruned_to_seq;
      if (typeof to === 'number') this.#declaredPrune = to;
    }
    if (this.#goodThrough.nextId === undefined && e.seq === this.#goodThrough.seq + 1) {
      this.#goodThrough.nextId = id;
    }
    this.#frontier.push(eventLeafHash(e.bodyText, e.hash));
    this.#prev = e.hash;
    this.#expected++;
    this.report.events++;
    this.report.first_seq ??= e.seq;
    this.report.last_seq = e.seq;
    this.#checkpointsAt(e.seq);
  }

  finish(): void {
    if (this.#done) return;
    const last = this.#expected - 1;
    const over = this.#pending[0];
    if (over) {
      this.#fail(
        last + 1,
        undefined,
        `events ${last + 1}…${over.size} are missing: a signed checkpoint covers ${over.size} events, the ledger ends at ${last}`,
        undefined,
      );
      return;
    }
    if (!this.#resumed && this.report.pruned_seq > 0 && this.#declaredPrune !== this.report.pruned_seq) {
      this.#fail(
        this.report.pruned_seq + 1,
        undefined,
        `events up to ${this.report.pruned_seq} were removed without an audit.retention event declaring it`,
        undefined,
      );
    }
  }
}

async function run(
  partitions: AsyncIterable<{ start: PartitionStart; events: AsyncIterable<SourceEvent[]> }>,
  verifier: NoteVerifier,
  options: VerifyOptions,
): Promise<VerifyReport> {
  const reports: PartitionReport[] = [];
  for await (const { start, events } of partitions) {
    const pv = new PartitionVerifier(start, verifier, options);
    for await (const page of events) {
      for (const e of page) {
        pv.feed(e);
        if (pv.done) break;
      }
      if (pv.done) break;
    }
    pv.finish();
    reports.push(pv.report);
  }
  reports.sort((a, b) => (a.partition < b.partition ? -1 : a.partition > b.partition ? 1 : 0));
  const first = reports.find((r) => r.problem)?.problem;
  return {
    ok: first === undefined,
    events: reports.reduce((n, r) => n + r.events, 0),
    checkpoints: reports.reduce((n, r) => n + r.checkpoints, 0),
    partitions: reports,
    first_problem: first,
  };
}

function toVerifier(key: NoteVerifier | string): NoteVerifier {
  return typeof key === 'string' ? parseNoteVerifier(key) : key;
}

function parseBody(text: string): AuditEventBody {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as AuditEventBody;
  } catch {
    // reported below as a malformed body
  }
  return { seq: Number.NaN, partition: '', id: '', time: Number.NaN } as unknown as AuditEventBody;
}

const PAGE = 5000;
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Verifies the ledger in a live database with the trusted public key (a C2SP verifier key).
 * Never trusts the key stored in the database it checks.
 */
export async function verifyLedger(
  db: Kysely<any>,
  publicKey: NoteVerifier | string,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const verifier = toVerifier(publicKey);
  const names = new Set<string>();
  for (const t of ['audit_events', 'audit_partitions', 'audit_checkpoints']) {
    const rows = await db.selectFrom(t).select('partition').distinct().execute();
    for (const r of rows) names.add(r.partition as string);
  }
  async function* partitions() {
    for (const partition of [...names].sort()) {
      const part = await db
        .selectFrom('audit_partitions')
        .select(['pruned_seq', 'pruned_frontier'])
        .where('partition', '=', partition)
        .executeTakeFirst();
      const allCheckpoints = (
        await db
          .selectFrom('audit_checkpoints')
          .select(['size', 'note', 'frontier'])
          .where('partition', '=', partition)
          .orderBy('size')
          .execute()
      ).map((c) => ({ size: Number(c.size), note: c.note as string, frontier: c.frontier as string }));
      const prunedSeq = Number(part?.pruned_seq ?? 0);
      let resume: PartitionStart['resume'];
      let endSeq = Number.POSITIVE_INFINITY;
      if (options.from !== undefined) {
        const first = await db
          .selectFrom('audit_events')
          .select((eb) => eb.fn.min('seq').as('seq'))
          .where('partition', '=', partition)
          .where('time', '>=', options.from)
          .executeTakeFirst();
        const firstSeq = first?.seq == null ? undefined : Number(first.seq);
        const before = allCheckpoints
          .filter((c) => c.size > prunedSeq && (firstSeq === undefined || c.size < firstSeq))
          .at(-1);
        if (before) {
          try {
            resume = { seq: before.size, frontier: JSON.parse(before.frontier) as string[] };
          } catch {
            resume = { seq: before.size, frontier: [] };
          }
        }
      }
      if (options.to !== undefined) {
        const last = await db
          .selectFrom('audit_events')
          .select((eb) => eb.fn.max('seq').as('seq'))
          .where('partition', '=', partition)
          .where('time', '<=', options.to)
          .executeTakeFirst();
        const lastSeq = last?.seq == null ? 0 : Number(last.seq);
        const after = allCheckpoints.find((c) => c.size >= lastSeq && c.size > (resume?.seq ?? prunedSeq));
        if (after) endSeq = after.size;
      }
      const start: PartitionStart = {
        partition,
        prunedSeq,
        prunedFrontier: part ? (JSON.parse(part.pruned_frontier) as string[]) : [],
        checkpoints: allCheckpoints
          .filter((c) => c.size <= endSeq)
          .map((c) => ({ size: c.size, note: c.note })),
        resume,
      };
      async function* events(): AsyncGenerator<SourceEvent[]> {
        let after = resume ? resume.seq : -1;
        for (;;) {
          const rows = await db
            .selectFrom('audit_events')
            .selectAll()
            .where('partition', '=', partition)
            .where('seq', '>', after)
            .where('seq', '<=', Number.isFinite(endSeq) ? endSeq : Number.MAX_SAFE_INTEGER)
            .orderBy('seq')
            .limit(PAGE)
            .execute();
          yield rows.map((r) => ({
            seq: Number(r.seq),
            bodyText: r.body as string,
            body: parseBody(r.body as string),
            prev_hash: r.prev_hash as string,
            hash: r.hash as string,
            columns: {
              partition: r.partition as string,
              id: r.id as string,
              time: Number(r.time),
              type: r.type as string,
              actor_type: r.actor_type as string,
              actor_id: r.actor_id as string,
              user_id: (r.user_id as string | null) ?? null,
              agent_id: (r.agent_id as string | null) ?? null,
              outcome: r.outcome as string,
            },
          }));
          if (rows.length < PAGE) return;
          after = Number((rows.at(-1) as { seq: number }).seq);
        }
      }
      yield { start, events: events() };
    }
  }
  return run(partitions(), verifier, options);
}

/**
 * Verifies an exported ledger file (see {@link exportLedger} for the format) offline, with only
 * the trusted public key.
 * @throws InvalidRequestError when the file is not a Warden ledger export.
 */
export async function verifyLedgerFile(
  path: string,
  publicKey: NoteVerifier | string,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const verifier = toVerifier(publicKey);
  const lines = createInterface({
    input: createReadStream(path, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  const it = lines[Symbol.asyncIterator]();
  let lineNo = 0;
  const malformed = (why: string) =>
    new InvalidRequestError(`line ${lineNo} of the ledger file: ${why}`, { code: 'ERR_AUDIT_FILE' });
  const next = async (): Promise<Record<string, any> | undefined> => {
    for (;;) {
      const r = await it.next();
      if (r.done) return undefined;
      lineNo++;
      if (r.value.trim() === '') continue;
      try {
        return JSON.parse(r.value) as Record<string, any>;
      } catch {
        throw malformed('not JSON');
      }
    }
  };
  const header = await next();
  if (header?.format !== EXPORT_FORMAT)
    throw malformed(`the first line must be {"format":"${EXPORT_FORMAT}",…}`);
  let lookahead = await next();
  async function* partitions() {
    while (lookahead) {
      const p = lookahead.partition;
      if (!p || typeof p !== 'object' || typeof p.name !== 'string')
        throw malformed('expected a partition line');
      const start: PartitionStart = {
        partition: p.name,
        prunedSeq: Number(p.pruned_seq ?? 0),
        prunedFrontier: Array.isArray(p.pruned_frontier) ? p.pruned_frontier : [],
        checkpoints: [],
      };
      lookahead = await next();
      while (lookahead?.checkpoint) {
        const c = lookahead.checkpoint as { partition?: unknown; size?: unknown; note?: unknown };
        if (c.partition !== start.partition || typeof c.size !== 'number' || typeof c.note !== 'string') {
          throw malformed('a checkpoint line needs partition, size and note');
        }
        start.checkpoints.push({ size: c.size, note: c.note });
        lookahead = await next();
      }
      async function* events(): AsyncGenerator<SourceEvent[]> {
        let position = start.prunedSeq;
        while (lookahead?.event) {
          const { prev_hash, hash, ...body } = lookahead.event as AuditEvent;
          position++;
          const bodyText = canonicalJson(body);
          // A line's place in the file is its sequence: dropped or swapped lines show up as gaps.
          yield [
            {
              seq: typeof body.seq === 'number' && body.seq > position ? body.seq : position,
              bodyText,
              body,
              prev_hash: String(prev_hash),
              hash: String(hash),
            },
          ];
          if (typeof body.seq === 'number' && body.seq > position) position = body.seq;
          lookahead = await next();
        }
      }
      const evs = events();
      yield { start, events: evs };
      // Skip whatever the verifier did not read after stopping at a problem.
      while (lookahead?.event) lookahead = await next();
    }
  }
  try {
    return await run(partitions(), verifier, options);
  } finally {
    lines.close();
  }
}
