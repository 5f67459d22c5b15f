#!/usr/bin/env node
// The `warden` command. Warden's sources are TypeScript run directly by Node.js (type stripping,
// Node >= 22.18 or 22.13 with --experimental-strip-types), so there is no build step.
import { main } from '../src/cli/index.ts';

process.exitCode = await main(process.argv.slice(2));
