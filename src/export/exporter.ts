import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  type AuditActor,
  type Auditor,
  type AuditRequestMeta,
  canonicalJson,
  listPartitions,
  readEvents,
} from '../audit/index.ts';
import {
  type Clock,
  ConfigError,
  InvalidRequestError,
  type Keyring,
  type Logger,
  WardenError,
} from '../core/index.ts';
import type { Store } from '../store/index.ts';
import { parseSinkDefinition, type SinkDefinition } from './sink-definition.ts';
import { type RunnerState, type RunnerTiming, SinkRunner } from './sink-runner.ts';
import { SinkStore, type SinkView, type StoredSink, viewOf } from './sink-store.ts';
import { FileTransport } from './sinks/file-transport.ts';
import { KafkaTransport } from './sinks/kafka-transport.ts';
import { SplunkHecTransport } from './sinks/splunk-hec-transport.ts';
import { SyslogTransport } from './sinks/syslog-transport.ts';
import type { SinkTransport } from './sinks/transport.ts';
import { WebhookTransport } from './sinks/webhook-transport.ts';

/** Exporter options (validated at creation: misconfiguration fails at start). */
export const exporterOptionsSchema = z
  .object({
    /** How often an idle sink looks for new events. */
    pollIntervalMs: z.number().int().min(10).max(60_000).default(200),
    /** How often the list of ledger partitions (writer nodes) is refreshed. */
    partitionRefreshMs: z.number().int().min(100).max(600_000).default(2_000),
    backoffInitialMs: z.number().int().min(10).max(60_000).default(250),
    backoffMaxMs: z.number().int().min(100).max(3_600_000).default(30_000),
    /** Consecutive failures after which a sink is `failing` rather than `degraded`. */
    failingAfter: z.number().int().min(1).max(1000).default(3),
    /** How long a TCP/TLS syslog connection must survive a write before the batch counts as delivered. */
    syslogConfirmMs: z.number().int().min(0).max(10_000).default(200),
    /** How long a node's hold on a sink lasts unrenewed; another node takes over after it lapses. */
    leaseMs: z.number().int().min(100).max(600_000).default(15_000),
    /** Sinks from the config file (`export.sinks`); created or updated in the store at start. */
    sinks: z.array(z.unknown()).default([]),
  })
  .strict();

export type ExporterOptionsInput = z.input<typeof exporterOptionsSchema>;

/** A sink's health and lag, as the status API reports it. */
export interface SinkStatus {
  name: string;
  type: string;
  enabled: boolean;
  /** A loop for this sink runs in this process. */
  running: boolean;
  /** This process holds the sink's lease and delivers; false while another node does. */
  active: boolean;
  health: RunnerState['health'] | 'disabled';
  lastErrorCode?: string | undefined;
  lastErrorAt?: number | undefined;
  lastSuccessAt?: number | undefined;
  consecutiveFailures: number;
  delivered: number;
  lag: { events: number; seconds: number };
}

export interface ExporterDeps {
  store: Store;
  keyring: Keyring;
  auditor: Auditor;
  clock: Clock;
  logger: Logger;
}

const SYSTEM_CONFIG_ACTOR: AuditActor = { type: 'system', id: 'config' };
const CHANGE_CHANNEL = 'export.sinks';

function sameDefinition(a: SinkDefinition, b: SinkDefinition): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * Streams the ledger to every configured sink. Each enabled sink runs its own loop with its own
 * cursors, so a slow or dead receiver never holds up another. Every agent's events are in the
 * ledger, so a new agent is exported with no configuration at all.
 */
export class Exporter {
  readonly #deps: ExporterDeps;
  readonly #timing: RunnerTiming & { syslogConfirmMs: number };
  readonly #sinks: SinkStore;
  readonly #runners = new Map<string, SinkRunner>();
  /** This instance's lease owner id: unique per process start. */
  readonly #owner = `exporter-${randomUUID()}`;
  #started = false;
  #unsubscribe: (() => void) | undefined;
  #reloading: Promise<void> = Promise.resolve();

  private constructor(deps: ExporterDeps, timing: RunnerTiming & { syslogConfirmMs: number }) {
    this.#deps = deps;
    this.#timing = timing;
    this.#sinks = new SinkStore(deps.keyring, deps.clock);
  }

