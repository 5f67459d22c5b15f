import { createRequire } from 'node:module';

/**
 * The Cedar engine (`@cedar-policy/cedar-wasm`, Node.js entry). The Node.js build is CommonJS and
 * loads its wasm synchronously, so it is required once here and shared by the whole part.
 */
const require = createRequire(import.meta.url);

export type * as CedarTypes from '@cedar-policy/cedar-wasm/nodejs';

export const cedar: typeof import('@cedar-policy/cedar-wasm/nodejs') = require('@cedar-policy/cedar-wasm/nodejs');
