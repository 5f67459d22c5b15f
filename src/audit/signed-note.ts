import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { InvalidRequestError } from '../core/index.ts';

/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures, and the C2SP
 * transparency log checkpoint body (https://c2sp.org/tlog-checkpoint).
 *
 * A signed note is the note text (ending in a newline), a blank line, then signature lines
 * `— <key name> <base64(key id || signature)>`. The key id is the first 4 bytes of
 * `SHA-256(key name || 0x0A || 0x01 || public key)` (0x01: the Ed25519 signature type); the
 * signature is Ed25519 over the note text, final newline included. A verifier key is shared as
 * `<key name>+<hex key id>+<base64(0x01 || public key)>`.
 */

const ED25519_TYPE = 0x01;
const EM_DASH = '\u2014';

/** An Ed25519 public key with its note name: what a verifier needs, and all it needs. */
export interface NoteVerifier {
  name: string;
  keyId: Buffer;
  publicKey: KeyObject;
  /** `<name>+<hex key id>+<base64(0x01 || raw public key)>`. */
  text: string;
}

function assertKeyName(name: string): void {
  if (name.length === 0 || /[\s+]/u.test(name)) {
    throw new InvalidRequestError('a note key name is non-empty, without spaces or "+"', {
      code: 'ERR_AUDIT_KEY',
    });
  }
}

/** The 32 raw bytes of an Ed25519 public key. */
export function rawEd25519(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' }) as { crv?: string; x?: string };
  if (jwk.crv !== 'Ed25519' || !jwk.x) throw new TypeError('not an Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}

/** `SHA-256(name || 0x0A || 0x01 || raw public key)[:4]`. */
export function noteKeyId(name: string, rawPublicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, ED25519_TYPE]))
    .update(rawPublicKey)
    .digest()
    .subarray(0, 4);
}

/** Builds the verifier for an Ed25519 public key under `name`. */
export function noteVerifier(name: string, publicKey: KeyObject): NoteVerifier {
  assertKeyName(name);
  const raw = rawEd25519(publicKey);
  const keyId = noteKeyId(name, raw);
  const text = `${name}+${keyId.toString('hex')}+${Buffer.concat([Buffer.from([ED25519_TYPE]), raw]).toString('base64')}`;
  return { name, keyId, publicKey, text };
}

/** Parses a verifier key `<name>+<hex id>+<base64(0x01 || key)>`. @throws InvalidRequestError */
export function parseNoteVerifier(text: string): NoteVerifier {
  const bad = (why: string) =>
    new InvalidRequestError(`not an Ed25519 verifier key: ${why}`, { code: 'ERR_AUDIT_KEY' });
  // The base64 key may itself contain '+': split at the first two only.
  const m = /^([^+]+)\+([^+]*)\+(.*)$/s.exec(text.trim());
  if (!m) throw bad('expected <name>+<key id>+<key>');
  const [, name, idHex, keyB64] = m as unknown as [string, string, string, string];
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw bad('the key id is 8 hex digits');
  const key = Buffer.from(keyB64, 'base64');
  if (key.toString('base64') !== keyB64) throw bad('the key is not canonical base64');
  if (key.length !== 33 || key[0] !== ED25519_TYPE) throw bad('the key is 0x01 followed by 32 bytes');
  assertKeyName(name);
  const raw = key.subarray(1);
  if (!noteKeyId(name, raw).equals(Buffer.from(idHex, 'hex'))) throw bad('the key id does not match the key');
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
  return { name, keyId: Buffer.from(idHex, 'hex'), publicKey, text: text.trim() };
}

/** Signs `text` (which must end in a newline) and returns the signed note. */
export function signNote(text: string, verifier: NoteVerifier, privateKey: KeyObject): string {
  if (!text.endsWith('\n')) throw new TypeError('note text ends with a newline');
  const sig = sign(null, Buffer.from(text, 'utf8'), privateKey);
  return `${text}\n${EM_DASH} ${verifier.name} ${Buffer.concat([verifier.keyId, sig]).toString('base64')}\n`;
}

/**
 * Opens a signed note: returns its text when a signature line by `verifier` (same name and key
 * id) verifies; lines from other keys are ignored, as the spec requires. Returns undefined when
 * the note is malformed or not validly signed by `verifier`.
 */
export function openNote(note: string, verifier: NoteVerifier): string | undefined {
  if (!note.endsWith('\n')) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the spec forbids control characters
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) return undefined;
  const split = note.lastIndexOf('\n\n');
  if (split < 0) return undefined;
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  for (const line of lines) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u.exec(line);
    if (!m) return undefined;
    if (m[1] !== verifier.name) continue;
    const blob = Buffer.from(m[2] as string, 'base64');
    if (blob.length !== 4 + 64 || !blob.subarray(0, 4).equals(verifier.keyId)) continue;
    if (verify(null, Buffer.from(text, 'utf8'), verifier.publicKey, blob.subarray(4))) return text;
  }
  return undefined;
}

/** A C2SP tlog-checkpoint body. */
export interface CheckpointBody {
  origin: string;
  size: number;
  root: Buffer;
}

/** `<origin>\n<size>\n<base64 root>\n`. */
export function checkpointText(body: CheckpointBody): string {
  return `${body.origin}\n${body.size}\n${body.root.toString('base64')}\n`;
}

/** Parses a checkpoint body (extension lines are ignored). Undefined when malformed. */
export function parseCheckpointText(text: string): CheckpointBody | undefined {
  const lines = text.split('\n');
  if (lines.length < 4 || lines.at(-1) !== '') return undefined;
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!origin || !/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) return undefined;
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootText) return undefined;
  return { origin, size: Number(sizeText), root };
}
