/** A token bucket's shape: `capacity` calls at once, refilled at `perSecond`. */
export interface BucketSpec {
  capacity: number;
  perSecond: number;
}

/**
 * Token buckets by key (an agent, a tool), per node. Idle buckets are dropped once full again so
 * the map does not grow without bound.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number; spec: BucketSpec }>();
  readonly #now: () => number;
  #sweeps = 0;

  constructor(now: () => number) {
    this.#now = now;
  }

  /**
   * Takes one token from the bucket for `key`. Returns 0 when allowed, otherwise the seconds
   * until a token is available.
   */
  take(key: string, spec: BucketSpec): number {
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (!b || b.spec.capacity !== spec.capacity || b.spec.perSecond !== spec.perSecond) {
      b = { tokens: spec.capacity, at: now, spec };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(spec.capacity, b.tokens + ((now - b.at) / 1000) * spec.perSecond);
      b.at = now;
    }
    if (++this.#sweeps >= 10_000) this.#sweep(now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / spec.perSecond;
  }

  /** Gives a token back (a call refused by a later check must not cost the agent). */
  refund(key: string): void {
    const b = this.#buckets.get(key);
    if (b) b.tokens = Math.min(b.spec.capacity, b.tokens + 1);
  }

  #sweep(now: number): void {
    this.#sweeps = 0;
    for (const [k, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * b.spec.perSecond >= b.spec.capacity) this.#buckets.delete(k);
    }
  }
}
