import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

/** A fresh public JWKS (and its private key) for a provider or an agent. */
export async function keyPair(
  alg = 'ES256',
): Promise<{ publicJwk: JWK; privateJwk: JWK; jwks: { keys: JWK[] } }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const publicJwk = { ...pub, kid, alg, use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { publicJwk, privateJwk, jwks: { keys: [publicJwk] } };
}

/** A template spec with sensible defaults for tests. */
export function templateSpec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    description: 'Support agent: reads and creates tickets',
    allowed_scopes: ['tickets:read', 'tickets:write'],
    allowed_tools: ['tickets.search', 'tickets.create'],
    token_lifetime: 300,
    ...overrides,
  };
}
