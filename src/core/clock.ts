/** A source of time, injected everywhere so tests of expiry never sleep. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to: for tests and simulations. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start: number = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.#now += ms;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}

/** Whole seconds since the epoch, as JWT `iat`/`exp` use. */
export function epochSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}
