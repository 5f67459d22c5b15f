// `npm run bench`: runs every bench/*.bench.ts (or those named on the command line) in turn.
// Each prints its own numbers, with ratios against a baseline measured in the same run.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const only = process.argv.slice(2);
const files = readdirSync(import.meta.dirname)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
for (const file of files) {
  process.stdout.write(`\n=== ${file} ===\n`);
  const mod = (await import(join(import.meta.dirname, file))) as { run(): Promise<void> };
  await mod.run();
}
