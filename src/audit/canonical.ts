/**
 * Canonical JSON (RFC 8785 style for the values Warden stores: sorted keys, no whitespace,
 * `undefined` members omitted). The ledger hashes this encoding, so the same event always hashes
 * the same, on any node and in any verifier.
 *
 * Every appended event is encoded once, so this is on the hot path: the usual case copies the
 * value with its keys inserted in sorted order and lets the native `JSON.stringify` write it
 * (about twice as fast). JavaScript orders integer-like keys numerically before all others, so
 * values with such keys (or with functions, symbols, bigints) take the plain recursive path.
 */
export function canonicalJson(value: unknown): string {
  try {
    return JSON.stringify(sortedCopy(value)) ?? 'null';
  } catch (e) {
    if (e === SLOW_PATH) return canonicalSlow(value);
    throw e;
  }
}

const SLOW_PATH = Symbol('canonical slow path');
const INDEX_KEY = /^(0|[1-9][0-9]*)$/;

function sortedCopy(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('non-finite numbers cannot be canonicalized');
      return value;
    case 'object':
      break;
    default:
      throw SLOW_PATH;
  }
  if (value === null) return null;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      out[i] = v === undefined ? null : sortedCopy(v);
    }
    return out;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  // No prototype: a key named "__proto__" must become an own member, not a prototype change.
  const out = Object.create(null) as Record<string, unknown>;
  for (const k of keys) {
    const v = record[k];
    if (v === undefined) continue;
    const c = k.charCodeAt(0);
    if (c >= 48 && c <= 57 && INDEX_KEY.test(k)) throw SLOW_PATH;
    out[k] = sortedCopy(v);
  }
  return out;
}

function canonicalSlow(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('non-finite numbers cannot be canonicalized');
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      return JSON.stringify(value) ?? 'null';
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const v: unknown = value[i];
      out += canonicalSlow(v === undefined ? null : v);
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = record[k];
    if (v === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(k)}:${canonicalSlow(v)}`;
  }
  return `${out}}`;
}
