import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JWK,
  type JWTPayload,
  jwtVerify,
} from 'jose';
import type { Account, Configuration, KoaContextWithOIDC, default as Provider } from 'oidc-provider';
import type { AuditActor, AuditEventInput, Auditor, AuditRequestMeta } from '../audit/index.ts';
import type { Keyring } from '../core/index.ts';
import { type Clock, isUuid, type Logger, NotFoundError, type WardenConfig } from '../core/index.ts';
import type { AgentRegistry, TemplateRegistry, UserDirectory } from '../identity/index.ts';
import type { Store } from '../store/index.ts';
import { adapterFor, CLIENT_EXTRA_PROPERTIES } from './agent-clients.ts';
import {
  type BackchannelHook,
  CIBA_GRANT,
  CIBA_MAX_EXPIRY,
  cibaFeature,
  finishBackchannelAnswer,
  PollPacer,
} from './backchannel.ts';
import { ClientAttestation, presentedAttestation } from './client-attestation.ts';
import { CONSOLE_CLIENT_ID, consoleClientMetadata, defaultConsoleRedirectUris } from './console-client.ts';
import { type DelegationGrant, DelegationGrants, isGrantActive } from './delegation-grants.ts';
import {
  createGrant,
  type GrantAdminDeps,
  type GrantRequest,
  type GrantRevocation,
  revokeGrant,
} from './grant-admin.ts';
import { type ConsentedDelegation, Interactions } from './interactions.ts';
import { IssuedTokens } from './issued-tokens.ts';
import { ProviderRecords } from './provider-records.ts';
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
/** Authorization endpoint routes: a redirect carrying a code is audited as `authorization.code_issued`. */
const AUTHORIZATION_ROUTES = new Set(['authorization', 'resume']);
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
  /** People: the sign-in page checks passwords here; `findAccount` maps `sub` to a user. */
  users: UserDirectory;
  templates: TemplateRegistry;
  /** The first-party console client (authorization_code + PKCE). */
  console: WardenConfig['console'];
  /**
   * The vault's exchange mode: decides (policy) and mints (vault) an upstream access token for a
   * token exchange whose `resource` names a vault connection. Absent, such requests are refused.
   */
  upstreamExchange?: UpstreamExchange | undefined;
  /** Who asks a person for a CIBA request (the approvals part, wired by the HTTP assembly). */
  backchannel?: BackchannelHook;
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
  /** oidc-provider's sessions, interactions, codes and grants (the authorization_code flow). */
  readonly records: ProviderRecords;
  /** The sign-in and consent pages of the authorization_code flow. */
  readonly interactions: Interactions;
  /** What users delegated to agents: the ceiling of token exchange. */
  readonly grants: DelegationGrants;
  readonly attestation: ClientAttestation;
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
  #backchannel: BackchannelHook | undefined;
  readonly #pacer = new PollPacer();

  private constructor(opts: TokenServiceOptions) {
    this.#opts = opts;
    this.#backchannel = opts.backchannel;
    this.issuer = opts.issuer;
    this.resources = opts.config.resources.length > 0 ? opts.config.resources : [opts.issuer];
    this.issued = new IssuedTokens(opts.store, opts.clock);
    this.replay = new ReplayCache(opts.store, opts.clock);
    this.keys = new SigningKeyStore(opts.store, opts.keyring, opts.clock);
    this.records = new ProviderRecords(opts.store, opts.keyring, opts.clock);
    this.interactions = new Interactions({
      provider: () => this.#provider,
      users: opts.users,
      agents: opts.agents,
      templates: opts.templates,
      auditor: opts.auditor,
      clock: opts.clock,
      secure: opts.issuer.startsWith('https:'),
      trustProxy: opts.trustProxy,
      grantDelegation: (d) => this.#grantDelegation(d),
    });
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
      Promise.all([
        service.replay.purge(),
        service.issued.purge(),
        service.records.purge(),
        opts.agents.instances.purge(),
      ]),
    );
    return service;
  }

  /** Sets who asks people for CIBA requests (the approvals part is built after this service). */
  set backchannel(hook: BackchannelHook) {
    this.#backchannel = hook;
  }

  /**
   * Completes a CIBA request with the person's decision (on whichever node holds it: the library's
   * request lives in the shared provider records). Approve creates a Warden delegation grant
   * (`source: 'ciba'`, scopes = requested within the template, until `expiresAt`) and the
   * library's Grant under the same id; deny ends the request with `access_denied`.
   * @returns the delegation grant id when approved.
   */
  async decideBackchannel(
    authReqId: string,
    decision: { approved: true; expiresAt?: number; purpose: string } | { approved: false },
    actor: AuditActor,
    request?: AuditRequestMeta,
  ): Promise<string | undefined> {
    const provider = this.#provider;
    const pending = await provider.BackchannelAuthenticationRequest.find(authReqId, {
      ignoreExpiration: true,
    });
    if (!pending) throw new NotFoundError('backchannel authentication request not found');
    if (!decision.approved) {
      await provider.backchannelResult(
        pending,
        new this.#lib.errors.AccessDenied('the person denied the request'),
      );
      return undefined;
    }
    const p = pending as unknown as {
      accountId: string;
      clientId: string;
      scope?: string;
      resource?: string;
    };
    const resource = p.resource ?? (this.resources[0] as string);
    const { template } = await this.#opts.agents.resolve(p.clientId);
    // Unless the approver chose otherwise: the grant lasts one token lifetime of the template, so
    // one out-of-band approval yields one token's worth of access.
    const expiresAt = decision.expiresAt ?? this.#opts.clock.now() + template.spec.token_lifetime * 1000;
    const scopes = String(p.scope ?? '')
      .split(' ')
      .filter((s) => template.spec.allowed_scopes.includes(s));
    const grant = await this.createGrant(
      {
        userId: p.accountId,
        agentId: p.clientId,
        scopes,
        resources: [resource],
        purpose: decision.purpose,
        source: 'ciba',
        expiresAt,
      },
      actor,
      request,
    );
    const libraryGrant = new provider.Grant({
      jti: grant.id,
      accountId: p.accountId,
      clientId: p.clientId,
      expiresIn: Math.max(1, Math.ceil((expiresAt - this.#opts.clock.now()) / 1000)),
    } as never);
    if (scopes.length > 0) libraryGrant.addResourceScope(resource, scopes.join(' '));
    // CIBA is OpenID: the ID token names the person (sub only).
    libraryGrant.addOIDCScope('openid');
    await libraryGrant.save();
    await provider.backchannelResult(pending, libraryGrant);
    return grant.id;
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

  /**
   * Revokes every grant of a user that is still in force (and so every token under them), e.g.
   * when the user is disabled: nothing an agent holds for them outlives their account.
   * @returns the revocations, one per grant.
   */
  async revokeUserGrants(
    userId: string,
    actor: AuditActor,
    request?: AuditRequestMeta,
    reason = 'user disabled',
  ): Promise<GrantRevocation[]> {
    const done: GrantRevocation[] = [];
    for (let cursor: string | undefined; ; ) {
      const page = await this.grants.list({ userId, cursor, limit: 200 });
      for (const grant of page.items) done.push(await this.revokeGrant(grant.id, actor, request, reason));
      if (!page.next_cursor) return done;
      cursor = page.next_cursor;
    }
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
    const consoleCfg = this.#opts.console;
    const consoleClient = consoleClientMetadata(
      consoleCfg.redirectUris.length > 0 ? consoleCfg.redirectUris : defaultConsoleRedirectUris(this.issuer),
    );
    const configuration: Configuration = {
      adapter: adapterFor({
        agents,
        records: this.records,
        consoleClient,
        delegationActive: async (grantId) => {
          const grant = await this.grants.find(grantId);
          return grant ? isGrantActive(grant, this.#opts.clock.now()) : undefined;
        },
        codeReplayed: async (grantId) => {
          if (grantId) await this.#codeReplayed(grantId);
          return new errors.InvalidGrant('authorization code already consumed');
        },
        revokeAccessTokens: (grantId) => this.#codeReplayed(grantId),
      }),
      clients: [],
      clientDefaults: {
        grant_types: ['client_credentials', TOKEN_EXCHANGE_GRANT],
        response_types: [],
        token_endpoint_auth_method: 'private_key_jwt',
        id_token_signed_response_alg: signer.alg,
      },
      // `none` is for the console alone (a public client; PKCE binds its codes); agents keep
      // private_key_jwt or attestation-based client authentication, which their metadata names.
      clientAuthMethods: [
        'private_key_jwt',
        'none',
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
      scopes: ['openid', 'profile', 'email'],
      claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'] },
      responseTypes: ['code'],
      // PKCE for every authorization_code client, S256 only (9.x knows no other method).
      pkce: { required: () => true },
      interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
      extraParams: {
        // Why an agent asks (shown on the consent screen, kept on the delegation grant). The other
        // check of an agent's delegation request runs here too, where every authorization request
        // passes: exactly one resource (one consent screen, one grant, one audience).
        purpose: async (ctx, value, client) => {
          if (ctx.oidc.route !== 'authorization' || !client || client.clientId === CONSOLE_CLIENT_ID) return;
          if (typeof value !== 'string' || value.trim().length === 0 || value.length > 500) {
            throw new errors.InvalidRequest(
              'purpose is required (1 to 500 characters) when an agent asks for delegation',
            );
          }
          if (Array.isArray(ctx.oidc.params?.resource)) {
            throw new errors.InvalidTarget('an agent asks for delegation on one resource at a time');
          }
        },
      },
      loadExistingGrant: async (ctx) => {
        const client = ctx.oidc.client;
        const consented = (ctx.oidc.result as { consent?: { grantId?: string } } | undefined)?.consent
          ?.grantId;
        // An agent gets a fresh consent (and a new delegation grant) every time it asks; only the
        // console reuses the grant of the person's session.
        const id =
          consented ??
          (client?.clientId === CONSOLE_CLIENT_ID
            ? ctx.oidc.session?.grantIdFor(client.clientId)
            : undefined);
        return id ? ctx.oidc.provider.Grant.find(id) : undefined;
      },
      findAccount: async (_ctx, sub) => this.#findAccount(sub),
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
        ciba: cibaFeature({
          users: this.#opts.users,
          hook: () => this.#backchannel,
          now: () => this.#opts.clock.now(),
          errors,
        }),
        dPoP: {
          enabled: true,
          nonceSecret: this.#nonceSecret,
          requireNonce: () => config.dpopNonce === 'required',
        },
        resourceIndicators: {
          enabled: true,
          defaultResource: async (_ctx, client) =>
            client?.clientId === CONSOLE_CLIENT_ID ? this.issuer : (this.resources[0] as string),
          useGrantedResource: async () => false,
          getResourceServerInfo: async (ctx, resource, client) => {
            if (client?.clientId === CONSOLE_CLIENT_ID) {
              // The console's user tokens are for Warden itself (its API, and as RFC 8693 subject
              // tokens); they carry no scope of any agent resource.
              if (resource !== this.issuer) throw new errors.InvalidTarget();
              return {
                audience: resource,
                scope: '',
                accessTokenTTL: consoleCfg.accessTokenLifetimeSeconds,
                accessTokenFormat: 'jwt',
                jwt: { sign: { alg: signer.alg, kid: signer.kid } },
              };
            }
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
            // A delegated token never outlives the grant it was issued under.
            const grantExp = (ctx.oidc.entities?.Grant as { exp?: number } | undefined)?.exp;
            const grantLeft = grantExp ? grantExp - Math.floor(this.#opts.clock.now() / 1000) : Infinity;
            return {
              audience: resource,
              scope: template.allowedScopes.join(' '),
              accessTokenTTL: Math.max(1, Math.min(this.attestation.lifetime(template.lifetime), grantLeft)),
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
        const { client, accountId, grantId, gty } = token as unknown as {
          client?: Record<string, unknown>;
          accountId?: string;
          grantId?: string;
          gty?: string;
        };
        if (!client || client.clientId === CONSOLE_CLIENT_ID) return undefined;
        const template = requestTemplate(client);
        const claims: Record<string, unknown> = {
          agent_template: { id: template.id, version: template.version },
          ...this.attestation.tokenClaims(),
        };
        // Delegated (authorization_code): sub is the person, the agent acts for them (RFC 8693 act).
        if ((gty === 'authorization_code' || gty === 'ciba') && accountId) {
          claims.act = { sub: client.clientId };
          if (grantId) claims.grant_id = grantId;
        }
        return claims;
      },
      assertJwtClientAuthClaimsAndHeader: async (ctx, claims, _header, client) => {
        // RFC 7523bis: the audience is the issuer identifier, alone; endpoint URLs are refused.
        if (claims.aud !== this.issuer) {
          throw new errors.InvalidClientAuth('audience (aud) must be the issuer identifier');
        }
        if (ctx.oidc.route === 'token') this.#rateLimit(ctx, client.clientId);
      },
      ttl: {
        AuthorizationCode: 60,
        // The resource server info sets the lifetime (template, grant, console setting).
        AccessToken: (_ctx, token) =>
          (token as unknown as { resourceServer?: { accessTokenTTL?: number } }).resourceServer
            ?.accessTokenTTL ?? 300,
        IdToken: 300,
        BackchannelAuthenticationRequest: (ctx) =>
          Math.min(CIBA_MAX_EXPIRY, Number(ctx?.oidc?.params?.requested_expiry ?? 300) || 300),
        Interaction: 600,
        Session: 8 * 3600,
        // The console's grant lives as long as a session; an agent's is set from the duration the
        // person chose on the consent screen.
        Grant: 8 * 3600,
        ClientCredentials: (_ctx, _token, client) =>
          this.attestation.lifetime(requestTemplate(client as unknown as Record<string, unknown>).lifetime),
      },
      formats: {
        customizers: { jwt: async (_ctx, token, jwt) => this.#exchange.customize(token, jwt) },
      },
      // The library's own fetch refuses special-use addresses (its SSRF-protected dispatcher);
      // `cibaNotificationTargets: any` drops that dispatcher for ping notifications.
      ...(config.cibaNotificationTargets === 'any'
        ? {
            fetch: (url: URL | string | Request, options?: RequestInit) => {
              const { dispatcher: _ssrf, ...rest } = (options ?? {}) as RequestInit & {
                dispatcher?: unknown;
              };
              return globalThis.fetch(url, rest);
            },
          }
        : {}),
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
    for (const event of [
      'grant.error',
      'introspection.error',
      'revocation.error',
      'authorization.error',
      'server_error',
    ] as const) {
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
      if (ctx.path === '/auth' && (await this.#delegationRefused(ctx as KoaContextWithOIDC, started))) return;
      await withRequestState(state, next);
      if (ctx.path === '/backchannel') {
        finishBackchannelAnswer(ctx as KoaContextWithOIDC);
        await this.#auditBackchannel(ctx as KoaContextWithOIDC, state, started);
      }
      this.#paceCibaPoll(ctx as KoaContextWithOIDC);
      const oidc = (ctx as KoaContextWithOIDC).oidc;
      if (oidc && AUTHORIZATION_ROUTES.has(oidc.route)) {
        await this.#afterAuthorization(ctx as KoaContextWithOIDC, started);
      } else if (oidc && ROUTES.has(oidc.route)) {
        await this.#after(ctx as KoaContextWithOIDC, state, started);
      }
      await this.#settleClaims(ctx as KoaContextWithOIDC, state);
    });
    return provider;
  }

  /**
   * Audits /backchannel: `authorization.backchannel_requested` (actor the agent, on behalf of the
   * person asked), or `token.refused` (`oauth.backchannel`) with the OAuth error as its code.
   */
  async #auditBackchannel(ctx: KoaContextWithOIDC, state: RequestState, started: number): Promise<void> {
    const body = (ctx.body ?? {}) as Record<string, unknown>;
    const pending = ctx.oidc?.entities?.BackchannelAuthenticationRequest as
      | { jti?: string; accountId?: string; clientId?: string; scope?: string; resource?: unknown }
      | undefined;
    const clientId = clientIdOf(ctx) ?? 'unknown';
    const event: AuditEventInput =
      typeof body.auth_req_id === 'string' && pending
        ? {
            type: 'authorization.backchannel_requested',
            actor: {
              type: 'agent',
              id: clientId,
              name: state.agentName,
              on_behalf_of: { type: 'user', id: String(pending.accountId) },
            },
            action: 'oauth.backchannel',
            resource: { type: 'user', id: String(pending.accountId) },
            outcome: 'success',
            request: requestMeta(ctx),
            latency_ms: Math.round(performance.now() - started),
            details: {
              scope: pending.scope,
              resource: pending.resource,
              delivery_mode: (ctx.oidc.client as { backchannelTokenDeliveryMode?: string } | undefined)
                ?.backchannelTokenDeliveryMode,
              expires_in: body.expires_in,
            },
          }
        : {
            type: 'token.refused',
            actor: { type: ctx.oidc?.client ? 'agent' : 'anonymous', id: clientId },
            action: 'oauth.backchannel',
            outcome: 'denied',
            error_code: String(body.error ?? 'server_error'),
            request: requestMeta(ctx),
            latency_ms: Math.round(performance.now() - started),
            details: {
              reason:
                state.refusal ??
                (typeof body.error_description === 'string' ? body.error_description : undefined),
            },
          };
    await this.#opts.auditor
      .record(event)
      .catch((e: unknown) =>
        this.#opts.logger.error(
          { err: { message: (e as Error).message } },
          'backchannel request could not be audited',
        ),
      );
  }

  /** A pending CIBA poll that came sooner than the interval is answered `slow_down` (CIBA §11). */
  #paceCibaPoll(ctx: KoaContextWithOIDC): void {
    const params = ctx.oidc?.params;
    if (ctx.oidc?.route !== 'token' || params?.grant_type !== CIBA_GRANT) return;
    const id = params.auth_req_id;
    if (typeof id !== 'string') return;
    const tooSoon = this.#pacer.tooSoon(id, this.#opts.clock.now());
    const body = ctx.body as Record<string, unknown> | undefined;
    if (tooSoon && body?.error === 'authorization_pending') {
      ctx.body = { error: 'slow_down', error_description: 'poll no more often than the interval' };
    }
  }

  /**
   * Audits the authorization endpoint: a redirect carrying a code is `authorization.code_issued`
   * (actor the person, for the client), a refused request `token.refused` (`oauth.authorize`).
   * Redirects into the sign-in and consent pages are steps, not outcomes.
   */
  async #afterAuthorization(ctx: KoaContextWithOIDC, started: number): Promise<void> {
    const error = this.#errors.get(ctx);
    const code = ctx.oidc.entities?.AuthorizationCode as
      | {
          accountId?: string;
          clientId?: string;
          grantId?: string;
          scope?: string;
          resource?: string | string[];
          codeChallengeMethod?: string;
        }
      | undefined;
    const event: AuditEventInput | undefined =
      code && !error
        ? {
            type: 'authorization.code_issued',
            actor: { type: 'user', id: String(code.accountId) },
            action: 'oauth.authorize',
            resource: { type: 'client', id: String(code.clientId) },
            outcome: 'success',
            request: requestMeta(ctx),
            latency_ms: Math.round(performance.now() - started),
            details: {
              client_id: code.clientId,
              scope: code.scope,
              resource: code.resource,
              grant_id: code.grantId,
              code_challenge_method: code.codeChallengeMethod,
              delegated: code.clientId !== CONSOLE_CLIENT_ID,
            },
          }
        : error
          ? {
              type: 'token.refused',
              actor: ctx.oidc.session?.accountId
                ? { type: 'user', id: ctx.oidc.session.accountId }
                : { type: 'anonymous', id: clientIdOf(ctx) ?? 'unknown' },
              action: 'oauth.authorize',
              outcome: 'denied',
              error_code: String(error.error ?? 'server_error'),
              request: requestMeta(ctx),
              latency_ms: Math.round(performance.now() - started),
              details: {
                client_id: clientIdOf(ctx),
                reason:
                  typeof error.error_detail === 'string'
                    ? error.error_detail
                    : typeof error.error_description === 'string'
                      ? error.error_description
                      : undefined,
              },
            }
          : undefined;
    if (!event) return;
    await this.#opts.auditor
      .record(event)
      .catch((e: unknown) =>
        this.#opts.logger.error(
          { err: { message: (e as Error).message } },
          'authorization could not be audited',
        ),
      );
  }

  /**
   * An agent whose template does not allow delegation is refused at the authorization endpoint
   * with `unauthorized_client` before anything else (the library would first complain about its
   * missing redirect URIs, which tells the agent less). @returns true when refused.
   */
  async #delegationRefused(ctx: KoaContextWithOIDC, started: number): Promise<boolean> {
    const clientId = ctx.query.client_id;
    if (typeof clientId !== 'string' || !isUuid(clientId)) return false;
    let allowed: boolean;
    try {
      allowed = (await this.#opts.agents.resolve(clientId)).template.spec.delegation?.allowed === true;
    } catch (e) {
      if (e instanceof NotFoundError) return false; // the library answers invalid_client
      throw e;
    }
    if (allowed) return false;
    ctx.status = 400;
    ctx.type = 'application/json';
    ctx.set('cache-control', 'no-store');
    ctx.body = {
      error: 'unauthorized_client',
      error_description: "this agent's template does not allow it to ask people for delegated access",
    };
    await this.#opts.auditor
      .record({
        type: 'token.refused',
        actor: { type: 'agent', id: clientId },
        action: 'oauth.authorize',
        outcome: 'denied',
        error_code: 'unauthorized_client',
        request: requestMeta(ctx),
        latency_ms: Math.round(performance.now() - started),
        details: { reason: 'delegation_not_allowed_by_template' },
      })
      .catch((e: unknown) =>
        this.#opts.logger.error(
          { err: { message: (e as Error).message } },
          'authorization could not be audited',
        ),
      );
    return true;
  }

  /** A person's claims for `findAccount`: `sub` is the user id; disabled or unknown users are none. */
  async #findAccount(sub: string): Promise<Account | undefined> {
    if (!isUuid(sub)) return undefined;
    let user: Awaited<ReturnType<UserDirectory['get']>>;
    try {
      user = await this.#opts.users.get(sub);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
    if (user.status !== 'active') return undefined;
    return {
      accountId: user.id,
      claims: async () => ({
        sub: user.id,
        preferred_username: user.username,
        ...(user.display_name ? { name: user.display_name } : {}),
        ...(user.email ? { email: user.email } : {}),
      }),
    };
  }

  /** The consent screen's approval: a Warden delegation grant (source `consent`), audited. */
  async #grantDelegation(d: ConsentedDelegation): Promise<string> {
    const grant = await this.createGrant(
      {
        userId: d.userId,
        agentId: d.agentId,
        scopes: d.scopes,
        resources: [d.resource],
        purpose: d.purpose,
        source: 'consent',
        expiresAt: d.expiresAt,
      },
      { type: 'user', id: d.userId, name: d.username },
      d.request,
    );
    return grant.id;
  }

  /**
   * A code was used twice (RFC 6749 §4.1.2): every token issued under its grant is revoked, and a
   * delegation grant with it (a leaked code means the grant can no longer be trusted).
   */
  async #codeReplayed(grantId: string): Promise<void> {
    const delegation = await this.grants.find(grantId);
    if (delegation) {
      await this.revokeGrant(grantId, SYSTEM, undefined, 'authorization code replayed');
    } else {
      await this.#opts.auditor.transact(
        async (tx) => {
          const revoked: string[] = [];
          for (const jti of await this.records.tokensOf(grantId, tx)) {
            if (await this.issued.revoke(tx, jti, 'authorization code replayed')) revoked.push(jti);
          }
          return revoked;
        },
        (jtis) => ({
          type: 'token.revoked',
          actor: SYSTEM,
          action: 'oauth.code_replay',
          resource: { type: 'grant', id: grantId },
          outcome: 'success',
          details: {
            reason: 'authorization code replayed',
            revoked_jtis: jtis.slice(0, 100),
            revoked_jti_count: jtis.length,
          },
        }),
      );
    }
    await this.records.destroyGrant(grantId);
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
        const answer = await this.introspect(token);
        // The console is a public client: it learns about its own tokens only, never an agent's.
        ctx.body =
          clientId === CONSOLE_CLIENT_ID && answer.active && answer.client_id !== CONSOLE_CLIENT_ID
            ? { active: false }
            : answer;
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
      // A person's token (console, or delegated to an agent) dies with the person's account.
      if (record.sub !== record.clientId) {
        const user = await this.#opts.users.get(record.sub);
        if (user.status !== 'active') return inactive;
      }
      if (record.clientId !== CONSOLE_CLIENT_ID) {
        const resolved = await this.#opts.agents.resolve(record.clientId);
        if (!resolved.usable) return inactive;
      }
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
   * Redeems a console access token (authorization_code + PKCE by `warden-console`) once: when it
   * is active, issued to the console and for Warden itself, it is revoked (audited) and its person
   * returned, so the caller can sign them in (`warden login --browser`). Anything else: undefined.
   */
  async redeemConsoleToken(token: string, request?: AuditRequestMeta): Promise<string | undefined> {
    const claims = await this.introspect(token);
    if (!claims.active || claims.client_id !== CONSOLE_CLIENT_ID || claims.aud !== this.issuer)
      return undefined;
    const jti = String(claims.jti);
    const sub = String(claims.sub);
    const changed = await this.#opts.auditor.transact(
      (tx) => this.issued.revoke(tx, jti, 'redeemed for an API token'),
      (revoked) => ({
        type: 'token.revoked',
        actor: { type: 'user', id: sub },
        action: 'oauth.console_token.redeem',
        resource: { type: 'access_token', id: jti },
        outcome: 'success',
        request,
        details: { already_revoked: !revoked },
      }),
    );
    // A token redeemed concurrently elsewhere counts once.
    return changed ? sub : undefined;
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
      agent_template?: { id: string; version: number };
    };
    const { kid } = decodeProtectedHeader(token);
    // The authorization_code flow: the library grant the code was issued under. An agent's is the
    // Warden delegation grant itself (same id); the console's is only the library's bookkeeping,
    // noted beside the token so a replayed code still reaches it (RFC 6749 §4.1.2).
    const libraryGrantId = (ctx.oidc.entities?.AccessToken as { grantId?: string } | undefined)?.grantId;
    const isConsole = claims.client_id === CONSOLE_CLIENT_ID;
    const delegationId = libraryGrantId && !isConsole ? libraryGrantId : undefined;
    const aud = Array.isArray(claims.aud) ? claims.aud.join(' ') : String(claims.aud);
    const record = {
      jti: claims.jti as string,
      clientId: claims.client_id,
      sub: claims.sub as string,
      aud,
      scope: claims.scope ?? '',
      jkt: claims.cnf?.jkt ?? null,
      kid: kid ?? '',
      // The console's user tokens belong to no template.
      templateId: claims.agent_template?.id ?? '',
      templateVersion: claims.agent_template?.version ?? 0,
      issuedAt: (claims.iat as number) * 1000,
      expiresAt: (claims.exp as number) * 1000,
      grantId: state.exchange?.grantId ?? delegationId ?? null,
      grantChain: state.exchange?.grantChain,
    };
    const actor: AuditActor = isConsole
      ? { type: 'user', id: record.sub }
      : delegationId
        ? {
            type: 'agent',
            id: record.clientId,
            name: state.agentName,
            on_behalf_of: { type: 'user', id: record.sub },
          }
        : { type: 'agent', id: record.clientId, name: state.agentName };
    const requested = typeof ctx.oidc.params?.scope === 'string' ? ctx.oidc.params.scope : '';
    const exchange = state.exchange;
    try {
      await this.#opts.auditor.transact(
        async (tx) => {
          // A grant revoked while this token was being minted must not leave it alive: checked in
          // the transaction that records the token, so a revocation that committed first is seen.
          if (exchange)
            await assertGrantsActive(this.grants, exchange.grantChain, tx, this.#opts.clock.now());
          if (delegationId) await assertGrantsActive(this.grants, [delegationId], tx, this.#opts.clock.now());
          await this.replay.write(tx, state.claims as ReplayClaims, true);
          if (isConsole && libraryGrantId) {
            await this.records.noteIssued(tx, libraryGrantId, record.jti, record.expiresAt);
          }
          await this.issued.record(tx, record);
          await this.attestation.persist(tx, state, record.clientId);
        },
        () => ({
          type: 'token.issued',
          actor: exchange
            ? {
                type: 'agent',
                id: record.clientId,
                name: state.agentName,
                on_behalf_of: { type: 'user' as const, id: exchange.userId },
                chain: exchange.actors.map((id) => ({ type: 'agent' as const, id })),
              }
            : actor,
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
            ...(libraryGrantId ? { grant_id: libraryGrantId, delegated: delegationId !== undefined } : {}),
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
            ...this.attestation.auditDetails(state),
          },
        }),
      );
      state.claims?.markSettled();
    } catch (e) {
      if (e instanceof GrantNoLongerActive) {
        state.refusal = 'grant_revoked_during_issuance';
        ctx.status = 400;
        ctx.type = 'application/json';
        ctx.body = { error: 'invalid_grant', error_description: 'the delegation grant is no longer active' };
        await this.#recordRefusal(ctx, state, started);
        return;
      }
      if (e instanceof ReplayDetectedError) {
        // Another request (on any node) won one of this request's single-use ids first; the ids it
        // did win are spent with the refusal.
        replayRefusal(ctx, e);
        await this.#recordRefusal(ctx, state, started, 'replay_detected');
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
    if (!isConsole && (this.#touched.get(record.clientId) ?? 0) < now - 60_000) {
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
    // The public console client proves nobody's identity at the token endpoint.
    const actor: AuditActor =
      clientId && clientId !== CONSOLE_CLIENT_ID
        ? { type: 'agent', id: clientId, name: state.agentName }
        : { type: 'anonymous', id: clientId ?? 'unknown' };
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
