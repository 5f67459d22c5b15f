/** Percentile of a list of numbers (nearest rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Formats a number with at most `digits` fraction digits. */
export function fmt(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits });
}

/** Runs `task` from `concurrency` loops for `ms` milliseconds; returns ops/s and latencies (ms). */
export async function load(
  task: (i: number) => Promise<unknown>,
  options: { concurrency: number; ms: number; max?: number },
): Promise<{ ops: number; perSecond: number; latencies: number[] }> {
  const latencies: number[] = [];
  let i = 0;
  const end = performance.now() + options.ms;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (performance.now() < end && (options.max === undefined || i < options.max)) {
        const n = i++;
        const t0 = performance.now();
        await task(n);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  return { ops: latencies.length, perSecond: latencies.length / elapsed, latencies };
}
