import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JWK,
  type JWTPayload,
  jwtVerify,
} from 'jose';
import type { Configuration, KoaContextWithOIDC, default as Provider } from 'oidc-provider';
import type { AuditActor, AuditEventInput, Auditor, AuditRequestMeta } from '../audit/index.ts';
import type { Keyring } from '../core/index.ts';
import { type Clock, type Logger, NotFoundError, type WardenConfig } from '../core/index.ts';
import type { AgentRegistry } from '../identity/index.ts';
import type { Store } from '../store/index.ts';
import { adapterFor, CLIENT_EXTRA_PROPERTIES } from './agent-clients.ts';
import { ClientAttestation, presentedAttestation } from './client-attestation.ts';
import { type DelegationGrant, DelegationGrants, isGrantActive } from './delegation-grants.ts';
import {
  createGrant,
  type DelegationUsers,
  type GrantAdminDeps,
  type GrantRequest,
  type GrantRevocation,
  revokeGrant,
} from './grant-admin.ts';
import { IssuedTokens } from './issued-tokens.ts';
import { RateLimiter } from './rate-limiter.ts';
import { type ClaimKind, ReplayCache, ReplayClaims, ReplayDetectedError } from './replay-cache.ts';
import { type RequestState, requestState, withRequestState } from './request-state.ts';
import { sharedSecret } from './server-secrets.ts';
import { type SigningKey, SigningKeyStore } from './signing-keys.ts';
import { loadGrantHelpers, TOKEN_EXCHANGE_GRANT, TokenExchange } from './token-exchange.ts';
import type { UpstreamExchange, UpstreamExchangeOutcome } from './upstream-exchange.ts';

type OidcProviderModule = typeof import('oidc-provider');
let oidcProviderModule: OidcProviderModule | undefined;

/**
 * oidc-provider (and Koa beneath it) is loaded on first use, not at import: CLI commands that never
 * start a node (most of them) import this part through the HTTP assembly and should not pay for it.
 */
async function loadOidcProvider(): Promise<OidcProviderModule> {
  oidcProviderModule ??= await import('oidc-provider');
  return oidcProviderModule;
}

/** Asymmetric JWS algorithms accepted for client assertions and DPoP proofs. `none` and HS* never. */
const CLIENT_ALGS = [
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
  'Ed25519',
  'EdDSA',
];
const ASSERTION_MAX_CHARS = 8 * 1024;
const TOKEN_MAX_CHARS = 16 * 1024;
const ROUTES = new Set(['token', 'introspection', 'revocation']);
const ACCESS_TOKEN_ALGS = ['ES256', 'EdDSA', 'RS256'];

export interface TokenServiceOptions {
  /** The issuer identifier: Warden's public URL. */
  issuer: string;
  config: WardenConfig['tokens'];
  trustProxy: boolean;
  store: Store;
  keyring: Keyring;
  clock: Clock;
  logger: Logger;
  auditor: Auditor;
  agents: AgentRegistry;
  /** The users delegation grants and token exchange are about. */
  users: DelegationUsers;
  /**
   * The vault's exchange mode: decides (policy) and mints (vault) an upstream access token for a
   * token exchange whose `resource` names a vault connection. Absent, such requests are refused.
   */
  upstreamExchange?: UpstreamExchange | undefined;
}

/** The RFC 7662 response: `{active:false}` alone, or the token's claims. */
export type IntrospectionResponse = { active: false } | ({ active: true } & Record<string, unknown>);

/**
 * Warden's OAuth 2 authorization server: oidc-provider configured for agents (client credentials,
 * private_key_jwt only, DPoP, JWT access tokens per RFC 9068, resource indicators), with Warden's
 * registry behind client lookup, the store behind replay detection, and Warden's own answers for
 * introspection and revocation of JWT access tokens (which the library refuses to handle).
 */
export class TokenService {
  readonly issuer: string;
  readonly resources: string[];
  readonly issued: IssuedTokens;
  readonly replay: ReplayCache;
  readonly keys: SigningKeyStore;
  readonly attestation: ClientAttestation;
  /** What users delegated to agents: the ceiling of token exchange. */
  readonly grants: DelegationGrants;
  readonly #opts: TokenServiceOptions;
  readonly #limiter: RateLimiter;
  readonly #exchange: TokenExchange;
  readonly #touched = new Map<string, number>();
  readonly #errors = new WeakMap<object, Error & Record<string, unknown>>();
  #nonceSecret: Buffer = Buffer.alloc(0);
  #challengeSecret: Buffer = Buffer.alloc(0);
  #lib!: OidcProviderModule;
  #provider!: Provider;
  #callback!: (req: IncomingMessage, res: ServerResponse) => void;
  #signing: SigningKey[] = [];
  #verifyKeys!: ReturnType<typeof createLocalJWKSet>;
  #timers: NodeJS.Timeout[] = [];
  #unsubscribe: (() => void) | undefined;
  #reloading: Promise<void> | undefined;

