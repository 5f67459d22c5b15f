#!/usr/bin/env node
// The `warden` command. Warden's sources are TypeScript run directly by Node.js (type stripping),
// so there is no build step. The compile cache keeps later starts fast (V8 code cache on disk; it
// covers the .ts files too: Node caches their stripped source and its code).
import module from 'node:module';
import v8 from 'node:v8';

module.enableCompileCache?.();
// Loading ~1,200 modules allocates mostly long-lived objects; V8 reads that as a reason to grow
// the young generation to its maximum (2 × 32 MB on a 64-bit host) and an idle node would keep
// it. Growth is held off while Warden starts; `serve` allows it again once the node is ready, so
// the young generation grows with the load instead (V8 reads this flag at every resize).
v8.setFlagsFromString('--semi-space-growth-factor=1');
const { main } = await import('../src/cli/index.ts');
process.exitCode = await main(process.argv.slice(2));
