import { type Kysely, sql } from 'kysely';
import { z } from 'zod';
import {
  type Clock,
  ConfigError,
  ConflictError,
  InvalidRequestError,
  type Keyring,
  type Logger,
  UnavailableError,
  uuidv7,
} from '../core/index.ts';
import type { Store } from '../store/index.ts';
import { canonicalJson } from './canonical.ts';
import { isAuditEventType } from './catalogue.ts';
import type { AuditEvent, AuditEventInput } from './event.ts';
import { type AuditEventBody, indexColumns } from './event-row.ts';
import { LEDGER_KEY_NAME, type LedgerKey, loadOrCreateLedgerKey } from './ledger-key.ts';
import { eventLeafHash, Frontier, sha256HexThenText } from './merkle.ts';
import { redact } from './redact.ts';
import { checkpointText, type NoteVerifier, signNote } from './signed-note.ts';

/** The hash that precedes the first event of every partition. */
export const GENESIS_HASH = '0'.repeat(64);

/** Rows per INSERT statement: well under SQLite's and PostgreSQL's bound-parameter limits. */
const INSERT_CHUNK = 500;

export interface AuditorOptions {
  store: Store;
  /** This writer's partition (its node id). Only one live writer may own a partition. */
  partition: string;
  clock: Clock;
  logger: Logger;
  /** `closed`: a failed write fails the action. `open`: the action proceeds and the failure is logged. */
  failMode: 'closed' | 'open';
  /**
   * The master keyring that seals the ledger signing key. Without it the ledger keeps its hash
   * chain but writes no signed checkpoints (and cannot run retention); the server always passes it.
   */
  keyring?: Keyring | undefined;
  /** Seconds between signed checkpoints (config `audit.checkpointIntervalSeconds`); 0: only on close. */
  checkpointIntervalSeconds?: number | undefined;
  /** How long a partition lease lasts without renewal; a crashed node's partition frees after it. */
  leaseSeconds?: number | undefined;
  /** Most units (events or `transact` calls) in one database transaction. */
  maxBatch?: number | undefined;
  /**
   * Group commit delay (config `audit.commitDelayMs`): while writers are concurrent (one of the
   * last two batches held more than one unit, or units arrived while one was written), a batch waits this long
   * for more units before it commits, so
   * one durable commit (an fsync on the event loop, with SQLite) serves many more of them. A lone
   * writer never waits. 0: commit after one event-loop turn.
   */
  commitDelayMs?: number | undefined;
  /**
   * Retention policy (config `audit.retentionDays`): when set, the retention job runs hourly and
   * at open, removing this partition's events older than this many days. Unset: events are kept.
   */
  retentionDays?: number | undefined;
  /**
   * The highest seq of a partition that every consumer of the ledger (the SIEM exporters) has
   * confirmed. Retention never removes an event after it, so an export that is behind or down
   * loses nothing; until the consumers are known it should answer 0 (hold everything).
   */
  retentionHold?: ((partition: string) => Promise<number>) | undefined;
}

const optionsSchema = z.object({
  partition: z.string().regex(/^[a-zA-Z0-9._-]{1,64}$/, 'letters, digits, . _ - only, at most 64'),
  failMode: z.enum(['closed', 'open']),
  checkpointIntervalSeconds: z.number().int().min(0).max(86_400).default(60),
  leaseSeconds: z.number().min(0.1).max(3600).default(30),
  maxBatch: z.number().int().min(1).max(10_000).default(2048),
  commitDelayMs: z.number().int().min(0).max(100).default(0),
  retentionDays: z.number().int().min(1).max(36_500).optional(),
});

/** A signed checkpoint as stored. */
export interface CheckpointRecord {
  partition: string;
  /** Tree size: the number of events of the partition it covers (seq 1 … size). */
  size: number;
  time: number;
  /** RFC 9162 root, hex. */
  root_hash: string;
  /** The C2SP signed note. */
  note: string;
}

/** What a retention run did. */
export interface RetentionResult {
  partition: string;
  /** Events removed by this run. */
  removed: number;
  /** Set when the retention hold kept events the age cutoff would have removed: the seq it held at. */
  held_at?: number | undefined;
  /** Every event with `seq ≤ pruned_seq` has been removed. */
  pruned_seq: number;
  /** The signed checkpoint written before anything was removed. */
  checkpoint: CheckpointRecord | undefined;
}

