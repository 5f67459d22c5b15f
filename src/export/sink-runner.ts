import type { Kysely } from 'kysely';
import { type AuditEvent, listPartitions, readEvents } from '../audit/index.ts';
import type { Clock, Logger } from '../core/index.ts';
import { formatEvent } from './formats/format.ts';
import type { SinkStore, StoredSink } from './sink-store.ts';
import { errorCodeOf, SinkError, type SinkTransport } from './sinks/transport.ts';

/** Health of a sink: `degraded` after a failure, `failing` after `failingAfter` in a row. */
export type SinkHealth = 'healthy' | 'degraded' | 'failing';

export interface RunnerTiming {
  pollIntervalMs: number;
  partitionRefreshMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  failingAfter: number;
  /** How long a node's hold on a sink's loop lasts without renewal. */
  leaseMs: number;
}

/** What a sink has done so far, for status and metrics. */
export interface RunnerState {
  health: SinkHealth;
  /** Stable code of the last failure (e.g. `ECONNREFUSED`, `HTTP_503`); never a message or secret. */
  lastErrorCode?: string | undefined;
  lastErrorAt?: number | undefined;
  lastSuccessAt?: number | undefined;
  consecutiveFailures: number;
  /** Events delivered (and confirmed) since this runner started. Resends count again. */
  delivered: number;
  /** Delay before the next retry, while failing. */
  retryInMs?: number | undefined;
  /** True while this node holds the sink's lease and runs its deliveries; false on standby. */
  active: boolean;
}

interface Pending {
  partition: string;
  seq: number;
  at: number;
  generation: number;
  count: number;
}

/**
 * One sink's independent delivery loop: reads each ledger partition after the sink's cursor, sends
 * batches in order, and advances the cursor only for confirmed deliveries. On any failure it
 * rewinds to the stored cursors (so the receiver may see an event twice, never miss one) and
 * retries with exponential backoff and jitter.
 */
export class SinkRunner {
  readonly sink: StoredSink;
  readonly state: RunnerState = { health: 'healthy', consecutiveFailures: 0, delivered: 0, active: false };
  readonly #db: Kysely<any>;
  readonly #sinks: SinkStore;
  readonly #transport: SinkTransport;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #timing: RunnerTiming;
  readonly #owner: string;
  #leaseRenewedAt = 0;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #pending: Pending[] = [];
  #committed = new Map<string, number>();
  #position = new Map<string, number>();
  #partitions: string[] = [];
  #partitionsAt = 0;

