import { randomBytes } from 'node:crypto';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';

let lastMs = -1;
let lastRand: Buffer = Buffer.alloc(10);

/**
 * Returns an RFC 9562 UUIDv7: 48 bits of Unix milliseconds, then random bits. Ids created in the
 * same millisecond by this process still sort in creation order (the random tail is incremented),
 * so ids are usable as stable, time-ordered cursors.
 */
export function uuidv7(clock: Clock = systemClock): string {
  let ms = clock.now();
  let rand: Buffer;
  if (ms <= lastMs) {
    ms = lastMs;
    rand = Buffer.from(lastRand);
    for (let i = rand.length - 1; i >= 0; i--) {
      rand[i] = ((rand[i] as number) + 1) & 0xff;
      if (rand[i] !== 0) break;
    }
  } else {
    rand = randomBytes(10);
  }
  lastMs = ms;
  lastRand = rand;
  const bytes = Buffer.alloc(16);
  bytes.writeUIntBE(ms, 0, 6);
  rand.copy(bytes, 6);
  bytes[6] = 0x70 | ((bytes[6] as number) & 0x0f);
  bytes[8] = 0x80 | ((bytes[8] as number) & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True when `value` is a lower-case UUID string (any version). */
export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** A random URL-safe token of `bytes` bytes of entropy (for API tokens, nonces, state). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
