import {
  createLocalJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTHeaderParameters,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import type { Clock } from '../core/index.ts';

/** Access-token signing algorithms the gateway accepts: asymmetric only (RFC 9068 §4). */
export const ACCESS_TOKEN_ALGS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'RS256'] as const;

/** The claims of a verified RFC 9068 access token that the gateway acts on. */
export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope?: string;
  cnf?: { jkt?: string };
  act?: { sub: string; act?: unknown };
  /** Set by Warden on tokens issued on a verified provider attestation (src/tokens). */
  agent_attestation?: { digest?: unknown; iss?: unknown };
}

/** Why a token was refused: a stable code and a message safe to show (never the token). */
export class TokenRefusal extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Verifies a JWT access token for one audience. Implementations must fail closed. */
export interface TokenVerifier {
  /** @throws TokenRefusal */
  verify(token: string, audience: string): Promise<AccessTokenClaims>;
}

export interface JwtTokenVerifierOptions {
  /** Warden's issuer identifier; `iss` must equal it exactly. */
  issuer: string;
  /** Warden's token-signing keys (jose `createLocalJWKSet`/`createRemoteJWKSet` or equivalent). */
  keys: JWTVerifyGetKey;
  clock: Clock;
  /** Seconds of clock skew tolerated on exp/nbf/iat. */
  clockSkewSeconds?: number;
  algorithms?: readonly string[];
  /** How many verified tokens this verifier remembers (0: every presentation is verified in full). */
  cacheSize?: number;
}

/** A token verified before: its claims, and the header and key it was verified with. */
interface Verified {
  claims: AccessTokenClaims;
  header: JWTHeaderParameters;
  key: unknown;
}

/**
 * RFC 9068 access-token validation: `typ` must be `at+jwt`, the algorithm on the allow-list, the
 * signature valid under Warden's signing keys (the `kid` must name one), `iss` exact, `aud` this
 * resource, `exp`/`nbf`/`iat` within a small skew, and the claims a resource server needs present.
 *
 * An agent presents the same token on every call until it expires, and the signature check is the
 * costliest part of that: a token verified for an audience is remembered (least recently used
 * dropped first). A remembered token is checked again for its times on every presentation, and is
 * verified in full again when the key set no longer returns the key that verified it (rotation or
 * removal). Revocation and the agent's status are checked after this step, on every call.
 */
export class JwtTokenVerifier implements TokenVerifier {
  readonly #options: Required<JwtTokenVerifierOptions>;
  readonly #verified = new Map<string, Verified>();

  constructor(options: JwtTokenVerifierOptions) {
    this.#options = { clockSkewSeconds: 5, algorithms: ACCESS_TOKEN_ALGS, cacheSize: 10_000, ...options };
  }

  async verify(token: string, audience: string): Promise<AccessTokenClaims> {
    const id = `${audience} ${token}`;
    const hit = this.#verified.get(id);
    if (hit) {
      this.#verified.delete(id);
      if (this.#timely(hit.claims) && (await this.#sameKey(hit, token))) {
        this.#verified.set(id, hit);
        return hit.claims;
      }
    }
    const verified = await this.#verify(token, audience);
    const o = this.#options;
    if (o.cacheSize > 0) {
      if (this.#verified.size >= o.cacheSize) {
        const oldest = this.#verified.keys().next().value;
        if (oldest !== undefined) this.#verified.delete(oldest);
      }
      this.#verified.set(id, verified);
    }
    return verified.claims;
  }

