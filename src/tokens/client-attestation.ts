import { createPublicKey, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { calculateJwkThumbprint, compactVerify, type JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { Clock } from '../core/index.ts';
import {
  type AgentRegistry,
  attestationDigest,
  attestationRefusal,
  attestedClaimsOf,
  type ResolvedAgent,
} from '../identity/index.ts';
import { type PresentedAttestation, type RequestState, requestState } from './request-state.ts';

type Errors = typeof import('oidc-provider').errors;
type AttestFeature = NonNullable<NonNullable<Configuration['features']>['attestClientAuth']>;

/** The draft revision oidc-provider 9.13 implements; enabling the experimental feature needs it. */
const ACK = 'draft-12';
const ATTESTATION_MAX_CHARS = 8 * 1024;
/** An attestation is a credential: one valid for longer than a day is refused. */
const MAX_ATTESTATION_LIFETIME_S = 24 * 3600;
/** A PoP is made for one request; its `iat` must be this recent (the challenge bounds it too). */
const POP_MAX_AGE_S = 300;
const CLOCK_TOLERANCE_S = 5;
const KEY_CACHE_MAX = 1000;

/** The token claim carrying what was attested (RFC 9068 access tokens, and introspection). */
export const ATTESTATION_CLAIM = 'agent_attestation';

/** Which attestation a request presents, by its headers (the library picks the method the same way). */
export function presentedAttestation(headers: IncomingHttpHeaders): PresentedAttestation | undefined {
  if (headers['oauth-client-attestation'] === undefined) return undefined;
  return headers['oauth-client-attestation-pop'] === undefined && headers.dpop !== undefined
    ? 'dpop_combined'
    : 'attestation_pop_jwt';
}

/**
 * The client's `token_endpoint_auth_method` for this request. A template that requires attestation
 * allows only attestation; otherwise an agent authenticates with `private_key_jwt`, or with an
 * attestation when it presents one (voluntary attestation is verified and recorded the same way).
 */
export function clientAuthMethod(required: boolean, presented: PresentedAttestation | undefined): string {
  if (presented === 'dpop_combined') return 'attest_jwt_client_auth_dpop';
  if (presented || required) return 'attest_jwt_client_auth';
  return 'private_key_jwt';
}

export interface ClientAttestationOptions {
  agents: AgentRegistry;
  clock: Clock;
  /** Called once a client has authenticated by attestation (the token endpoint's rate limit). */
  authenticated: (ctx: KoaContextWithOIDC, clientId: string) => void;
}

/**
 * OAuth 2.0 Attestation-Based Client Authentication for agents, on oidc-provider's
 * `attestClientAuth` feature: the library verifies both JWTs (typ, signature, `sub` = client id,
 * `exp`, PoP `aud` = issuer, single-use `jti`, server challenge); Warden supplies the provider's
 * registered key, checks the attestation against the agent's provider and template, and records
 * what was attested (request state → token claim, audit details, `agent_instances`).
 */
export class ClientAttestation {
  readonly #opts: ClientAttestationOptions;
  readonly #keys = new Map<string, KeyObject>();

  constructor(opts: ClientAttestationOptions) {
    this.#opts = opts;
  }

  /** The `features.attestClientAuth` configuration. */
  feature(challengeSecret: Buffer, errors: Errors): AttestFeature {
    const refuse = (reason: string): never => {
      const state = requestState();
      if (state) state.refusal = reason;
      throw new errors.InvalidClientAuth(reason);
    };
    return {
      enabled: true,
      ack: ACK,
      challengeSecret,
      getAttestationSignaturePublicKey: async (ctx, header, payload, client) => {
        if (ctx.get('oauth-client-attestation').length > ATTESTATION_MAX_CHARS)
          refuse('attestation_too_large');
        const resolved = await this.#resolve(client.clientId);
        if (!resolved.usable) refuse(unusableReason(resolved));
        const { provider } = resolved;
        // The attestation must come from the agent's own provider, by id or name.
        if (payload.iss !== provider.id && payload.iss !== provider.name)
          refuse('attestation_issuer_mismatch');
        if (typeof header.kid !== 'string') refuse('attestation_kid_missing');
        const jwk = provider.jwks.keys.find((k) => k.kid === header.kid) as JWK | undefined;
        if (!jwk) return refuse('attestation_key_unknown');
        if (jwk.alg !== undefined && jwk.alg !== header.alg) refuse('attestation_alg_mismatch');
        const key = this.#importKey(jwk);
        const state = requestState();
        if (state) state.attestationKey = key;
        return key;
      },
      assertAttestationJwtAndPop: async (ctx, attestation, pop, client) => {
        const state = requestState();
        const resolved = await this.#resolve(client.clientId);
        if (!resolved.usable) refuse(unusableReason(resolved));
        const payload = attestation.payload as Record<string, unknown> & {
          iat: number;
          exp: number;
          cnf: { jwk: JWK };
        };
        if (payload.exp - payload.iat > MAX_ATTESTATION_LIFETIME_S) refuse('attestation_lifetime_too_long');
        const combined = ctx.get('oauth-client-attestation-pop') === '';
        if (!combined) {
          // In combined mode the DPoP proof is the PoP and the library has checked it as one.
          const { iss, iat } = pop.payload as { iss?: unknown; iat?: unknown };
          if (iss !== undefined && iss !== client.clientId) refuse('attestation_pop_issuer_mismatch');
          const now = this.#opts.clock.now() / 1000;
          if (typeof iat !== 'number' || iat < now - POP_MAX_AGE_S || iat > now + CLOCK_TOLERANCE_S) {
            refuse('attestation_pop_stale');
          }
        }
        const claims = attestedClaimsOf(payload);
        if (!claims) return refuse('attestation_claims_invalid');
        const reason = attestationRefusal(resolved.template.spec.attestation, claims);
        if (reason) refuse(reason);
        if (state) {
          state.attested = {
            method: combined ? 'dpop_combined' : 'attestation_pop_jwt',
            providerId: resolved.provider.id,
            kid: String(attestation.protectedHeader.kid),
            instanceId: await calculateJwkThumbprint(payload.cnf.jwk),
            claims,
            digest: attestationDigest(claims),
            expiresAt: payload.exp * 1000,
          };
        }
        if (ctx.oidc.route === 'token') this.#opts.authenticated(ctx, client.clientId);
      },
    } as AttestFeature;
  }

  /**
   * A token lifetime (seconds) that does not outlive the attestation it is issued on: a token whose
   * attestation expires sooner lives only as long.
   */
  lifetime(seconds: number): number {
    const a = requestState()?.attested;
    if (!a) return seconds;
    const left = Math.floor((a.expiresAt - this.#opts.clock.now()) / 1000);
    return Math.max(1, Math.min(seconds, left));
  }

  /** The access token claim for the current request's verified attestation, if any. */
  tokenClaims(): Record<string, unknown> {
    const a = requestState()?.attested;
    return a ? { [ATTESTATION_CLAIM]: { digest: a.digest, iss: a.providerId } } : {};
  }

  /** Details for the `token.issued` event: the attested claims and the provider key's id. */
  auditDetails(state: RequestState): Record<string, unknown> {
    const a = state.attested;
    if (!a) return {};
    return {
      attestation: {
        method: a.method,
        provider_id: a.providerId,
        kid: a.kid,
        instance_id: a.instanceId,
        ...a.claims,
        digest: a.digest,
        exp: Math.floor(a.expiresAt / 1000),
      },
    };
  }

  /** Keeps the latest attested claims of the instance (in the `token.issued` transaction). */
  async persist(tx: Kysely<any>, state: RequestState, agentId: string): Promise<void> {
    const a = state.attested;
    if (!a) return;
    await this.#opts.agents.instances.record(tx, {
      agentId,
      instanceId: a.instanceId,
      providerId: a.providerId,
      providerKid: a.kid,
      claims: a.claims,
      digest: a.digest,
      expiresAt: a.expiresAt,
    });
  }

  /**
   * A stable reason code for a refused attestation (for the audit event), from the library's error
   * and its cause; undefined when the request carried no attestation or the error is not about it.
   */
  async refusalReason(
    ctx: KoaContextWithOIDC,
    error: (Error & Record<string, unknown>) | undefined,
    state: RequestState,
  ): Promise<string | undefined> {
    if (!state.attestation || !error) return undefined;
    const detail = typeof error.error_detail === 'string' ? error.error_detail : '';
    if (/attestation-pop tokens must only be used once/.test(detail)) return 'attestation_pop_replayed';
    if (/oauth-client-attestation-pop missing/.test(detail)) return 'attestation_pop_missing';
    if (/does not match the Client Attestation key/.test(detail)) return 'attestation_dpop_key_mismatch';
    if (/OAuth-Client-Attestation format/.test(String(error.error_description)))
      return 'attestation_malformed';
    const cause = error.cause as { code?: string; claim?: string; payload?: { cnf?: unknown } } | undefined;
    const which = cause?.payload?.cnf !== undefined ? 'attestation' : 'attestation_pop';
    switch (cause?.code) {
      case 'ERR_JWT_EXPIRED':
        return `${which}_expired`;
      case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
        return `${which}_${cause.claim ?? 'claims'}_invalid`;
      case 'ERR_JOSE_ALG_NOT_ALLOWED':
        return 'attestation_alg_not_allowed';
      case 'ERR_JWT_INVALID':
      case 'ERR_JWS_INVALID':
        return 'attestation_malformed';
      case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': {
        // The attestation verifies under the provider key: the PoP was signed by another key.
        const key = state.attestationKey;
        const attestation = ctx.get('oauth-client-attestation');
        if (
          key &&
          (await compactVerify(attestation, key).then(
            () => true,
            () => false,
          ))
        ) {
          return 'attestation_pop_signature_invalid';
        }
        return 'attestation_signature_invalid';
      }
      default:
        return /invalid cnf\.jwk/.test(detail) ? 'attestation_cnf_invalid' : undefined;
    }
  }

  async #resolve(clientId: string): Promise<ResolvedAgent> {
    const state = requestState();
    if (state?.resolved?.agent.id === clientId) return state.resolved;
    return this.#opts.agents.resolve(clientId);
  }

  /** Provider keys are imported once (node:crypto key objects verify faster than re-imports). */
  #importKey(jwk: JWK): KeyObject {
    const id = JSON.stringify(jwk);
    let key = this.#keys.get(id);
    if (!key) {
      key = createPublicKey({ key: jwk as never, format: 'jwk' });
      if (this.#keys.size >= KEY_CACHE_MAX) this.#keys.clear();
      this.#keys.set(id, key);
    }
    return key;
  }
}

function unusableReason(resolved: ResolvedAgent): string {
  if (resolved.provider.status !== 'trusted') return 'provider_distrusted';
  return resolved.agent.status !== 'active' ? `agent_${resolved.agent.status}` : 'agent_unusable';
}
