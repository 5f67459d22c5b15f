import type { Clock } from '../core/index.ts';

type Bucket = { tokens: number; at: number };

/**
 * A token bucket per key (client id): `perSecond` sustained, `burst` at once. Per node: with N
 * nodes behind a balancer a client gets at most N times the rate, which bounds abuse while
 * costing no database round trip on the hot path.
 */
export class RateLimiter {
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, Bucket>();

  constructor(perSecond: number, burst: number, clock: Clock) {
    this.#perSecond = perSecond;
    this.#burst = burst;
    this.#clock = clock;
  }

  /**
   * Takes one request from `key`'s bucket.
   * @returns 0 when allowed, else the seconds to wait before retrying.
   */
  take(key: string): number {
    const now = this.#clock.now();
    if (this.#buckets.size > 100_000) this.#sweep(now);
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) / 1000) * this.#perSecond);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / this.#perSecond;
  }

  /** Forgets buckets that have refilled completely (they behave exactly like absent ones). */
  #sweep(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.#perSecond >= this.#burst) this.#buckets.delete(key);
    }
  }
}