  /** The time checks of a remembered token (a failing one is verified in full, for the refusal). */
  #timely(claims: AccessTokenClaims): boolean {
    const o = this.#options;
    const now = Math.floor(o.clock.now() / 1000);
    return (
      claims.exp > now - o.clockSkewSeconds &&
      (typeof claims.nbf !== 'number' || claims.nbf <= now + o.clockSkewSeconds) &&
      claims.iat <= now + o.clockSkewSeconds
    );
  }

  /** True when the key set still returns the very key that verified a remembered token. */
  async #sameKey(hit: Verified, token: string): Promise<boolean> {
    try {
      const [, payload = '', signature = ''] = token.split('.');
      return (await this.#options.keys(hit.header, { payload, signature })) === hit.key;
    } catch {
      return false;
    }
  }

  /** Full verification. @throws TokenRefusal */
  async #verify(token: string, audience: string): Promise<Verified> {
    const o = this.#options;
    let payload: JWTPayload;
    let header: JWTHeaderParameters;
    let key: unknown;
    // Remembers which key verified the token, so a later presentation can ask for it again.
    const keys: JWTVerifyGetKey = async (h, t) => {
      key = await o.keys(h, t);
      return key as Awaited<ReturnType<JWTVerifyGetKey>>;
    };
    try {
      ({ payload, protectedHeader: header } = await jwtVerify(token, keys, {
        issuer: o.issuer,
        audience,
        typ: 'at+jwt',
        algorithms: [...o.algorithms],
        clockTolerance: o.clockSkewSeconds,
        currentDate: new Date(o.clock.now()),
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
      }));
    } catch (e) {
      throw refusalOf(e);
    }
    const now = Math.floor(o.clock.now() / 1000);
    if (typeof payload.iat !== 'number' || payload.iat > now + o.clockSkewSeconds) {
      throw new TokenRefusal('ERR_TOKEN_IAT', 'the access token was issued in the future');
    }
    if (typeof payload.client_id !== 'string' || payload.client_id.length === 0) {
      throw new TokenRefusal('ERR_TOKEN_CLAIMS', 'the access token has no client_id');
    }
    if (payload.scope !== undefined && typeof payload.scope !== 'string') {
      throw new TokenRefusal('ERR_TOKEN_CLAIMS', 'the access token scope must be a string');
    }
    if (payload.cnf !== undefined) {
      const cnf = payload.cnf as { jkt?: unknown };
      if (typeof cnf !== 'object' || cnf === null || (cnf.jkt !== undefined && typeof cnf.jkt !== 'string')) {
        throw new TokenRefusal('ERR_TOKEN_CLAIMS', 'the access token cnf claim is malformed');
      }
    }
    return { claims: Object.freeze(payload) as AccessTokenClaims, header, key };
  }
}

/**
 * Key lookup over a JWKS that can change (signing-key rotation): the current set is read on every
 * verification, and its imported keys are reused until the set changes.
 */
export function currentJwks(source: () => JSONWebKeySet): JWTVerifyGetKey {
  let last: string | undefined;
  let lookup: ReturnType<typeof createLocalJWKSet> | undefined;
  return (header, token) => {
    const jwks = source();
    const fingerprint = JSON.stringify(jwks);
    if (fingerprint !== last || !lookup) {
      last = fingerprint;
      lookup = createLocalJWKSet(jwks);
    }
    return lookup(header, token);
  };
}

/** Maps jose's errors to stable codes; the messages never include the token. */
function refusalOf(e: unknown): TokenRefusal {
  if (e instanceof errors.JWTExpired)
    return new TokenRefusal('ERR_TOKEN_EXPIRED', 'the access token has expired');
  if (e instanceof errors.JWTClaimValidationFailed) {
    const claim = e.claim;
    if (claim === 'nbf')
      return new TokenRefusal('ERR_TOKEN_NOT_YET_VALID', 'the access token is not valid yet');
    if (claim === 'aud') {
      return new TokenRefusal('ERR_TOKEN_AUDIENCE', 'the access token was issued for another resource');
    }
    if (claim === 'iss')
      return new TokenRefusal('ERR_TOKEN_ISSUER', 'the access token was issued by another issuer');
    if (claim === 'typ')
      return new TokenRefusal('ERR_TOKEN_TYPE', 'the token is not an RFC 9068 access token (typ at+jwt)');
    return new TokenRefusal('ERR_TOKEN_CLAIMS', `the access token claim ${claim} is missing or invalid`);
  }
  if (e instanceof errors.JOSEAlgNotAllowed) {
    return new TokenRefusal('ERR_TOKEN_ALG', 'the access token signing algorithm is not accepted');
  }
  if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) {
    return new TokenRefusal('ERR_TOKEN_KEY', 'the access token is not signed by a known Warden key');
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) {
    return new TokenRefusal('ERR_TOKEN_SIGNATURE', 'the access token signature is invalid');
  }
  if (
    e instanceof errors.JWTInvalid ||
    e instanceof errors.JWSInvalid ||
    e instanceof errors.JOSENotSupported
  ) {
    return new TokenRefusal('ERR_TOKEN_MALFORMED', 'the access token is malformed');
  }
  return new TokenRefusal('ERR_TOKEN_INVALID', 'the access token could not be verified');
}
