/** The steps of the one path whose time the gateway measures. */
export const STEPS = [
  'auth',
  'identify',
  'policy',
  'approval',
  'vault',
  'upstream',
  'audit',
  'total',
] as const;
export type Step = (typeof STEPS)[number];

/** Milliseconds spent in each step of one call. */
export type StepTimings = Partial<Record<Step, number>>;

const KEEP = 20_000;

/** Recent per-step samples of this node, for the benchmark's breakdown and for diagnostics. */
export class StepStats {
  readonly #samples = new Map<Step, Float64Array>();
  readonly #count = new Map<Step, number>();

  add(timings: StepTimings): void {
    for (const [step, ms] of Object.entries(timings) as [Step, number][]) {
      let buf = this.#samples.get(step);
      if (!buf) {
        buf = new Float64Array(KEEP);
        this.#samples.set(step, buf);
      }
      const n = this.#count.get(step) ?? 0;
      buf[n % KEEP] = ms;
      this.#count.set(step, n + 1);
    }
  }

  /** p50 and p99 (ms) per step over the recent samples. */
  summary(): Record<string, { n: number; p50: number; p99: number }> {
    const out: Record<string, { n: number; p50: number; p99: number }> = {};
    for (const [step, buf] of this.#samples) {
      const n = Math.min(this.#count.get(step) ?? 0, KEEP);
      const sorted = Array.from(buf.subarray(0, n)).sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))] ?? 0;
      out[step] = { n, p50: at(0.5), p99: at(0.99) };
    }
    return out;
  }

  reset(): void {
    this.#samples.clear();
    this.#count.clear();
  }
}
