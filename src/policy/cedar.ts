import { createRequire } from 'node:module';

/**
 * The Cedar engine (`@cedar-policy/cedar-wasm`, Node.js entry). The Node.js build is CommonJS and
 * compiles and instantiates its wasm synchronously when required, so it is required once, on the
 * first use, and shared by the whole part: a node that has nothing to decide yet (no active policy
 * set) does not pay for it at start.
 */
const require = createRequire(import.meta.url);

export type * as CedarTypes from '@cedar-policy/cedar-wasm/nodejs';

type CedarModule = typeof import('@cedar-policy/cedar-wasm/nodejs');
let loaded: CedarModule | undefined;

/** The Cedar engine, loaded on first call. */
export function cedar(): CedarModule {
  loaded ??= require('@cedar-policy/cedar-wasm/nodejs') as CedarModule;
  return loaded;
}