  private constructor(opts: TokenServiceOptions) {
    this.#opts = opts;
    this.issuer = opts.issuer;
    this.resources = opts.config.resources.length > 0 ? opts.config.resources : [opts.issuer];
    this.issued = new IssuedTokens(opts.store, opts.clock);
    this.replay = new ReplayCache(opts.store, opts.clock);
    this.keys = new SigningKeyStore(opts.store, opts.keyring, opts.clock);
    this.grants = new DelegationGrants(opts.store, opts.clock);
    this.#exchange = new TokenExchange({
      issuer: opts.issuer,
      resources: this.resources,
      config: opts.config,
      grants: this.grants,
      issued: this.issued,
      users: opts.users,
      clock: opts.clock,
      activeClaims: (token) => this.#activeClaims(token),
      upstream: opts.upstreamExchange,
    });
    this.#limiter = new RateLimiter(opts.config.rateLimitPerSecond, opts.config.rateLimitBurst, opts.clock);
    this.attestation = new ClientAttestation({
      agents: opts.agents,
      clock: opts.clock,
      authenticated: (ctx, clientId) => this.#rateLimit(ctx, clientId),
    });
  }

  /** Loads (or creates) keys and secrets, builds the provider, and starts the housekeeping loops. */
  static async create(opts: TokenServiceOptions): Promise<TokenService> {
    const service = new TokenService(opts);
    service.#lib = await loadOidcProvider();
    await loadGrantHelpers();
    service.#nonceSecret = await sharedSecret(opts.store, opts.keyring, opts.clock, 'dpop_nonce');
    service.#challengeSecret = await sharedSecret(
      opts.store,
      opts.keyring,
      opts.clock,
      'attestation_challenge',
    );
    await service.#reload();
    service.#unsubscribe = opts.store.changes.subscribe('tokens.keys', () => {
      service
        .reloadKeys()
        .catch((e: unknown) =>
          opts.logger.error(
            { err: { message: (e as Error).message } },
            'token signing keys could not be reloaded',
          ),
        );
    });
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const t = setInterval(() => {
        fn().catch((e: unknown) =>
          opts.logger.error({ err: { message: (e as Error).message } }, 'token service housekeeping failed'),
        );
      }, ms);
      t.unref();
      service.#timers.push(t);
    };
    every(60_000, () => service.rotateKeysIfDue());
    every(60_000, () =>
      Promise.all([service.replay.purge(), service.issued.purge(), opts.agents.instances.purge()]),
    );
    return service;
  }

  /** The key ids currently published, the signing one first. */
  get publishedKids(): string[] {
    return this.#signing.map((k) => k.kid);
  }

  /** The public JWKS (what `/jwks` serves). */
  get publicJwks(): { keys: JWK[] } {
    return { keys: this.#signing.map((k) => k.publicJwk) };
  }

  /** Hands a raw Node request for an authorization server route to oidc-provider. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.#callback(req, res);
  }

  /**
   * Makes a new signing key active now (audited); old public keys stay published until every
   * token they signed has expired.
   */
  async rotateKeys(actor: AuditActor = SYSTEM, request?: AuditRequestMeta): Promise<string> {
    const alg = this.#opts.config.signingAlg;
    const kid = await this.#opts.auditor.transact(
      (tx) => this.keys.rotate(alg, tx),
      (newKid) => rotationEvent(newKid, alg, actor, 'oauth.keys.rotate', request),
    );
    await this.reloadKeys();
    return kid;
  }

  /**
   * Creates a delegation grant (audited `delegation.grant_created`): scopes within the agent
   * template's `allowed_scopes`, resources among the configured ones, the user active.
   */
  createGrant(input: GrantRequest, actor: AuditActor, request?: AuditRequestMeta): Promise<DelegationGrant> {
    return createGrant(this.#grantDeps(), input, actor, request);
  }

  /**
   * Revokes a grant and every access token issued under it (or derived from one) in one
   * transaction; each token id is published on `tokens.revoked`, so introspection and the gateway
   * refuse them at once. Audited `delegation.grant_revoked`.
   */
  revokeGrant(
    id: string,
    actor: AuditActor,
    request?: AuditRequestMeta,
    reason?: string,
  ): Promise<GrantRevocation> {
    return revokeGrant(this.#grantDeps(), id, actor, request, reason);
  }

  #grantDeps(): GrantAdminDeps {
    const { auditor, clock, agents, users } = this.#opts;
    return {
      grants: this.grants,
      issued: this.issued,
      auditor,
      clock,
      agents,
      users,
      resources: this.resources,
    };
  }

  /** Rotates when the active key is older than the configured interval (every node may call it). */
  async rotateKeysIfDue(): Promise<string | undefined> {
    const interval = this.#opts.config.keyRotationSeconds * 1000;
    const age = await this.keys.activeAge();
    if (age !== undefined && age < interval) return undefined;
    const alg = this.#opts.config.signingAlg;
    const notDue = new Error('not due');
    try {
      const kid = await this.#opts.auditor.transact(
        async (tx) => {
          // Checked again inside the transaction: another node may have rotated meanwhile.
          const current = await this.keys.activeAge(tx);
          if (current !== undefined && current < interval) throw notDue;
          return this.keys.rotate(alg, tx);
        },
        (newKid) => rotationEvent(newKid, alg, SYSTEM, 'oauth.keys.scheduled_rotation'),
      );
      await this.reloadKeys();
      return kid;
    } catch (e) {
      if (e === notDue) return undefined;
      throw e;
    }
  }

  /** Re-reads the published keys and rebuilds the provider with them (after a rotation anywhere). */
  async reloadKeys(): Promise<void> {
    this.#reloading ??= this.#reload().finally(() => {
      this.#reloading = undefined;
    });
    await this.#reloading;
  }

  async #reload(): Promise<void> {
    const keys = await this.keys.load(this.#opts.config.signingAlg);
    this.#provider = this.#build(keys);
    this.#callback = this.#provider.callback();
    this.#signing = keys;
    this.#verifyKeys = createLocalJWKSet({ keys: keys.map((k) => k.publicJwk) });
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#unsubscribe?.();
  }

  #build(keys: SigningKey[]): Provider {
    const { config, agents } = this.#opts;
    const { default: OidcProvider, errors } = this.#lib;
    const signer = keys[0] as SigningKey;
    const resources = new Set(this.resources);
    const configuration: Configuration = {
      adapter: adapterFor(agents),
      clients: [],
      clientDefaults: {
        grant_types: ['client_credentials', TOKEN_EXCHANGE_GRANT],
        response_types: [],
        token_endpoint_auth_method: 'private_key_jwt',
        id_token_signed_response_alg: signer.alg,
      },
      clientAuthMethods: [
        'private_key_jwt',
        'attest_jwt_client_auth',
        'attest_jwt_client_auth_dpop' as never,
      ],
      enabledJWA: {
        clientAuthSigningAlgValues: CLIENT_ALGS as never,
        dPoPSigningAlgValues: CLIENT_ALGS as never,
        attestSigningAlgValues: CLIENT_ALGS as never,
      },
      jwks: { keys: keys.map((k) => k.privateJwk) as never },
      clockTolerance: 5,
      scopes: [],
      claims: {},
      responseTypes: ['none'],
      findAccount: async () => undefined,
      issueRefreshToken: async () => false,
      cookies: { keys: [this.#nonceSecret.toString('base64url')] },
      features: {
        devInteractions: { enabled: false },
        userinfo: { enabled: false },
        pushedAuthorizationRequests: { enabled: false },
        rpInitiatedLogout: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        revocation: { enabled: true },
        attestClientAuth: this.attestation.feature(this.#challengeSecret, errors),
        dPoP: {
          enabled: true,
          nonceSecret: this.#nonceSecret,
          requireNonce: () => config.dpopNonce === 'required',
        },
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => this.resources[0] as string,
          useGrantedResource: async () => false,
          getResourceServerInfo: async (ctx, resource, client) => {
            if (!resources.has(resource)) throw new errors.InvalidTarget();
            const extra = client as unknown as Record<string, unknown>;
            const template = requestTemplate(extra);
            // Scopes outside the template are dropped (the response says what was granted); a
            // request for nothing the template allows is refused rather than answered with an
            // empty token.
            const requested = String(ctx.oidc.params?.scope ?? '')
              .split(' ')
              .filter(Boolean);
            if (requested.length > 0 && !requested.some((s) => template.allowedScopes.includes(s))) {
              throw new errors.InvalidScope(
                'none of the requested scopes is allowed for this agent',
                requested.join(' '),
              );
            }
            return {
              audience: resource,
              scope: template.allowedScopes.join(' '),
              accessTokenTTL: this.attestation.lifetime(template.lifetime),
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: signer.alg, kid: signer.kid } },
            };
          },
        },
      },
      extraClientMetadata: {
        properties: [...CLIENT_EXTRA_PROPERTIES],
      },
      extraTokenClaims: async (_ctx, token) => {
        const client = (token as unknown as { client?: Record<string, unknown> }).client;
        if (!client) return undefined;
        const template = requestTemplate(client);
        return {
          agent_template: { id: template.id, version: template.version },
          ...this.attestation.tokenClaims(),
        };
      },
      assertJwtClientAuthClaimsAndHeader: async (ctx, claims, _header, client) => {
        // RFC 7523bis: the audience is the issuer identifier, alone; endpoint URLs are refused.
        if (claims.aud !== this.issuer) {
          throw new errors.InvalidClientAuth('audience (aud) must be the issuer identifier');
        }
        if (ctx.oidc.route === 'token') this.#rateLimit(ctx, client.clientId);
      },
      ttl: {
        ClientCredentials: (_ctx, _token, client) =>
          this.attestation.lifetime(requestTemplate(client as unknown as Record<string, unknown>).lifetime),
      },
      formats: {
        customizers: { jwt: async (_ctx, token, jwt) => this.#exchange.customize(token, jwt) },
      },
      renderError: async (ctx, out) => {
        ctx.type = 'application/json';
        ctx.body = out;
      },
      discovery: {
        authorization_details_types_supported: [],
      } as never,
    };
    const provider = new OidcProvider(this.issuer, configuration);
    provider.proxy = this.#opts.trustProxy;
    this.#exchange.register(provider, errors, signer);
    // Single use across every node: one atomic claim in the store instead of find-then-save. At the
    // token endpoint the ids are only reserved here and written with the request's outcome (the
    // issued token's record, or the refusal), so a token costs one durable commit, not three.
    Object.defineProperty(provider.ReplayDetection, 'unique', {
      value: (iss: string, jti: string, exp: number) => {
        const ctx = OidcProvider.ctx;
        const claims = requestState()?.claims;
        if (claims && ctx?.oidc?.route === 'token') {
          return this.replay.reserve(claims, iss, jti, exp, claimKind(ctx, jti));
        }
        return this.replay.claim(iss, jti, exp);
      },
    });
    for (const event of ['grant.error', 'introspection.error', 'revocation.error', 'server_error'] as const) {
      provider.on(event as 'grant.error', (ctx: KoaContextWithOIDC, err: Error) => {
        this.#errors.set(ctx, err as Error & Record<string, unknown>);
        if (event === 'server_error') {
          this.#opts.logger.error({ err: { message: err.message } }, 'authorization server error');
        }
      });
    }
    provider.use(async (ctx, next) => {
      const state: RequestState = {
        attestation: presentedAttestation(ctx.headers),
        claims: new ReplayClaims(),
      };
      const started = performance.now();
      if (tooLarge(ctx.req)) {
        ctx.status = 413;
        ctx.body = { error: 'invalid_request', error_description: 'request body too large' };
        await this.#recordRefusal(ctx as KoaContextWithOIDC, state, started, 'request_too_large');
        return;
      }
      await withRequestState(state, next);
      const oidc = (ctx as KoaContextWithOIDC).oidc;
      if (oidc && ROUTES.has(oidc.route)) await this.#after(ctx as KoaContextWithOIDC, state, started);
      await this.#settleClaims(ctx as KoaContextWithOIDC, state);
    });
    return provider;
  }

  /** Per-client token endpoint rate limit: 429 with Retry-After once the bucket is empty. */
  #rateLimit(ctx: KoaContextWithOIDC, clientId: string): void {
    const wait = this.#limiter.take(clientId);
    if (wait <= 0) return;
    ctx.set('retry-after', String(Math.max(1, Math.ceil(wait))));
    const err = new this.#lib.errors.CustomOIDCProviderError(
      'temporarily_unavailable',
      'too many token requests from this client; retry later',
    );
    Object.assign(err, { status: 429, statusCode: 429 });
    throw err;
  }

  async #after(ctx: KoaContextWithOIDC, state: RequestState, started: number): Promise<void> {
    const route = ctx.oidc.route;
    const error = this.#errors.get(ctx);
    if (route === 'token') {
      if (error && /DPoP proof JWT Replay detected/.test(String(error.error_detail ?? error.message))) {
        // RFC 9449 §4.3: a replayed proof is an invalid proof (the library says invalid_grant).
        ctx.body = { error: 'invalid_dpop_proof', error_description: 'DPoP proof JWT replay detected' };
      }
      if (ctx.status === 200 && state.upstream && isObject(ctx.body)) {
        await this.#recordUpstream(ctx, state, state.upstream, started);
      } else if (ctx.status === 200 && isObject(ctx.body) && typeof ctx.body.access_token === 'string') {
        await this.#recordIssued(ctx, state, started);
      } else {
        await this.#recordRefusal(ctx, state, started);
      }
      return;
    }
    // The library answers introspection and revocation only after authenticating the client; for a
    // JWT it then stops with unsupported_token_type. That is where Warden takes over.
    const token = ctx.oidc.params?.token;
    if (error?.error === 'unsupported_token_type' && typeof token === 'string' && ctx.oidc.client) {
      const clientId = ctx.oidc.client.clientId;
      ctx.status = 200;
      ctx.set('cache-control', 'no-store');
      if (route === 'introspection') {
        ctx.type = 'application/json';
        ctx.body = await this.introspect(token);
      } else {
        const outcome = await this.revoke(token, clientId, requestMeta(ctx));
        if (outcome === 'forbidden') {
          ctx.status = 400;
          ctx.type = 'application/json';
          ctx.body = {
            error: 'unauthorized_client',
            error_description: 'a token can be revoked only by the client it was issued to',
          };
        } else {
          ctx.body = '';
        }
      }
      return;
    }
    if (ctx.status >= 400) await this.#recordRefusal(ctx, state, started);
  }

  /**
   * RFC 7662 for a Warden access token: active only if its signature verifies under a published
   * key, it was issued here and not revoked, it has not expired, and its agent may still act
   * (not suspended or retired, provider trusted). Anything else is `{active:false}` alone.
   */
  async introspect(token: string): Promise<IntrospectionResponse> {
    const inactive = { active: false } as const;
    const payload = await this.#verifyAccessToken(token);
    if (!payload?.jti) return inactive;
    const record = await this.issued.find(payload.jti);
    const now = this.#opts.clock.now();
    if (!record || record.revokedAt !== null || record.expiresAt <= now) return inactive;
    try {
      const resolved = await this.#opts.agents.resolve(record.clientId);
      if (!resolved.usable) return inactive;
    } catch (e) {
      if (e instanceof NotFoundError) return inactive;
      throw e;
    }
    const { cnf, ...claims } = payload as JWTPayload & { cnf?: { jkt?: string } };
    return {
      ...claims,
      active: true,
      token_type: cnf?.jkt ? 'DPoP' : 'Bearer',
      ...(cnf ? { cnf } : {}),
    };
  }

  /** The claims of an active Warden access token (introspection rules), else undefined. */
  async #activeClaims(token: string): Promise<JWTPayload | undefined> {
    const result = await this.introspect(token);
    if (!result.active) return undefined;
    const { active: _active, token_type: _type, ...claims } = result;
    return claims as JWTPayload;
  }

  /**
   * RFC 7009 for a Warden access token. Unknown or foreign-signed tokens are a successful no-op;
   * a token issued to another client is refused.
   */
  async revoke(
    token: string,
    clientId: string,
    request?: AuditRequestMeta,
  ): Promise<'revoked' | 'unknown' | 'forbidden'> {
    const payload = await this.#verifyAccessToken(token, { ignoreExpiry: true });
    if (!payload?.jti) return 'unknown';
    const record = await this.issued.find(payload.jti);
    if (!record) return 'unknown';
    if (record.clientId !== clientId) {
      await this.#opts.auditor
        .record({
          type: 'token.refused',
          actor: { type: 'agent', id: clientId },
          action: 'oauth.revoke',
          resource: { type: 'access_token', id: record.jti },
          outcome: 'denied',
          error_code: 'unauthorized_client',
          request,
          details: { reason: 'not_token_owner', token_client_id: record.clientId },
        })
        .catch(() => undefined);
      return 'forbidden';
    }
    const jti = record.jti;
    await this.#opts.auditor.transact(
      (tx) => this.issued.revoke(tx, jti, 'revoked by its client'),
      (changed) => ({
        type: 'token.revoked',
        actor: { type: 'agent', id: clientId },
        action: 'oauth.revoke',
        resource: { type: 'access_token', id: jti },
        outcome: 'success',
        request,
        details: { already_revoked: !changed, exp: Math.floor(record.expiresAt / 1000) },
      }),
    );
    return 'revoked';
  }

  async #verifyAccessToken(
    token: string,
    opts: { ignoreExpiry?: boolean } = {},
  ): Promise<JWTPayload | undefined> {
    if (token.length > TOKEN_MAX_CHARS) return undefined;
    try {
      const { payload } = await jwtVerify(token, this.#verifyKeys, {
        issuer: this.issuer,
        typ: 'at+jwt',
        algorithms: ACCESS_TOKEN_ALGS,
        currentDate: new Date(this.#opts.clock.now()),
        ...(opts.ignoreExpiry ? { clockTolerance: 366 * 86_400 } : {}),
      });
      return payload;
    } catch {
      return undefined;
    }
  }

  /**
   * Records an exchange-mode answer (`vault.credential_exchanged`) with the request's single-use
   * ids, after checking once more that its grants are in force; the upstream token goes out only
   * if this commits. The event names the agent, user, grant and connection, never the token.
   */
  async #recordUpstream(
    ctx: KoaContextWithOIDC,
    state: RequestState,
    up: UpstreamExchangeOutcome,
    started: number,
  ): Promise<void> {
    try {
      await this.#opts.auditor.transact(
        async (tx) => {
          if (state.claims) await this.replay.write(tx, state.claims, true);
          await assertGrantsActive(this.grants, up.grantChain, tx, this.#opts.clock.now());
        },
        () => ({
          type: 'vault.credential_exchanged',
          actor: {
            type: 'agent',
            id: up.agentId,
            name: state.agentName,
            on_behalf_of: { type: 'user' as const, id: up.userId },
            chain: up.actors.map((id) => ({ type: 'agent' as const, id })),
          },
          action: 'vault.exchange',
          resource: { type: 'vault_connection', id: up.connectionId, name: up.connection },
          outcome: 'success',
          request: requestMeta(ctx),
          latency_ms: Math.round(performance.now() - started),
          decision: {
            effect: 'permit',
            reason: 'policy permits the exchange',
            policies: up.determiningPolicies,
          },
          details: {
            grant_type: ctx.oidc.params?.grant_type,
            grant_id: up.grantId,
            grant_chain: up.grantChain,
            account_id: up.accountId,
            scopes: up.scopes,
            issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
            token_type: 'Bearer',
            expires_in: up.expiresIn,
            dpop: typeof ctx.get('dpop') === 'string' && ctx.get('dpop') !== '',
          },
        }),
      );
      state.claims?.markSettled();
    } catch (e) {
      if (e instanceof ReplayDetectedError) {
        replayRefusal(ctx, e);
        await this.#recordRefusal(ctx, state, started, 'replay_detected');
        return;
      }
      if (e instanceof GrantNoLongerActive) {
        state.refusal = 'grant_revoked_during_issuance';
        ctx.status = 400;
        ctx.type = 'application/json';
        ctx.body = { error: 'invalid_grant', error_description: 'the delegation grant is no longer active' };
        await this.#recordRefusal(ctx, state, started);
        return;
      }
      this.#opts.logger.error(
        { err: { message: (e as Error).message } },
        'token exchange could not be recorded',
      );
      ctx.status = 503;
      ctx.type = 'application/json';
      ctx.body = {
        error: 'temporarily_unavailable',
        error_description: 'the exchange could not be recorded',
      };
    }
  }

  async #recordIssued(ctx: KoaContextWithOIDC, state: RequestState, started: number): Promise<void> {
    const body = ctx.body as Record<string, unknown>;
    const token = body.access_token as string;
    const claims = decodeJwt(token) as JWTPayload & {
      client_id: string;
      scope?: string;
      cnf?: { jkt?: string };
      agent_template: { id: string; version: number };
    };
    const { kid } = decodeProtectedHeader(token);
    const aud = Array.isArray(claims.aud) ? claims.aud.join(' ') : String(claims.aud);
    const record = {
      jti: claims.jti as string,
      clientId: claims.client_id,
      sub: claims.sub as string,
      aud,
      scope: claims.scope ?? '',
      jkt: claims.cnf?.jkt ?? null,
      kid: kid ?? '',
      templateId: claims.agent_template.id,
      templateVersion: claims.agent_template.version,
      issuedAt: (claims.iat as number) * 1000,
      expiresAt: (claims.exp as number) * 1000,
      grantId: state.exchange?.grantId ?? null,
      grantChain: state.exchange?.grantChain,
    };
    const requested = typeof ctx.oidc.params?.scope === 'string' ? ctx.oidc.params.scope : '';
    const exchange = state.exchange;
    try {
      await this.#opts.auditor.transact(
        async (tx) => {
          await this.replay.write(tx, state.claims as ReplayClaims, true);
          // A grant revoked while this token was being minted must not leave it alive.
          if (exchange)
            await assertGrantsActive(this.grants, exchange.grantChain, tx, this.#opts.clock.now());
          await this.issued.record(tx, record);
          await this.attestation.persist(tx, state, record.clientId);
        },
        () => ({
          type: 'token.issued',
          actor: {
            type: 'agent',
            id: record.clientId,
            name: state.agentName,
            ...(exchange
              ? {
                  on_behalf_of: { type: 'user' as const, id: exchange.userId },
                  chain: exchange.actors.map((id) => ({ type: 'agent' as const, id })),
                }
              : {}),
          },
          action: 'oauth.token',
          resource: { type: 'access_token', id: record.jti },
          outcome: 'success',
          request: requestMeta(ctx),
          latency_ms: Math.round(performance.now() - started),
          details: {
            grant_type: ctx.oidc.params?.grant_type,
            aud,
            scope: record.scope,
            requested_scope: requested,
            narrowed: requested
              .split(' ')
              .filter(Boolean)
              .some((s) => !record.scope.split(' ').includes(s)),
            dpop: record.jkt !== null,
            kid: record.kid,
            template_id: record.templateId,
            template_version: record.templateVersion,
            exp: claims.exp,
            ...this.attestation.auditDetails(state),
            ...(exchange
              ? {
                  grant_id: exchange.grantId,
                  grant_chain: exchange.grantChain,
                  subject: exchange.userId,
                  subject_issuer: exchange.subjectIssuer,
                  subject_token_type: exchange.subjectTokenType,
                  act: exchange.act,
                  delegation_depth: exchange.actors.length,
                }
              : {}),
          },
        }),
      );
      state.claims?.markSettled();
    } catch (e) {
      if (e instanceof ReplayDetectedError) {
        // Another request (on any node) won one of this request's single-use ids first; the ids it
        // did win are spent with the refusal.
        replayRefusal(ctx, e);
        await this.#recordRefusal(ctx, state, started, 'replay_detected');
        return;
      }
      if (e instanceof GrantNoLongerActive) {
        state.refusal = 'grant_revoked_during_issuance';
        ctx.status = 400;
        ctx.type = 'application/json';
        ctx.body = { error: 'invalid_grant', error_description: 'the delegation grant is no longer active' };
        await this.#recordRefusal(ctx, state, started);
        return;
      }
      // Fail closed: a token whose issuance cannot be recorded is never handed out.
      this.#opts.logger.error(
        { err: { message: (e as Error).message } },
        'issued token could not be recorded',
      );
      ctx.status = 503;
      ctx.type = 'application/json';
      ctx.body = { error: 'temporarily_unavailable', error_description: 'the token could not be recorded' };
      return;
    }
    // last_seen_at is coarse (a minute): one extra durable write per token would halve throughput.
    const now = this.#opts.clock.now();
    if ((this.#touched.get(record.clientId) ?? 0) < now - 60_000) {
      this.#touched.set(record.clientId, now);
      if (this.#touched.size > 100_000) this.#touched.clear();
      this.#opts.agents.touch(record.clientId).catch(() => undefined);
    }
  }

  /**
   * Writes single-use ids no outcome transaction took (e.g. a DPoP nonce challenge) before the
   * answer goes out; a success whose id another request won meanwhile becomes a refusal.
   */
  async #settleClaims(ctx: KoaContextWithOIDC, state: RequestState): Promise<void> {
    if (!state.claims || state.claims.settled) return;
    try {
      await this.replay.settle(state.claims);
    } catch (e) {
      if (e instanceof ReplayDetectedError) {
        if (ctx.status < 400) replayRefusal(ctx, e);
        return;
      }
      this.#opts.logger.error(
        { err: { message: (e as Error).message } },
        'single-use ids could not be written',
      );
      ctx.status = 503;
      ctx.type = 'application/json';
      ctx.body = { error: 'temporarily_unavailable', error_description: 'the request could not be recorded' };
    }
  }

  async #recordRefusal(
    ctx: KoaContextWithOIDC,
    state: RequestState,
    started: number,
    reason?: string,
  ): Promise<void> {
    const error = this.#errors.get(ctx);
    const body = isObject(ctx.body) ? ctx.body : {};
    const code = typeof body.error === 'string' ? body.error : 'server_error';
    // Protocol steps (RFC 9449 §8, the attestation challenge), not refusals.
    if (code === 'use_dpop_nonce' || code === 'use_attestation_challenge') return;
    const clientId = ctx.oidc?.client?.clientId ?? clientIdOf(ctx);
    const actor: AuditActor = clientId
      ? { type: 'agent', id: clientId, name: state.agentName }
      : { type: 'anonymous', id: 'unknown' };
    const detail =
      reason ??
      state.refusal ??
      (await this.attestation.refusalReason(ctx, error, state)) ??
      (typeof error?.error_detail === 'string' ? error.error_detail : undefined) ??
      (typeof body.error_description === 'string' ? body.error_description : undefined);
    const event: AuditEventInput = {
      type: 'token.refused',
      actor,
      action: `oauth.${ctx.oidc?.route ?? 'token'}`,
      outcome: 'denied',
      error_code: code,
      request: requestMeta(ctx),
      latency_ms: Math.round(performance.now() - started),
      details: {
        reason: detail,
        grant_type: ctx.oidc?.params?.grant_type,
        status: ctx.status,
        ...(state.upstreamAttempt
          ? {
              vault_connection: state.upstreamAttempt.connection,
              subject: state.upstreamAttempt.userId,
              grant_id: state.upstreamAttempt.grantId,
            }
          : {}),
      },
    };
    const claims = state.claims;
    // The refused request's single-use ids are spent too, written with its refusal.
    await (claims && !claims.settled
      ? this.#opts.auditor
          .transact(
            (tx) => this.replay.write(tx, claims, false),
            () => event,
          )
          .then(() => claims.markSettled())
      : this.#opts.auditor.record(event)
    ).catch((e: unknown) =>
      this.#opts.logger.error(
        { err: { message: (e as Error).message } },
        'token refusal could not be audited',
      ),
    );
  }
}

