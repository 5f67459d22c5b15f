import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type Clock, type Logger, UnavailableError, uuidv7 } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import { canonicalJson } from './canonical.ts';
import type { AuditEvent, AuditEventInput } from './event.ts';
import { redact } from './redact.ts';

/** The hash that precedes the first event of every partition. */
export const GENESIS_HASH = '0'.repeat(64);

export interface AuditorOptions {
  store: Store;
  /** This writer's partition (its node id). Only one live writer may own a partition. */
  partition: string;
  clock: Clock;
  logger: Logger;
  /** `closed`: a failed write fails the action. `open`: the action proceeds and the failure is logged. */
  failMode: 'closed' | 'open';
}

/** The part of an event that is hashed: everything but the chain fields themselves. */
export function eventBody(event: AuditEvent): Omit<AuditEvent, 'hash' | 'prev_hash'> {
  const { hash: _h, prev_hash: _p, ...body } = event;
  return body;
}

/** SHA-256 over the predecessor's hash and the canonical encoding of the event body. */
export function chainHash(prevHash: string, body: Omit<AuditEvent, 'hash' | 'prev_hash'>): string {
  return createHash('sha256').update(prevHash, 'hex').update(canonicalJson(body), 'utf8').digest('hex');
}

/**
 * The one way every part records what happened. Events are redacted, chained to their
 * predecessor in this node's partition, and durable before `record()` resolves.
 */
export class Auditor {
  readonly partition: string;
  readonly failMode: 'closed' | 'open';
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #head: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH };
  #lock: Promise<unknown> = Promise.resolve();

  private constructor(options: AuditorOptions) {
    this.partition = options.partition;
    this.failMode = options.failMode;
    this.#store = options.store;
    this.#clock = options.clock;
    this.#logger = options.logger;
  }

  /** Opens the writer for a partition, resuming its chain from the last stored event. */
  static async open(options: AuditorOptions): Promise<Auditor> {
    const auditor = new Auditor(options);
    await auditor.#loadHead();
    return auditor;
  }

  async #loadHead(): Promise<void> {
    const row = await this.#store.db
      .selectFrom('audit_events')
      .select(['seq', 'hash'])
      .where('partition', '=', this.partition)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    this.#head = row ? { seq: Number(row.seq), hash: row.hash as string } : { seq: 0, hash: GENESIS_HASH };
  }

  /** Records one event; resolves once it is durable. */
  async record(input: AuditEventInput): Promise<AuditEvent | undefined> {
    try {
      return await this.#serialize(() => this.#store.transaction((tx) => this.#append(tx, input)));
    } catch (e) {
      return this.#failed(e, input);
    }
  }

  /**
   * Runs `fn` and records the event describing its result in the same transaction: the change and
   * its audit event are written together or not at all.
   */
  async transact<T>(
    fn: (tx: Kysely<any>) => Promise<T>,
    toEvent: (result: T) => AuditEventInput,
  ): Promise<T> {
    return this.#serialize(() =>
      this.#store.transaction(async (tx) => {
        const result = await fn(tx);
        await this.#append(tx, toEvent(result));
        return result;
      }),
    );
  }

  #serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(async () => {
      const before = this.#head;
      try {
        return await work();
      } catch (e) {
        this.#head = before;
        throw e;
      }
    });
    this.#lock = run.catch(() => {});
    return run;
  }

  async #append(tx: Kysely<any>, input: AuditEventInput): Promise<AuditEvent> {
    const clean = redact(input);
    const seq = this.#head.seq + 1;
    const body: Omit<AuditEvent, 'hash' | 'prev_hash'> = {
      ...clean,
      request: { ...clean.request, node: this.partition },
      id: uuidv7(this.#clock),
      time: this.#clock.now(),
      partition: this.partition,
      seq,
    };
    const hash = chainHash(this.#head.hash, body);
    const event: AuditEvent = { ...body, prev_hash: this.#head.hash, hash };
    await tx
      .insertInto('audit_events')
      .values({
        partition: this.partition,
        seq,
        id: event.id,
        time: event.time,
        type: event.type,
        actor_type: event.actor.type,
        actor_id: event.actor.id,
        user_id: event.actor.type === 'user' ? event.actor.id : (event.actor.on_behalf_of?.id ?? null),
        agent_id:
          event.actor.type === 'agent'
            ? event.actor.id
            : event.resource?.type === 'agent'
              ? (event.resource.id ?? null)
              : null,
        outcome: event.outcome,
        body: canonicalJson(body),
        prev_hash: event.prev_hash,
        hash,
      })
      .execute();
    this.#head = { seq, hash };
    return event;
  }

  #failed(error: unknown, input: AuditEventInput): undefined {
    this.#logger.error(
      { err: { message: (error as Error).message }, type: input.type },
      'audit event could not be written',
    );
    if (this.failMode === 'open') return undefined;
    throw new UnavailableError('the audit ledger cannot be written; the action was refused', {
      code: 'ERR_AUDIT_UNAVAILABLE',
      cause: error,
    });
  }
}
