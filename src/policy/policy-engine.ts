import type { Clock, Logger } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import { type Decision, decideWith } from './decision.ts';
import { PolicyIndex, type PolicyIndexOptions } from './policy-index.ts';
import { activeActivation, POLICY_CHANNEL, readParsedPolicies } from './policy-store.ts';
import { type NormalizedRequest, normalizeRequest } from './request.ts';

export interface PolicyEngineOptions {
  store: Store;
  clock: Clock;
  logger?: Logger | undefined;
  index?: PolicyIndexOptions | undefined;
}

/** Builds the index of a stored version from its parsed policies (validated and parsed at push). */
export async function loadVersionIndex(
  store: Store,
  version: number,
  options?: PolicyIndexOptions,
): Promise<PolicyIndex | undefined> {
  const policies = await readParsedPolicies(store.db, version);
  return policies ? new PolicyIndex(policies, options) : undefined;
}

/**
 * The decision point of one node: the active policy set, indexed and warm, reloaded whenever any
 * node activates or rolls back a version (change feed: within a second everywhere). With no
 * active version every request is denied.
 */
export class PolicyEngine {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #indexOptions: PolicyIndexOptions | undefined;
  #index: PolicyIndex = new PolicyIndex([]);
  #version: number | null = null;
  #unsubscribe: (() => void) | undefined;
  #loading: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(options: PolicyEngineOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#indexOptions = options.index;
  }

  /** Loads the active version and starts following changes. */
  static async open(options: PolicyEngineOptions): Promise<PolicyEngine> {
    const engine = new PolicyEngine(options);
    engine.#unsubscribe = options.store.changes.subscribe(POLICY_CHANNEL, () => engine.#reloadInBackground());
    await engine.reload();
    return engine;
  }

  /** Reloads after a change notice; on failure (database briefly down) retries every second. */
  #reloadInBackground(): void {
    if (this.#closed) return;
    void this.reload().catch((e: unknown) => {
      this.#logger?.error({ err: { message: (e as Error).message } }, 'policy reload failed; retrying');
      setTimeout(() => this.#reloadInBackground(), 1000).unref();
    });
  }

  /** The active version number (null: none, everything is denied). */
  get version(): number | null {
    return this.#version;
  }

  /** The active set's index (for explanations, search and effective permissions). */
  get index(): PolicyIndex {
    return this.#index;
  }

  /** Re-reads which version is active and swaps the index if it changed. Reloads never overlap. */
  reload(): Promise<void> {
    this.#loading = this.#loading
      .catch(() => {})
      .then(async () => {
        const active = await activeActivation(this.#store.db);
        const version = active?.version ?? null;
        if (version === this.#version) return;
        const next =
          version === null
            ? new PolicyIndex([])
            : await loadVersionIndex(this.#store, version, this.#indexOptions);
        if (!next) return;
        if (this.#closed) {
          next.dispose();
          return;
        }
        const old = this.#index;
        this.#index = next;
        this.#version = version;
        old.dispose();
        this.#logger?.info({ version }, 'policy set loaded');
      });
    return this.#loading;
  }

  /** Validates and decides one request against the active set. */
  decide(request: unknown): Decision {
    return decideWith(this.#index, this.#version, normalizeRequest(request, this.#clock));
  }

  /** Decides an already normalised request. */
  decideNormalized(request: NormalizedRequest): Decision {
    return decideWith(this.#index, this.#version, request);
  }

  get clock(): Clock {
    return this.#clock;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    await this.#loading.catch(() => {});
    this.#index.dispose();
  }
}
