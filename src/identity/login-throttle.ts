import { RateLimitedError } from '../core/index.ts';

const WINDOW_MS = 5 * 60 * 1000;
const MAX_FAILURES = 5;

/**
 * Slows password guessing: after five failures for one username (from anywhere) or one source
 * address within five minutes, further attempts are refused with 429 until the window passes.
 * Per node, in memory: a cluster of N nodes allows at most N times as many guesses.
 */
export class LoginThrottle {
  readonly #failures = new Map<string, number[]>();

  #recent(key: string, now: number): number[] {
    const list = (this.#failures.get(key) ?? []).filter((t) => now - t < WINDOW_MS);
    if (list.length) this.#failures.set(key, list);
    else this.#failures.delete(key);
    return list;
  }

  /** @throws RateLimitedError when either key has too many recent failures. */
  check(keys: string[], now: number): void {
    for (const key of keys) {
      const list = this.#recent(key, now);
      if (list.length >= MAX_FAILURES) {
        throw new RateLimitedError(
          'too many failed sign-ins; try again later',
          ((list[0] as number) + WINDOW_MS - now) / 1000,
        );
      }
    }
  }

  fail(keys: string[], now: number): void {
    for (const key of keys) this.#failures.set(key, [...this.#recent(key, now), now]);
    if (this.#failures.size > 100_000) this.#failures.clear();
  }

  succeed(keys: string[]): void {
    for (const key of keys) this.#failures.delete(key);
  }
}