/** The part of an event that is hashed: everything but the chain fields themselves. */
export function eventBody(event: AuditEvent): AuditEventBody {
  const { hash: _h, prev_hash: _p, ...body } = event;
  return body;
}

/** SHA-256 over the predecessor's hash (32 bytes) and the canonical encoding of the event body. */
export function chainHash(prevHash: string, body: AuditEventBody | string): string {
  return sha256HexThenText(prevHash, typeof body === 'string' ? body : canonicalJson(body));
}

/** The C2SP checkpoint origin of a partition's tree. */
export function checkpointOrigin(partition: string): string {
  return `${LEDGER_KEY_NAME}/${partition}`;
}

type EventRow = Record<string, unknown>;
type Built = { event: AuditEvent; row: EventRow };

interface RecordUnit {
  kind: 'record';
  input: AuditEventInput;
  resolve: (e: AuditEvent | undefined) => void;
  reject: (e: unknown) => void;
  event?: AuditEvent;
}
interface TransactUnit {
  kind: 'transact';
  fn: (tx: Kysely<any>) => Promise<unknown>;
  toEvent: (result: any) => AuditEventInput;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  result?: unknown;
}
type Unit = RecordUnit | TransactUnit;

/**
 * The one way every part records what happened. Events are redacted, chained to their
 * predecessor in this node's partition, and durable before `record()` resolves.
 *
 * Group commit: calls arriving while a batch is being written queue up and go into the next
 * batch, one database transaction for all of them. Each `transact` unit runs inside its own
 * SAVEPOINT, so a unit that throws is rolled back alone and only its caller sees the error.
 *
 * Ownership: the writer holds a lease row on its partition and renews it inside every batch
 * transaction (a writer that lost its lease cannot append), so two nodes never share a chain.
 *
 * Fail mode when the ledger cannot be written: `closed` (default) rejects `record` and `transact`
 * with `ERR_AUDIT_UNAVAILABLE` (for `transact` the change is rolled back too). `open` logs the
 * failure; `record` resolves `undefined`, and `transact` re-runs `fn` in a transaction of its own,
 * so the change commits WITHOUT its audit event (`fn` must therefore be safe to run again).
 */
export class Auditor {
  readonly partition: string;
  readonly failMode: 'closed' | 'open';
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #keyring: Keyring | undefined;
  readonly #intervalMs: number;
  readonly #leaseMs: number;
  readonly #maxBatch: number;
  readonly #commitDelayMs: number;
  /** Sizes of the last two batches: either above one means writers are concurrent. */
  #lastBatches: [number, number] = [0, 0];
  readonly #retentionMs: number | undefined;
  readonly #retentionHold: ((partition: string) => Promise<number>) | undefined;
  readonly #owner = uuidv7();
  #key: LedgerKey | undefined;
  #head: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH };
  #frontier = new Frontier();
  #pruned = { seq: 0, frontier: [] as string[] };
  #lastCheckpoint = 0;
  #stale = false;
  #closed = false;
  #queue: Unit[] = [];
  #jobs: (() => Promise<void>)[] = [];
  #running: Promise<void> | undefined;
  #checkpointTimer: NodeJS.Timeout | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;

  private constructor(options: AuditorOptions, parsed: z.infer<typeof optionsSchema>) {
    this.partition = parsed.partition;
    this.failMode = parsed.failMode;
    this.#store = options.store;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#keyring = options.keyring;
    this.#intervalMs = parsed.checkpointIntervalSeconds * 1000;
    this.#leaseMs = Math.round(parsed.leaseSeconds * 1000);
    this.#maxBatch = parsed.maxBatch;
    this.#commitDelayMs = parsed.commitDelayMs;
    this.#retentionMs = parsed.retentionDays === undefined ? undefined : parsed.retentionDays * 86_400_000;
    this.#retentionHold = options.retentionHold;
  }

