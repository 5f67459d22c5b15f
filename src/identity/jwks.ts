import { importJWK, type JWK } from 'jose';
import { z } from 'zod';
import { type InvalidParam, InvalidRequestError } from '../core/index.ts';

/** Asymmetric JWS algorithms Warden accepts for agent and provider keys. */
export const ASYMMETRIC_ALGS = [
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
] as const;

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** A JSON Web Key as accepted on input: shape only; {@link assertPublicJwks} checks the rest. */
export const jwkSchema = z
  .object({
    kty: z.string().max(10),
    kid: z.string().min(1).max(200),
    alg: z.string().max(20).optional(),
    use: z.string().max(10).optional(),
    key_ops: z.array(z.string().max(20)).max(10).optional(),
    crv: z.string().max(20).optional(),
    x: z.string().max(2048).optional(),
    y: z.string().max(2048).optional(),
    n: z.string().max(4096).optional(),
    e: z.string().max(16).optional(),
  })
  // Private members are let through the shape check so they can be refused with a clear reason.
  .catchall(z.unknown());

export const jwksSchema = z.object({ keys: z.array(jwkSchema).min(1).max(20) }).strict();

export type PublicJwks = { keys: JWK[] };

/**
 * Checks that a JWKS holds only public, asymmetric signing keys that import cleanly, each with a
 * unique `kid`. Private key members and symmetric (`oct`) keys are refused: Warden never holds an
 * agent's or provider's private key, and shared secrets are not a form of agent authentication.
 * @throws InvalidRequestError naming each bad key.
 */
export async function assertPublicJwks(
  jwks: { keys: Record<string, unknown>[] },
  field: string,
): Promise<PublicJwks> {
  const problems: InvalidParam[] = [];
  const seen = new Set<string>();
  const clean: JWK[] = [];
  for (const [i, key] of jwks.keys.entries()) {
    const name = `${field}.keys[${i}]`;
    const priv = PRIVATE_MEMBERS.filter((m) => m in key);
    if (key.kty === 'oct') {
      problems.push({ name, reason: 'symmetric (oct) keys are refused: agents authenticate with key pairs' });
      continue;
    }
    if (priv.length > 0) {
      problems.push({
        name,
        reason: `contains private key members (${priv.join(', ')}); register only the public key`,
      });
      continue;
    }
    if (!['EC', 'OKP', 'RSA'].includes(String(key.kty))) {
      problems.push({ name: `${name}.kty`, reason: 'must be EC, OKP or RSA' });
      continue;
    }
    if (key.alg !== undefined && !(ASYMMETRIC_ALGS as readonly string[]).includes(String(key.alg))) {
      problems.push({ name: `${name}.alg`, reason: `must be one of ${ASYMMETRIC_ALGS.join(', ')}` });
      continue;
    }
    if (key.use !== undefined && key.use !== 'sig') {
      problems.push({ name: `${name}.use`, reason: 'must be "sig"' });
      continue;
    }
    const kid = String(key.kid);
    if (seen.has(kid)) {
      problems.push({ name: `${name}.kid`, reason: 'duplicate kid' });
      continue;
    }
    seen.add(kid);
    if (key.kty === 'RSA' && typeof key.n === 'string' && Buffer.from(key.n, 'base64url').length < 256) {
      problems.push({ name: `${name}.n`, reason: 'RSA keys must be at least 2048 bits' });
      continue;
    }
    const pub: JWK = Object.fromEntries(
      Object.entries(key).filter(([k]) =>
        ['kty', 'kid', 'alg', 'use', 'crv', 'x', 'y', 'n', 'e'].includes(k),
      ),
    ) as JWK;
    try {
      await importJWK(pub, pub.alg ?? defaultAlg(pub));
    } catch (e) {
      problems.push({ name, reason: `not a valid public key: ${(e as Error).message}` });
      continue;
    }
    clean.push(pub);
  }
  if (problems.length > 0) {
    throw new InvalidRequestError(`${field} is not an acceptable public JWKS`, {
      code: 'ERR_INVALID_JWKS',
      invalidParams: problems,
    });
  }
  return { keys: clean };
}

/** The JWS algorithm implied by a key when it names none. */
export function defaultAlg(jwk: JWK): string {
  if (jwk.kty === 'EC') return jwk.crv === 'P-384' ? 'ES384' : jwk.crv === 'P-521' ? 'ES512' : 'ES256';
  if (jwk.kty === 'OKP') return 'EdDSA';
  return 'RS256';
}
