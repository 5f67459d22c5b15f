import { readFileSync } from 'node:fs';

/** Product facts stamped on every exported event. */
export interface ProductInfo {
  vendor: string;
  name: string;
  version: string;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Warden as the reporting product, with the version from package.json. */
export const WARDEN_PRODUCT: ProductInfo = { vendor: 'Warden', name: 'Warden', version: packageVersion() };

/**
 * Deep-copies a JSON value without `undefined` and `null` members, and drops objects and arrays
 * left empty: exported events omit absent fields rather than carrying nulls.
 */
export function compact<T>(value: T): T {
  if (Array.isArray(value)) {
    return value.map((v) => compact(v)).filter((v) => v !== undefined && v !== null) as T;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k in value) {
      const v = (value as Record<string, unknown>)[k];
      if (v === undefined || v === null) continue;
      const c = compact(v);
      if (c && typeof c === 'object' && !Array.isArray(c) && Object.keys(c).length === 0) continue;
      out[k] = c;
    }
    return out as T;
  }
  return value;
}
