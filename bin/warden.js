#!/usr/bin/env node
// The `warden` command. Warden's sources are TypeScript run directly by Node.js (type stripping),
// so there is no build step. The compile cache keeps later starts fast (V8 code cache on disk).
import module from 'node:module';

module.enableCompileCache?.();
const { main } = await import('../src/cli/index.ts');
process.exitCode = await main(process.argv.slice(2));
