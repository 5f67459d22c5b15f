import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateMasterKey, Keyring, SealError } from '../../src/core/index.ts';

describe('envelope encryption', () => {
  const { key } = generateMasterKey();
  const ring = new Keyring(key);

  it('opens what it sealed, under the same context', () => {
    const sealed = ring.seal('refresh-token-value', 'vault.secret:1:1');
    assert.equal(ring.openText(sealed, 'vault.secret:1:1'), 'refresh-token-value');
    assert.doesNotMatch(sealed, /refresh-token-value/);
  });

  it('uses a fresh data key for every value', () => {
    const a = ring.seal('same', 'ctx');
    const b = ring.seal('same', 'ctx');
    assert.notEqual(a.split('.')[2], b.split('.')[2]);
  });

  it('refuses a ciphertext moved to another row', () => {
    const sealed = ring.seal('secret', 'vault.secret:1:1');
    assert.throws(() => ring.open(sealed, 'vault.secret:2:1'), SealError);
  });

  it('detects a tampered ciphertext', () => {
    const sealed = ring.seal('secret', 'ctx');
    const parts = sealed.split('.');
    const data = Buffer.from(parts[3] as string, 'base64url');
    data[20] = (data[20] as number) ^ 1;
    parts[3] = data.toString('base64url');
    assert.throws(() => ring.open(parts.join('.'), 'ctx'), /failed authentication/);
  });

  it('refuses a value sealed under a key it does not hold', () => {
    const other = new Keyring(generateMasterKey().key);
    assert.throws(() => other.open(ring.seal('x', 'ctx'), 'ctx'), /does not hold/);
  });

  it('re-wraps data keys under a new master key, old values staying readable', () => {
    const sealed = ring.seal('long-lived', 'ctx');
    const rotated = new Keyring(generateMasterKey().key, [key]);
    const rewrapped = rotated.rewrap(sealed);
    assert.equal(rotated.kidOf(rewrapped), rotated.current.kid);
    assert.equal(rewrapped.split('.')[3], sealed.split('.')[3], 'the data ciphertext is untouched');
    assert.equal(new Keyring(rotated.current).openText(rewrapped, 'ctx'), 'long-lived');
  });
});