  /**
   * Creates the exporter and applies the config file's sinks to the store (created, or updated when
   * they differ; each change is an `export.sink_changed` event). @throws ConfigError for bad options.
   */
  static async create(deps: ExporterDeps, options: ExporterOptionsInput = {}): Promise<Exporter> {
    const parsed = exporterOptionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new ConfigError(
        `invalid export options: ${parsed.error.issues.map((i) => `${['export', ...i.path].join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    const { sinks, ...timing } = parsed.data;
    const exporter = new Exporter(deps, timing);
    const definitions = sinks.map((raw, i) => {
      try {
        return parseSinkDefinition(raw, `export.sinks[${i}]`);
      } catch (e) {
        const params = e instanceof WardenError ? (e.invalidParams ?? []) : [];
        throw new ConfigError(
          `invalid export sink: ${params.map((p) => `${p.name}: ${p.reason}`).join('; ')}`,
        );
      }
    });
    for (const def of definitions) await exporter.#applyConfigSink(def);
    return exporter;
  }

  async #applyConfigSink(def: SinkDefinition): Promise<void> {
    let current = await this.#sinks.find(this.#deps.store.db, def.name);
    if (!current) {
      try {
        await this.#write('create', SYSTEM_CONFIG_ACTOR, async (tx) =>
          this.#sinks.insert(tx, def, 'config', await listPartitions(tx)),
        );
        return;
      } catch (e) {
        // Another node starting with the same config file created it first: compare with theirs.
        current = await this.#sinks.find(this.#deps.store.db, def.name);
        if (!current) throw e;
      }
    }
    if (current.type !== def.type) {
      throw new ConfigError(
        `export sink ${def.name}: its type cannot change from ${current.type} to ${def.type}`,
      );
    }
    if (!sameDefinition(current.definition, def) || current.source !== 'config') {
      const existing = current;
      await this.#write('update', SYSTEM_CONFIG_ACTOR, (tx) =>
        this.#sinks.replace(tx, existing, def, 'config'),
      );
    }
  }

  /** Starts a loop for every enabled sink and follows sink changes made by other nodes. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#unsubscribe = this.#deps.store.changes.subscribe(CHANGE_CHANNEL, () => {
      void this.#reload();
    });
    await this.#reload();
  }

  /** Stops every sink loop; confirmed deliveries are committed first. */
  async stop(): Promise<void> {
    this.#started = false;
    this.#unsubscribe?.();
    await this.#reloading;
    await Promise.all([...this.#runners.values()].map((r) => r.stop()));
    this.#runners.clear();
  }

  /** Wakes every sink loop (call after recording events to cut latency below the poll interval). */
  nudge(): void {
    for (const r of this.#runners.values()) r.nudge();
  }

  #reload(): Promise<void> {
    this.#reloading = this.#reloading.then(async () => {
      if (!this.#started) return;
      const sinks = await this.#sinks.list(this.#deps.store.db);
      const wanted = new Map(sinks.filter((s) => s.enabled).map((s) => [s.id, s]));
      for (const [id, runner] of this.#runners) {
        const next = wanted.get(id);
        if (!next || next.version !== runner.sink.version) {
          this.#runners.delete(id);
          await runner.stop();
        }
      }
      for (const [id, sink] of wanted) {
        if (this.#runners.has(id)) continue;
        const runner = new SinkRunner({
          sink,
          db: this.#deps.store.db,
          sinks: this.#sinks,
          transport: this.#transportFor(sink),
          clock: this.#deps.clock,
          logger: this.#deps.logger,
          timing: this.#timing,
          owner: this.#owner,
        });
        this.#runners.set(id, runner);
        runner.start();
      }
    });
    return this.#reloading.catch((e) => {
      this.#deps.logger.error(
        { err: { message: (e as Error).message } },
        'export sinks could not be reloaded',
      );
    });
  }

  #transportFor(sink: StoredSink): SinkTransport {
    const def = sink.definition;
    switch (def.type) {
      case 'syslog':
        return new SyslogTransport(def, this.#timing.syslogConfirmMs);
      case 'kafka':
        return new KafkaTransport(def);
      case 'splunk_hec':
        return new SplunkHecTransport(def);
      case 'webhook':
        return new WebhookTransport(def, this.#deps.clock);
      case 'file':
        return new FileTransport(def);
    }
  }

  async #write(
    operation: 'create' | 'update' | 'delete',
    actor: AuditActor,
    change: (tx: any) => Promise<StoredSink>,
    changedKeys?: string[],
    request?: AuditRequestMeta,
  ): Promise<StoredSink> {
    const sink = await this.#deps.auditor.transact(
      async (tx) => {
        const result = await change(tx);
        await this.#deps.store.changes.publish(CHANGE_CHANNEL, { name: result.name, operation }, tx);
        return result;
      },
      (result) => ({
        type: 'export.sink_changed',
        actor,
        action: `export.sinks.${operation}`,
        resource: { type: 'export_sink', id: result.id, name: result.name },
        outcome: 'success',
        request,
        details: {
          operation,
          sink_type: result.type,
          format: result.format,
          enabled: result.enabled,
          source: result.source,
          changed_fields: changedKeys,
        },
      }),
    );
    if (this.#started) await this.#reload();
    return sink;
  }

  /**
   * The ledger's retention hold: the highest seq of `partition` that every enabled sink has
   * confirmed, so retention never removes an event a SIEM has not received.
   */
  confirmedThrough(partition: string): Promise<number> {
    return this.#sinks.confirmedThrough(this.#deps.store.db, partition);
  }

  /** Lists every sink (secrets are never included). */
  async listSinks(): Promise<SinkView[]> {
    return (await this.#sinks.list(this.#deps.store.db)).map(viewOf);
  }

  /** One sink by name. @throws NotFoundError */
  async getSink(name: string): Promise<SinkView> {
    return viewOf(await this.#sinks.get(this.#deps.store.db, name));
  }

  /** Creates a sink from an unvalidated definition. @throws InvalidRequestError, ConflictError */
  async createSink(input: unknown, actor: AuditActor, request?: AuditRequestMeta): Promise<SinkView> {
    const def = parseSinkDefinition(input);
    const sink = await this.#write(
      'create',
      actor,
      async (tx) => this.#sinks.insert(tx, def, 'api', await listPartitions(tx)),
      undefined,
      request,
    );
    return viewOf(sink);
  }

  /**
   * Changes a sink: `patch` is merged over its current definition (nested objects shallowly), and
   * secret members left out keep their stored values. Name and type cannot change.
   * @throws NotFoundError, InvalidRequestError
   */
  async updateSink(
    name: string,
    patch: unknown,
    actor: AuditActor,
    request?: AuditRequestMeta,
  ): Promise<SinkView> {
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
      throw new InvalidRequestError('a sink update must be an object', { code: 'ERR_INVALID_SINK' });
    }
    const p = patch as Record<string, unknown>;
    const sink = await this.#write(
      'update',
      actor,
      async (tx) => {
        const current = await this.#sinks.get(tx, name);
        if ((p.name !== undefined && p.name !== name) || (p.type !== undefined && p.type !== current.type)) {
          throw new InvalidRequestError('the name and type of a sink cannot change', {
            code: 'ERR_INVALID_SINK',
            invalidParams: [
              { name: 'body', reason: 'name and type are fixed; delete and re-create instead' },
            ],
          });
        }
        const merged: Record<string, any> = { ...current.definition };
        for (const [k, v] of Object.entries(p)) {
          merged[k] =
            v && typeof v === 'object' && !Array.isArray(v) && merged[k] && typeof merged[k] === 'object'
              ? { ...merged[k], ...v }
              : v;
        }
        const def = parseSinkDefinition(merged);
        return this.#sinks.replace(tx, current, def, 'api');
      },
      Object.keys(p),
      request,
    );
    return viewOf(sink);
  }

  /** Deletes a sink and its cursors. @throws NotFoundError */
  async deleteSink(name: string, actor: AuditActor, request?: AuditRequestMeta): Promise<void> {
    // Stop the sink's loop first, so it cannot commit a cursor after its sink is gone.
    for (const [id, runner] of this.#runners) {
      if (runner.sink.name !== name) continue;
      this.#runners.delete(id);
      await runner.stop();
    }
    await this.#write(
      'delete',
      actor,
      async (tx) => {
        const current = await this.#sinks.get(tx, name);
        await this.#sinks.remove(tx, current);
        return current;
      },
      undefined,
      request,
    );
  }

  /** Health and lag of every sink (or one). Lag: events and seconds behind the ledger head. */
  async status(name?: string): Promise<SinkStatus[]> {
    const db = this.#deps.store.db;
    const sinks = name ? [await this.#sinks.get(db, name)] : await this.#sinks.list(db);
    const heads = await listPartitions(db);
    const out: SinkStatus[] = [];
    for (const sink of sinks) {
      const runner = [...this.#runners.values()].find((r) => r.sink.id === sink.id);
      const cursors = await this.#sinks.cursors(db, sink.id);
      let events = 0;
      let oldest: number | undefined;
      for (const h of heads) {
        const at = cursors.get(h.partition) ?? 0;
        if (h.head <= at) continue;
        events += h.head - at;
        const [first] = await readEvents(db, h.partition, at, 1);
        if (first && (oldest === undefined || first.time < oldest)) oldest = first.time;
      }
      const state = runner?.state;
      out.push({
        name: sink.name,
        type: sink.type,
        enabled: sink.enabled,
        running: runner !== undefined,
        active: state?.active ?? false,
        health: sink.enabled ? (state?.health ?? 'healthy') : 'disabled',
        lastErrorCode: state?.lastErrorCode,
        lastErrorAt: state?.lastErrorAt,
        lastSuccessAt: state?.lastSuccessAt,
        consecutiveFailures: state?.consecutiveFailures ?? 0,
        delivered: state?.delivered ?? 0,
        lag: {
          events,
          seconds: oldest === undefined ? 0 : Math.max(0, (this.#deps.clock.now() - oldest) / 1000),
        },
      });
    }
    return out;
  }
}
