/** Prints `data` as JSON (`--json`) or as a table of the chosen columns. */
export function print(data: unknown, options: { json?: boolean | undefined }, columns?: string[]): void {
  if (options.json || !columns) {
    process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    return;
  }
  const rows = (Array.isArray(data) ? data : [data]) as Record<string, unknown>[];
  const cell = (v: unknown) =>
    v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${line(columns.map((c) => c.toUpperCase()))}\n`);
  for (const r of rows) process.stdout.write(`${line(columns.map((c) => cell(r[c])))}\n`);
}

/** Prints a one-item record as `key: value` lines (or JSON). */
export function printRecord(data: Record<string, unknown>, options: { json?: boolean | undefined }): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    return;
  }
  const width = Math.max(...Object.keys(data).map((k) => k.length));
  for (const [k, v] of Object.entries(data)) {
    const value = v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    process.stdout.write(`${k.padEnd(width)}  ${value}\n`);
  }
}