const SYSTEM: AuditActor = { type: 'system', id: 'tokens' };

class GrantNoLongerActive extends Error {}

async function assertGrantsActive(
  grants: DelegationGrants,
  ids: string[],
  tx: Parameters<DelegationGrants['revoke']>[0],
  now: number,
): Promise<void> {
  for (const id of ids) {
    const grant = await grants.find(id, tx, { lock: true });
    if (!grant || !isGrantActive(grant, now)) throw new GrantNoLongerActive(id);
  }
}

function rotationEvent(
  kid: string,
  alg: string,
  actor: AuditActor,
  action: string,
  request?: AuditRequestMeta,
): AuditEventInput {
  return {
    type: 'token.signing_key_rotated',
    actor,
    action,
    resource: { type: 'signing_key', id: kid },
    outcome: 'success',
    request,
    details: { alg },
  };
}

function requestTemplate(client: Record<string, unknown>): {
  id: string;
  version: number;
  lifetime: number;
  allowedScopes: string[];
} {
  const id = client.warden_template_id ?? client.wardenTemplateId;
  const version = client.warden_template_version ?? client.wardenTemplateVersion;
  const lifetime = client.warden_token_lifetime ?? client.wardenTokenLifetime;
  const scopes = client.warden_allowed_scopes ?? client.wardenAllowedScopes;
  if (typeof id !== 'string' || typeof version !== 'number' || typeof lifetime !== 'number') {
    throw new Error('agent client metadata lacks its template');
  }
  return {
    id,
    version,
    lifetime,
    allowedScopes: Array.isArray(scopes) ? (scopes as string[]) : [],
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v);
}

