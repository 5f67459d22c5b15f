import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson } from '../../src/audit/index.ts';

/** The plain reference definition: sorted keys, undefined members dropped, no whitespace. */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => reference(v ?? null)).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${reference((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

describe('canonical JSON', () => {
  it('keeps a member named __proto__, so two values differing only there never hash alike', () => {
    const withProto = JSON.parse('{"__proto__":{"amount":1},"a":1}');
    assert.equal(canonicalJson(withProto), '{"__proto__":{"amount":1},"a":1}');
    assert.notEqual(canonicalJson(withProto), canonicalJson({ a: 1 }));
  });

  it('matches the reference encoding and ignores key order, for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = canonicalJson(v);
        assert.equal(text, reference(v));
        assert.equal(canonicalJson(JSON.parse(text)), text, 'stable under a parse round trip');
      }),
      { numRuns: 500 },
    );
    assert.equal(
      canonicalJson({ b: 1, a: [true, null, undefined], c: undefined, d: 'é"' }),
      '{"a":[true,null,null],"b":1,"d":"é\\""}',
    );
    assert.throws(() => canonicalJson({ n: Number.NaN }), TypeError);
    // Integer-like keys sort as strings too (JavaScript would put them first, numerically).
    assert.equal(
      canonicalJson({ a: 1, '10': 2, '9': { '2': 0, '11': 1 }, ' ': 3 }),
      '{" ":3,"10":2,"9":{"11":1,"2":0},"a":1}',
    );
    fc.assert(
      fc.property(fc.dictionary(fc.oneof(fc.nat().map(String), fc.string()), fc.jsonValue()), (v) => {
        assert.equal(canonicalJson(v), reference(v));
      }),
      { numRuns: 300 },
    );
  });
});
