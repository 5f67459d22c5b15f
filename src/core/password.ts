import { randomBytes } from 'node:crypto';
import { argon2id, argon2Verify } from 'hash-wasm';

/**
 * Argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane). hash-wasm is used
 * because it is WebAssembly: no native addon to compile for each Node.js version.
 */
const PARAMS = { parallelism: 1, iterations: 2, memorySize: 19_456, hashLength: 32 } as const;

/** Hashes a password to a PHC-format argon2id string. */
export function hashPassword(password: string): Promise<string> {
  return argon2id({ ...PARAMS, password, salt: randomBytes(16), outputType: 'encoded' });
}

/** Checks a password against a PHC-format argon2id hash, in constant time. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  try {
    return await argon2Verify({ password, hash: encoded });
  } catch {
    return false;
  }
}
