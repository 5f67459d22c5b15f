import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { ConfigError, WardenError } from './errors.ts';

/** Raised when a sealed value cannot be opened: tampered, truncated, or sealed under another key. */
export class SealError extends WardenError {
  constructor(detail: string) {
    super('ERR_SEALED_VALUE', 500, 'Sealed value cannot be opened', detail);
  }
}

const FORMAT = 'wdn1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** One AES-256 master key and its id. The id is derived from the key, so it needs no config. */
export interface MasterKey {
  readonly kid: string;
  readonly key: KeyObject;
}

/** Derives the public id of a master key: a short hash, never the key itself. */
export function masterKeyId(raw: Buffer): string {
  return createHash('sha256').update('warden master key id\0').update(raw).digest('hex').slice(0, 16);
}

/**
 * Parses a master key given as 64 hex characters or as base64/base64url of 32 bytes.
 * @throws ConfigError naming `source` when the value is not a 256-bit key.
 */
export function parseMasterKey(text: string, source: string): MasterKey {
  const value = text.trim();
  let raw: Buffer;
  if (/^[0-9a-fA-F]{64}$/.test(value)) raw = Buffer.from(value, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) raw = Buffer.from(value, 'base64url');
  else raw = Buffer.alloc(0);
  if (raw.length !== KEY_BYTES) {
    throw new ConfigError(
      `${source}: a master key must be 32 bytes, given as 64 hex characters or 43/44 base64 characters`,
    );
  }
  return { kid: masterKeyId(raw), key: createSecretKey(raw) };
}

/** Makes a new random master key, returned with its base64url text form for storage. */
export function generateMasterKey(): { key: MasterKey; text: string } {
  const raw = randomBytes(KEY_BYTES);
  return { key: { kid: masterKeyId(raw), key: createSecretKey(raw) }, text: raw.toString('base64url') };
}

function gcmEncrypt(key: KeyObject, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, ct, cipher.getAuthTag()]);
}

function gcmDecrypt(key: KeyObject, blob: Buffer, aad: Buffer): Buffer {
  if (blob.length < IV_BYTES + TAG_BYTES) throw new SealError('sealed value is truncated');
  const iv = blob.subarray(0, IV_BYTES);
  const tag = blob.subarray(blob.length - TAG_BYTES);
  const ct = blob.subarray(IV_BYTES, blob.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    throw new SealError('sealed value failed authentication (tampered, or sealed for another context)');
  }
}

/**
 * Envelope encryption with AES-256-GCM. Every sealed value gets its own random data key; the data
 * key is wrapped by the current master key and stored beside the ciphertext, together with the
 * master key's id. Rotating the master key re-wraps data keys only ({@link Keyring.rewrap}).
 *
 * A sealed value is bound to a context string (`aad`, e.g. `vault.secret:<id>:3`): it opens only
 * under the same context, so ciphertexts cannot be swapped between rows or columns.
 *
 * Format: `wdn1.<master kid>.<wrapped data key>.<ciphertext>` (base64url parts).
 */
export class Keyring {
  readonly current: MasterKey;
  readonly #byId: Map<string, MasterKey>;

  /**
   * @param current the key new values are sealed under.
   * @param previous older keys still accepted for opening and re-wrapping.
   */
  constructor(current: MasterKey, previous: MasterKey[] = []) {
    this.current = current;
    this.#byId = new Map([current, ...previous].map((k) => [k.kid, k]));
  }

  /** Ids of every key this keyring can open with, current first. */
  get kids(): string[] {
    return [...this.#byId.keys()];
  }

  /** Seals `plaintext` for the context `aad`. */
  seal(plaintext: Buffer | string, aad: string): string {
    const dek = randomBytes(KEY_BYTES);
    try {
      const data = gcmEncrypt(
        createSecretKey(dek),
        Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext, 'utf8'),
        Buffer.from(`data\0${aad}`),
      );
      const wrapped = gcmEncrypt(this.current.key, dek, Buffer.from(`dek\0${this.current.kid}`));
      return `${FORMAT}.${this.current.kid}.${wrapped.toString('base64url')}.${data.toString('base64url')}`;
    } finally {
      dek.fill(0);
    }
  }

  /** Opens a value sealed for the context `aad`. @throws SealError on any mismatch. */
  open(sealed: string, aad: string): Buffer {
    const { master, wrapped, data } = this.#parse(sealed);
    const dek = gcmDecrypt(master.key, wrapped, Buffer.from(`dek\0${master.kid}`));
    try {
      return gcmDecrypt(createSecretKey(dek), data, Buffer.from(`data\0${aad}`));
    } finally {
      dek.fill(0);
    }
  }

  /** Opens a sealed UTF-8 string. */
  openText(sealed: string, aad: string): string {
    return this.open(sealed, aad).toString('utf8');
  }

  /** The id of the master key a sealed value is wrapped under. */
  kidOf(sealed: string): string {
    return this.#parse(sealed).master.kid;
  }

  /**
   * Re-wraps the value's data key under the current master key. The data ciphertext is not
   * touched, so this needs no context and cannot change what the value decrypts to.
   */
  rewrap(sealed: string): string {
    const { master, wrapped, data } = this.#parse(sealed);
    if (master.kid === this.current.kid) return sealed;
    const dek = gcmDecrypt(master.key, wrapped, Buffer.from(`dek\0${master.kid}`));
    try {
      const rewrapped = gcmEncrypt(this.current.key, dek, Buffer.from(`dek\0${this.current.kid}`));
      return `${FORMAT}.${this.current.kid}.${rewrapped.toString('base64url')}.${data.toString('base64url')}`;
    } finally {
      dek.fill(0);
    }
  }

  #parse(sealed: string): { master: MasterKey; wrapped: Buffer; data: Buffer } {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== FORMAT) throw new SealError('not a sealed value');
    const [, kid, wrapped, data] = parts as [string, string, string, string];
    const master = this.#byId.get(kid);
    if (!master) {
      throw new SealError(`sealed under master key ${kid}, which this keyring does not hold`);
    }
    return { master, wrapped: Buffer.from(wrapped, 'base64url'), data: Buffer.from(data, 'base64url') };
  }
}