  /**
   * Opens the writer for a partition: takes the partition lease, loads (or creates) the ledger
   * key, and resumes the chain from the last stored event.
   * @throws ConflictError `ERR_AUDIT_PARTITION_OWNED` while another live writer holds the lease.
   */
  static async open(options: AuditorOptions): Promise<Auditor> {
    const parsed = optionsSchema.safeParse({
      partition: options.partition,
      failMode: options.failMode,
      checkpointIntervalSeconds: options.checkpointIntervalSeconds,
      leaseSeconds: options.leaseSeconds,
      maxBatch: options.maxBatch,
      commitDelayMs: options.commitDelayMs,
      retentionDays: options.retentionDays,
    });
    if (options.retentionDays !== undefined && !options.keyring) {
      throw new ConfigError(
        'audit retention needs the keyring: removed events must be covered by a signed checkpoint',
      );
    }
    if (!parsed.success) {
      throw new ConfigError(
        `invalid auditor options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    const auditor = new Auditor(options, parsed.data);
    await auditor.#acquireLease();
    if (auditor.#keyring) {
      auditor.#key = await loadOrCreateLedgerKey(options.store.db, auditor.#keyring, options.clock.now());
    }
    await auditor.#loadState();
    auditor.#startTimers();
    return auditor;
  }

  /** The C2SP verifier key of the ledger signing key (undefined without a keyring). */
  get verifier(): NoteVerifier | undefined {
    return this.#key?.verifier;
  }

  /** The last event appended (seq 0 and the genesis hash for an empty partition). */
  get head(): { seq: number; hash: string } {
    return { ...this.#head };
  }

  /** Records one event; resolves once it is durable. */
  record(input: AuditEventInput): Promise<AuditEvent | undefined> {
    if (!isAuditEventType(input.type)) {
      return Promise.reject(
        new InvalidRequestError(`unknown audit event type ${JSON.stringify(input.type)}`, {
          code: 'ERR_AUDIT_EVENT_TYPE',
        }),
      );
    }
    return new Promise<AuditEvent | undefined>((resolve, reject) => {
      const unit: RecordUnit = { kind: 'record', input, resolve, reject };
      if (this.#closed) this.#unitFailed(unit, new Error('the auditor is closed'));
      else this.#enqueue(unit);
    });
  }

  /**
   * Runs `fn` and records the event describing its result in the same transaction: the change and
   * its audit event are written together or not at all. `fn` runs inside the batch transaction
   * (in its own savepoint): it must not call this auditor itself.
   */
  transact<T>(fn: (tx: Kysely<any>) => Promise<T>, toEvent: (result: T) => AuditEventInput): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const unit: TransactUnit = {
        kind: 'transact',
        fn,
        toEvent,
        resolve: resolve as (v: unknown) => void,
        reject,
      };
      if (this.#closed) this.#unitFailed(unit, new Error('the auditor is closed'));
      else this.#enqueue(unit);
    });
  }

  /** Writes a signed checkpoint of the partition now (if anything was appended since the last). */
  checkpoint(): Promise<CheckpointRecord | undefined> {
    return this.#job(() => this.#writeCheckpoint());
  }

  /**
   * The retention job: removes this partition's events older than `maxAgeMs`. It first writes a
   * signed checkpoint covering everything up to the head, then, in one transaction, deletes the
   * events, keeps the Merkle frontier of what it removed (so later roots still verify) and
   * appends an `audit.retention` event naming the new start of the chain.
   */
  applyRetention(policy: { maxAgeMs: number }): Promise<RetentionResult> {
    if (!Number.isFinite(policy.maxAgeMs) || policy.maxAgeMs < 0) {
      return Promise.reject(new InvalidRequestError('retention maxAgeMs must be a non-negative number'));
    }
    return this.#job(() => this.#retain(policy.maxAgeMs));
  }

  /** Drains pending appends, writes a final checkpoint and releases the partition lease. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#checkpointTimer) clearInterval(this.#checkpointTimer);
    if (this.#leaseTimer) clearInterval(this.#leaseTimer);
    if (this.#retentionTimer) clearInterval(this.#retentionTimer);
    await this.#running;
    try {
      if (this.#key) await this.#job(() => this.#writeCheckpoint());
    } catch (e) {
      this.#logger.error({ err: { message: (e as Error).message } }, 'final audit checkpoint failed');
    }
    await this.#store.db
      .updateTable('audit_partitions')
      .set({ lease_until: 0 })
      .where('partition', '=', this.partition)
      .where('owner', '=', this.#owner)
      .execute()
      .catch(() => {});
  }

  // ----- lease and state -----

  async #acquireLease(): Promise<void> {
    const now = this.#clock.now();
    await this.#store.db
      .insertInto('audit_partitions')
      .values({ partition: this.partition, owner: this.#owner, lease_until: now + this.#leaseMs })
      .onConflict((oc) =>
        oc
          .column('partition')
          .doUpdateSet({ owner: this.#owner, lease_until: now + this.#leaseMs })
          .where('audit_partitions.lease_until', '<', now),
      )
      .execute();
    const row = await this.#store.db
      .selectFrom('audit_partitions')
      .select(['owner', 'pruned_seq', 'pruned_frontier'])
      .where('partition', '=', this.partition)
      .executeTakeFirstOrThrow();
    if (row.owner !== this.#owner) {
      throw new ConflictError(`audit partition ${this.partition} is owned by another live writer`, {
        code: 'ERR_AUDIT_PARTITION_OWNED',
      });
    }
  }

  async #renewLease(tx: Kysely<any>): Promise<void> {
    const r = await tx
      .updateTable('audit_partitions')
      .set({ lease_until: this.#clock.now() + this.#leaseMs })
      .where('partition', '=', this.partition)
      .where('owner', '=', this.#owner)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) {
      throw new ConflictError(`lost the lease on audit partition ${this.partition}`, {
        code: 'ERR_AUDIT_PARTITION_OWNED',
      });
    }
  }

  /** Loads head, retention state and Merkle frontier (from the last checkpoint, then replay). */
  async #loadState(): Promise<void> {
    const db = this.#store.db;
    const part = await db
      .selectFrom('audit_partitions')
      .select(['pruned_seq', 'pruned_frontier'])
      .where('partition', '=', this.partition)
      .executeTakeFirstOrThrow();
    const pruned = { seq: Number(part.pruned_seq), frontier: JSON.parse(part.pruned_frontier) as string[] };
    const cp = await db
      .selectFrom('audit_checkpoints')
      .select(['size', 'frontier'])
      .where('partition', '=', this.partition)
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst();
    const last = await db
      .selectFrom('audit_events')
      .select(['seq', 'hash'])
      .where('partition', '=', this.partition)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    const head = last ? { seq: Number(last.seq), hash: last.hash as string } : { seq: 0, hash: GENESIS_HASH };
    if (cp && Number(cp.size) > head.seq) {
      // Events a signed checkpoint covers are gone (truncated): appending would re-use their
      // sequence numbers. Refuse to write until an operator has looked (`warden audit verify`).
      throw new UnavailableError(
        `audit partition ${this.partition} ends at ${head.seq} but a signed checkpoint covers ${cp.size} events`,
        { code: 'ERR_AUDIT_CORRUPT' },
      );
    }
    const frontier =
      cp && Number(cp.size) >= pruned.seq
        ? Frontier.from(Number(cp.size), JSON.parse(cp.frontier) as string[])
        : Frontier.from(pruned.seq, pruned.frontier);
    for (let after = frontier.count; after < head.seq; ) {
      const rows = await db
        .selectFrom('audit_events')
        .select(['seq', 'body', 'hash'])
        .where('partition', '=', this.partition)
        .where('seq', '>', after)
        .orderBy('seq')
        .limit(5000)
        .execute();
      if (rows.length === 0) break;
      for (const r of rows) {
        if (Number(r.seq) !== frontier.count + 1) {
          // A gap: the tree cannot be extended honestly. Rebuilding it is the verifier's job;
          // new checkpoints would sign a wrong tree, so the writer refuses to continue.
          throw new UnavailableError(`audit partition ${this.partition} has a gap before seq ${r.seq}`, {
            code: 'ERR_AUDIT_CORRUPT',
          });
        }
        frontier.push(eventLeafHash(r.body as string, r.hash as string));
      }
      after = Number((rows.at(-1) as { seq: number }).seq);
    }
    if (frontier.count !== head.seq) {
      throw new UnavailableError(`audit partition ${this.partition} could not be read up to its head`, {
        code: 'ERR_AUDIT_CORRUPT',
      });
    }
    this.#pruned = pruned;
    this.#head = head;
    this.#frontier = frontier;
    this.#lastCheckpoint = cp ? Number(cp.size) : 0;
  }

  #startTimers(): void {
    if (this.#key && this.#intervalMs > 0) {
      this.#checkpointTimer = setInterval(() => {
        if (this.#head.seq > this.#lastCheckpoint) {
          this.checkpoint().catch((e) =>
            this.#logger.error({ err: { message: (e as Error).message } }, 'audit checkpoint failed'),
          );
        }
      }, this.#intervalMs);
      this.#checkpointTimer.unref();
    }
    this.#leaseTimer = setInterval(
      () => {
        this.#renewLease(this.#store.db).catch((e) =>
          this.#logger.error(
            { err: { message: (e as Error).message } },
            'audit partition lease renewal failed',
          ),
        );
      },
      Math.max(50, Math.floor(this.#leaseMs / 3)),
    );
    this.#leaseTimer.unref();
    const retentionMs = this.#retentionMs;
    if (retentionMs !== undefined) {
      const retain = () => {
        this.applyRetention({ maxAgeMs: retentionMs }).catch((e) =>
          this.#logger.error({ err: { message: (e as Error).message } }, 'audit retention failed'),
        );
      };
      queueMicrotask(retain);
      this.#retentionTimer = setInterval(retain, 3_600_000);
      this.#retentionTimer.unref();
    }
  }

  // ----- the write loop -----

  #enqueue(unit: Unit): void {
    this.#queue.push(unit);
    this.#kick();
  }

  #job<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#jobs.push(() => work().then(resolve, reject));
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      if (this.#queue.length > 0 || this.#jobs.length > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    // Units that arrived while a batch was being written: writers are concurrent.
    let arrivedMeanwhile = false;
    for (;;) {
      if (this.#queue.length > 0) {
        // Let callers woken by the previous commit enqueue their next unit first, so concurrent
        // writers share one commit instead of trickling in one by one.
        if (this.#queue.length < this.#maxBatch) await new Promise<void>((r) => setImmediate(r));
        const concurrent = arrivedMeanwhile || this.#lastBatches[0] > 1 || this.#lastBatches[1] > 1;
        if (this.#commitDelayMs > 0 && concurrent && this.#queue.length < this.#maxBatch) {
          await new Promise<void>((r) => setTimeout(r, this.#commitDelayMs));
        }
        const batch = this.#queue.splice(0, this.#maxBatch);
        this.#lastBatches = [batch.length, this.#lastBatches[0]];
        await this.#runBatch(batch);
        arrivedMeanwhile = this.#queue.length > 0;
      } else if (this.#jobs.length > 0) {
        await (this.#jobs.shift() as () => Promise<void>)();
      } else {
        return;
      }
    }
  }

  #clean(input: AuditEventInput): AuditEventInput {
    if (!isAuditEventType(input.type)) {
      throw new InvalidRequestError(`unknown audit event type ${JSON.stringify(input.type)}`, {
        code: 'ERR_AUDIT_EVENT_TYPE',
      });
    }
    return redact(input);
  }

  /** Assigns the next sequence number, chains and hashes the event; advances head and frontier. */
  #build(clean: AuditEventInput): Built {
    const seq = this.#head.seq + 1;
    const body: AuditEventBody = {
      ...clean,
      request: { ...clean.request, node: this.partition },
      id: uuidv7(this.#clock),
      time: this.#clock.now(),
      partition: this.partition,
      seq,
    };
    const text = canonicalJson(body);
    const prev = this.#head.hash;
    const hash = chainHash(prev, text);
    this.#frontier.push(eventLeafHash(text, hash));
    this.#head = { seq, hash };
    return {
      event: { ...body, prev_hash: prev, hash },
      row: { partition: this.partition, seq, ...indexColumns(body), body: text, prev_hash: prev, hash },
    };
  }

  #snapshot(): () => void {
    const head = this.#head;
    const frontier = this.#frontier.clone();
    return () => {
      this.#head = head;
      this.#frontier = frontier;
    };
  }

  async #runBatch(units: Unit[]): Promise<void> {
    const own = new Map<Unit, unknown>();
    let restore = this.#snapshot();
    try {
      if (this.#stale) {
        await this.#loadState();
        this.#stale = false;
        restore = this.#snapshot();
      }
      // Redaction and canonical encoding happen before the transaction is opened.
      const cleaned = new Map<RecordUnit, AuditEventInput>();
      for (const u of units) {
        if (u.kind !== 'record') continue;
        try {
          cleaned.set(u, this.#clean(u.input));
        } catch (e) {
          own.set(u, e);
        }
      }
      // Committed without a blocking flush, then flushed off the event loop (below) before any
      // caller hears of it: the event is durable when record()/transact() resolve, and the node
      // keeps serving (and filling the next batch) while the disk flushes.
      await this.#store.withoutSync((db) =>
        db.transaction().execute(async (tx) => {
          await this.#renewLease(tx);
          const rows: EventRow[] = [];
          let n = 0;
          for (const u of units) {
            if (own.has(u)) continue;
            if (u.kind === 'record') {
              const built = this.#build(cleaned.get(u) as AuditEventInput);
              u.event = built.event;
              rows.push(built.row);
              continue;
            }
            const savepoint = `audit_unit_${n++}`;
            await sql.raw(`SAVEPOINT ${savepoint}`).execute(tx);
            const undo = this.#snapshot();
            try {
              const result = await u.fn(tx);
              const built = this.#build(this.#clean(u.toEvent(result)));
              await sql.raw(`RELEASE SAVEPOINT ${savepoint}`).execute(tx);
              u.result = result;
              rows.push(built.row);
            } catch (e) {
              undo();
              own.set(u, e);
              await sql.raw(`ROLLBACK TO SAVEPOINT ${savepoint}`).execute(tx);
              await sql.raw(`RELEASE SAVEPOINT ${savepoint}`).execute(tx);
            }
          }
          for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
            await tx
              .insertInto('audit_events')
              .values(rows.slice(i, i + INSERT_CHUNK))
              .execute();
          }
        }),
      );
    } catch (e) {
      restore();
      // The commit may or may not have reached the database (a lost connection): reload first.
      this.#stale = true;
      for (const u of units) {
        if (own.has(u)) u.reject(own.get(u));
        else this.#unitFailed(u, e);
      }
      return;
    }
    let flushError: unknown;
    try {
      await this.#store.flush();
    } catch (e) {
      flushError = e;
    }
    for (const u of units) {
      if (own.has(u)) u.reject(own.get(u));
      else if (flushError !== undefined) this.#unflushed(u, flushError);
      else if (u.kind === 'record') u.resolve(u.event);
      else u.resolve(u.result);
    }
  }

  /**
   * The batch committed but could not be flushed to disk. Fail closed refuses as for a failed
   * write; fail open accepts (the change is committed: running a transact unit again would apply
   * it twice).
   */
  #unflushed(unit: Unit, error: unknown): void {
    if (this.failMode !== 'open') {
      this.#unitFailed(unit, error);
      return;
    }
    this.#logger.error(
      { err: { message: (error as Error).message }, partition: this.partition },
      'audit events committed but not flushed to disk',
    );
    if (unit.kind === 'record') unit.resolve(unit.event);
    else unit.resolve(unit.result);
  }

  #unitFailed(unit: Unit, error: unknown): void {
    this.#logger.error(
      { err: { message: (error as Error).message }, partition: this.partition, fail_mode: this.failMode },
      'audit event could not be written',
    );
    if (this.failMode === 'open') {
      if (unit.kind === 'record') unit.resolve(undefined);
      else this.#store.transaction(unit.fn).then(unit.resolve, unit.reject);
      return;
    }
    unit.reject(
      new UnavailableError('the audit ledger cannot be written; the action was refused', {
        code: 'ERR_AUDIT_UNAVAILABLE',
        cause: error,
      }),
    );
  }

  // ----- checkpoints and retention -----

  async #writeCheckpoint(): Promise<CheckpointRecord | undefined> {
    const key = this.#key;
    if (!key) return undefined;
    if (this.#stale) {
      await this.#loadState();
      this.#stale = false;
    }
    const size = this.#head.seq;
    if (size === 0 || size === this.#lastCheckpoint) return undefined;
    const root = this.#frontier.root();
    const note = signNote(
      checkpointText({ origin: checkpointOrigin(this.partition), size, root }),
      key.verifier,
      key.privateKey,
    );
    const record: CheckpointRecord = {
      partition: this.partition,
      size,
      time: this.#clock.now(),
      root_hash: root.toString('hex'),
      note,
    };
    await this.#store.db
      .insertInto('audit_checkpoints')
      .values({ ...record, frontier: JSON.stringify(this.#frontier.hashes()) })
      .execute();
    this.#lastCheckpoint = size;
    return record;
  }

  async #retain(maxAgeMs: number): Promise<RetentionResult> {
    if (!this.#key) {
      throw new UnavailableError('retention needs the ledger signing key (no keyring was given)', {
        code: 'ERR_AUDIT_NO_KEY',
      });
    }
    if (this.#stale) {
      await this.#loadState();
      this.#stale = false;
    }
    const db = this.#store.db;
    const cutoff = this.#clock.now() - maxAgeMs;
    const found = await db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.max('seq').as('k'))
      .where('partition', '=', this.partition)
      .where('time', '<', cutoff)
      .executeTakeFirst();
    const due = Number(found?.k ?? 0);
    const hold = this.#retentionHold ? await this.#retentionHold(this.partition) : Number.POSITIVE_INFINITY;
    const k = Math.min(due, hold);
    const held_at = k < due ? k : undefined;
    if (held_at !== undefined) {
      this.#logger.warn(
        { partition: this.partition, due_seq: due, held_at },
        'audit retention held back: an exporter has not confirmed older events yet',
      );
    }
    if (k <= this.#pruned.seq) {
      return {
        partition: this.partition,
        removed: 0,
        pruned_seq: this.#pruned.seq,
        checkpoint: undefined,
        held_at,
      };
    }
    const checkpoint = await this.#writeCheckpoint();
    // The frontier of leaves [0, k): what stays of the removed events in the tree.
    const prefix = Frontier.from(this.#pruned.seq, this.#pruned.frontier);
    for (let after = this.#pruned.seq; after < k; ) {
      const rows = await db
        .selectFrom('audit_events')
        .select(['seq', 'body', 'hash'])
        .where('partition', '=', this.partition)
        .where('seq', '>', after)
        .where('seq', '<=', k)
        .orderBy('seq')
        .limit(5000)
        .execute();
      if (rows.length === 0) break;
      for (const r of rows) {
        if (Number(r.seq) !== prefix.count + 1) {
          throw new UnavailableError(`audit partition ${this.partition} has a gap before seq ${r.seq}`, {
            code: 'ERR_AUDIT_CORRUPT',
          });
        }
        prefix.push(eventLeafHash(r.body as string, r.hash as string));
      }
      after = Number((rows.at(-1) as { seq: number }).seq);
    }
    const restore = this.#snapshot();
    let removed = 0;
    try {
      await this.#store.transaction(async (tx) => {
        await this.#renewLease(tx);
        const del = await tx
          .deleteFrom('audit_events')
          .where('partition', '=', this.partition)
          .where('seq', '<=', k)
          .executeTakeFirst();
        removed = Number(del.numDeletedRows);
        await tx
          .updateTable('audit_partitions')
          .set({ pruned_seq: k, pruned_frontier: JSON.stringify(prefix.hashes()) })
          .where('partition', '=', this.partition)
          .execute();
        const built = this.#build(
          this.#clean({
            type: 'audit.retention',
            actor: { type: 'system', id: 'audit.retention' },
            action: 'audit.retention',
            resource: { type: 'audit_partition', id: this.partition },
            outcome: 'success',
            details: {
              pruned_to_seq: k,
              removed,
              max_age_ms: maxAgeMs,
              cutoff_time: cutoff,
              ...(held_at !== undefined ? { held_by_export_at_seq: held_at } : {}),
              checkpoint_size: checkpoint?.size ?? this.#lastCheckpoint,
            },
          }),
        );
        await tx.insertInto('audit_events').values(built.row).execute();
      });
    } catch (e) {
      restore();
      this.#stale = true;
      throw new UnavailableError('the retention job could not update the ledger', {
        code: 'ERR_AUDIT_UNAVAILABLE',
        cause: e,
      });
    }
    this.#pruned = { seq: k, frontier: prefix.hashes() };
    this.#logger.info({ partition: this.partition, removed, pruned_seq: k }, 'audit retention applied');
    return { partition: this.partition, removed, pruned_seq: k, checkpoint, held_at };
  }
}