/** Request bodies above this are refused before parsing: assertions are small. */
function tooLarge(req: IncomingMessage): boolean {
  const length = Number(req.headers['content-length'] ?? 0);
  return Number.isFinite(length) && length > ASSERTION_MAX_CHARS * 2;
}

/** The client id a refused request claimed (never trusted, only for the audit trail). */
function clientIdOf(ctx: KoaContextWithOIDC): string | undefined {
  const params = ctx.oidc?.params as Record<string, unknown> | undefined;
  if (typeof params?.client_id === 'string') return params.client_id.slice(0, 100);
  const assertion = params?.client_assertion ?? (ctx.get('oauth-client-attestation') || undefined);
  if (typeof assertion !== 'string' || assertion.length > ASSERTION_MAX_CHARS) return undefined;
  try {
    const sub = decodeJwt(assertion).sub;
    return typeof sub === 'string' ? sub.slice(0, 100) : undefined;
  } catch {
    return undefined;
  }
}

function requestMeta(ctx: KoaContextWithOIDC): AuditRequestMeta {
  return { source_ip: ctx.ip, user_agent: ctx.get('user-agent').slice(0, 300) || undefined };
}

/** Which of the request's JWTs a single-use id came from (a lost race is answered accordingly). */
function claimKind(ctx: KoaContextWithOIDC, jti: string): ClaimKind {
  const jtiOf = (jwt: unknown): unknown => {
    if (typeof jwt !== 'string' || jwt.length > ASSERTION_MAX_CHARS) return undefined;
    try {
      return decodeJwt(jwt).jti;
    } catch {
      return undefined;
    }
  };
  if (jtiOf(ctx.oidc.params?.client_assertion) === jti) return 'client_assertion';
  if (jtiOf(ctx.get('dpop')) === jti) return 'dpop_proof';
  return 'other';
}

/** The answer the library gives a replay it sees itself, for one found at commit time. */
function replayRefusal(ctx: KoaContextWithOIDC, e: ReplayDetectedError): void {
  ctx.type = 'application/json';
  if (e.kind === 'client_assertion') {
    ctx.status = 401;
    ctx.body = { error: 'invalid_client', error_description: 'client authentication failed' };
  } else if (e.kind === 'dpop_proof') {
    ctx.status = 400;
    ctx.body = { error: 'invalid_dpop_proof', error_description: 'DPoP proof JWT replay detected' };
  } else {
    ctx.status = 400;
    ctx.body = { error: 'invalid_grant', error_description: e.message };
  }
}