  constructor(options: {
    sink: StoredSink;
    db: Kysely<any>;
    sinks: SinkStore;
    transport: SinkTransport;
    clock: Clock;
    logger: Logger;
    timing: RunnerTiming;
    /** This exporter instance's lease owner id. */
    owner: string;
  }) {
    this.sink = options.sink;
    this.#db = options.db;
    this.#sinks = options.sinks;
    this.#transport = options.transport;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#timing = options.timing;
    this.#owner = options.owner;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Wakes the loop now (new events were recorded). */
  nudge(): void {
    this.#wake?.();
  }

  /** Stops after the current round, commits what the receiver has confirmed, and disconnects. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    try {
      if (this.#pending.length) {
        await this.#sleep(this.#transport.confirmDelayMs, true);
        await this.#commit(true);
      }
    } catch {
      // Unconfirmed deliveries stay uncommitted: they are resent after the next start.
    }
    await this.#transport.close().catch(() => {});
    if (this.state.active) {
      this.state.active = false;
      await this.#sinks.release(this.#db, this.sink.id, this.#owner).catch(() => {});
    }
  }

  /**
   * Holds the sink's lease (renewed at a third of its lifetime). Only the holder delivers, so
   * several nodes running exporters never send one sink's events twice over or race its cursor.
   */
  async #holdLease(): Promise<boolean> {
    const now = this.#clock.now();
    if (this.state.active && now - this.#leaseRenewedAt < this.#timing.leaseMs / 3) return true;
    const held = await this.#sinks.lease(this.#db, this.sink.id, this.#owner, this.#timing.leaseMs);
    if (held) this.#leaseRenewedAt = now;
    this.state.active = held;
    return held;
  }

  async #run(): Promise<void> {
    let backoff = this.#timing.backoffInitialMs;
    let rewind = true;
    while (!this.#stopped) {
      try {
        if (!(await this.#holdLease())) {
          // Another node runs this sink; take over when its lease lapses (from the stored cursors).
          rewind = true;
          await this.#sleep(Math.min(this.#timing.leaseMs / 2, 1000));
          continue;
        }
        if (rewind) {
          this.#committed = await this.#sinks.cursors(this.#db, this.sink.id);
          this.#position = new Map(this.#committed);
          this.#pending = [];
          rewind = false;
        }
        const sent = await this.#round();
        await this.#commit(sent === 0);
        this.#succeeded();
        backoff = this.#timing.backoffInitialMs;
        if (sent === 0 && !this.#stopped) await this.#sleep(this.#timing.pollIntervalMs);
      } catch (error) {
        rewind = true;
        this.#failed(error, backoff);
        await this.#sleep(backoff * (0.5 + Math.random() / 2));
        backoff = Math.min(backoff * 2, this.#timing.backoffMaxMs);
      }
    }
  }

  /** Sends one batch from every partition that has events past its position. */
  async #round(): Promise<number> {
    const now = this.#clock.now();
    if (now - this.#partitionsAt >= this.#timing.partitionRefreshMs || this.#partitions.length === 0) {
      this.#partitions = (await listPartitions(this.#db)).map((p) => p.partition);
      this.#partitionsAt = now;
    }
    let sent = 0;
    for (const partition of this.#partitions) {
      if (this.#stopped) break;
      const after = this.#position.get(partition) ?? 0;
      const events: AuditEvent[] = await readEvents(
        this.#db,
        partition,
        after,
        this.sink.definition.batchSize,
      );
      if (events.length === 0) continue;
      const batch = events.map((event) => ({
        event,
        formatted: formatEvent(event, this.sink.definition.format),
      }));
      const generation = this.#transport.generation;
      await this.#transport.send(batch);
      const last = events.at(-1) as AuditEvent;
      this.#position.set(partition, last.seq);
      this.#pending.push({
        partition,
        seq: last.seq,
        at: this.#clock.now(),
        generation,
        count: events.length,
      });
      sent += events.length;
    }
    return sent;
  }

  /**
   * Stores the cursors of deliveries the receiver has confirmed. When idle, waits out the confirm
   * delay so the last batch is committed too. A lost connection makes its unconfirmed batches fail.
   */
  async #commit(idle: boolean): Promise<void> {
    if (this.#pending.length === 0) return;
    const delay = this.#transport.confirmDelayMs;
    if (idle && delay > 0) {
      const oldest = this.#pending.at(-1) as Pending;
      await this.#sleep(Math.max(0, oldest.at + delay - this.#clock.now()), true);
    }
    const generation = this.#transport.generation;
    if (this.#pending.some((p) => p.generation !== generation)) {
      throw new SinkError('ECONNRESET', 'the connection was lost before delivery was confirmed');
    }
    const now = this.#clock.now();
    const ready = this.#pending.filter((p) => p.at + delay <= now);
    if (ready.length === 0) return;
    this.#pending = this.#pending.filter((p) => p.at + delay > now);
    const latest = new Map<string, number>();
    let count = 0;
    for (const p of ready) {
      latest.set(p.partition, Math.max(p.seq, latest.get(p.partition) ?? 0));
      count += p.count;
    }
    await this.#db.transaction().execute(async (tx) => {
      for (const [partition, seq] of latest) await this.#sinks.saveCursor(tx, this.sink.id, partition, seq);
    });
    for (const [partition, seq] of latest) this.#committed.set(partition, seq);
    this.state.delivered += count;
  }

  #succeeded(): void {
    if (this.state.consecutiveFailures > 0) {
      this.#logger.info({ sink: this.sink.name }, 'export sink recovered');
    }
    this.state.health = 'healthy';
    this.state.consecutiveFailures = 0;
    this.state.lastSuccessAt = this.#clock.now();
    this.state.retryInMs = undefined;
  }

  #failed(error: unknown, backoff: number): void {
    const code = errorCodeOf(error);
    this.state.consecutiveFailures++;
    this.state.lastErrorCode = code;
    this.state.lastErrorAt = this.#clock.now();
    this.state.retryInMs = backoff;
    this.state.health = this.state.consecutiveFailures >= this.#timing.failingAfter ? 'failing' : 'degraded';
    // Only the code: messages from receivers or libraries could carry request contents.
    this.#logger.warn(
      { sink: this.sink.name, code, failures: this.state.consecutiveFailures },
      'export sink delivery failed; retrying',
    );
  }

  /** Sleeps `ms`; a nudge or stop ends the sleep early unless `uninterruptible`. */
  #sleep(ms: number, uninterruptible = false): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      if (!uninterruptible) this.#wake = done;
    }).finally(() => {
      this.#wake = undefined;
    });
  }

  /** Confirmed cursor per partition (as last loaded or committed). */
  committedCursors(): Map<string, number> {
    return new Map(this.#committed);
  }
}
