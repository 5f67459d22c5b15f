import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import type { KoaContextWithOIDC, default as Provider } from 'oidc-provider';
import { type Clock, NotFoundError, type WardenConfig } from '../core/index.ts';
import type { User } from '../identity/index.ts';
import { CONSOLE_CLIENT_ID } from './console-client.ts';
import { type DelegationGrant, type DelegationGrants, isGrantActive } from './delegation-grants.ts';
import type { DelegationUsers } from './grant-admin.ts';
import type { IssuedTokens } from './issued-tokens.ts';
import { type ActClaim, type ExchangeOutcome, requestState } from './request-state.ts';
import {
  type UpstreamExchange,
  UpstreamExchangeRefused,
  VAULT_CONNECTION_RESOURCE_PREFIX,
  vaultConnectionOf,
} from './upstream-exchange.ts';

/** RFC 8693 §2.1 grant type. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3 token type identifiers Warden accepts and issues. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const SUBJECT_TYPES = new Set([ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE]);
const TOKEN_MAX_CHARS = 16 * 1024;

/** Parameters the token endpoint keeps for this grant (everything else is stripped by the library). */
export const TOKEN_EXCHANGE_PARAMS = [
  'scope',
  'resource',
  'audience',
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
] as const;

/** The handful of oidc-provider internals a custom grant needs for DPoP (not on its public surface). */
interface GrantHelpers {
  validateDpop(
    provider: Provider,
    ctx: KoaContextWithOIDC,
  ): Promise<{ thumbprint: string; jti: string } | undefined>;
  checkDpopReplay(
    provider: Provider,
    ctx: KoaContextWithOIDC,
    dPoP: { jti: string },
    clientId: string,
    ErrorClass: unknown,
  ): Promise<void>;
  checkDpopRequired(provider: Provider, ctx: KoaContextWithOIDC, dPoP: unknown, ErrorClass: unknown): void;
}

let helpers: GrantHelpers | undefined;
/**
 * Loads the library's grant helpers once (oidc-provider 9.x layout): the exchange validates and
 * binds DPoP proofs exactly as the built-in grants do, nonce and replay rules included.
 */
export async function loadGrantHelpers(): Promise<void> {
  const path = 'oidc-provider/lib/helpers/grants.js';
  helpers ??= (await import(path)) as GrantHelpers;
}

type OidcErrors = typeof import('oidc-provider')['errors'];

export interface TokenExchangeOptions {
  issuer: string;
  resources: readonly string[];
  config: Pick<WardenConfig['tokens'], 'maxDelegationDepth' | 'trustedIssuers'>;
  grants: DelegationGrants;
  issued: IssuedTokens;
  users: DelegationUsers;
  clock: Clock;
  /** RFC 7662 rules for a Warden access token: the claims when active, else undefined. */
  activeClaims(token: string): Promise<JWTPayload | undefined>;
  /** The vault's exchange mode (policy + vault), wired by the assembly; absent: refused. */
  upstream?: UpstreamExchange | undefined;
}

/** A refusal with the OAuth error to answer and the reason code kept for the audit event. */
class Refusal {
  readonly error:
    | 'invalid_request'
    | 'invalid_grant'
    | 'invalid_scope'
    | 'invalid_target'
    | 'temporarily_unavailable';
  readonly reason: string;
  readonly description: string;
  /** Answer with this description (not the library's generic one): the vault's refusals say what to fix. */
  readonly expose: boolean;
  constructor(error: Refusal['error'], reason: string, description: string, expose = false) {
    this.error = error;
    this.reason = reason;
    this.description = description;
    this.expose = expose;
  }
}

/**
 * The RFC 8693 token exchange grant: an authenticated agent trades a user's token (one Warden
 * issued, or one from a trusted external IdP) for an access token with `sub` = the user and
 * `act` = the agent, bounded by the user's delegation grant to that agent, the agent's template
 * and (when nested) the subject token itself.
 */
export class TokenExchange {
  readonly #opts: TokenExchangeOptions;
  readonly #issuerKeys = new Map<string, JWTVerifyGetKey>();
  readonly #plans = new WeakMap<object, ExchangeOutcome>();

  constructor(opts: TokenExchangeOptions) {
    this.#opts = opts;
    for (const t of opts.config.trustedIssuers) {
      this.#issuerKeys.set(
        t.issuer,
        t.jwksUri
          ? createRemoteJWKSet(new URL(t.jwksUri), { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000 })
          : createLocalJWKSet(t.jwks as JSONWebKeySet),
      );
    }
  }

  /** Registers the grant on a freshly built provider. */
  register(provider: Provider, errors: OidcErrors, signer: { alg: string; kid: string }): void {
    const h = helpers;
    if (!h) throw new Error('loadGrantHelpers() must be awaited before registering the exchange grant');
    provider.registerGrantType(
      TOKEN_EXCHANGE_GRANT,
      (ctx) => this.#handle(provider, errors, h, signer, ctx as unknown as KoaContextWithOIDC),
      [...TOKEN_EXCHANGE_PARAMS],
    );
  }

  /** Applies `sub` and `act` to an exchanged token's JWT (oidc-provider's JWT format customizer). */
  customize(token: object, jwt: { payload: Record<string, unknown> }): void {
    const plan = this.#plans.get(token);
    if (!plan) return;
    jwt.payload.sub = plan.userId;
    jwt.payload.act = plan.act;
  }

  async #handle(
    provider: Provider,
    errors: OidcErrors,
    h: GrantHelpers,
    signer: { alg: string; kid: string },
    ctx: KoaContextWithOIDC,
  ): Promise<void> {
    const state = requestState();
    try {
      await this.#exchange(provider, errors, h, signer, ctx);
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      if (state) state.refusal = e.reason;
      if (e.expose || e.error === 'temporarily_unavailable') {
        const err = new errors.CustomOIDCProviderError(e.error, e.description);
        const status = e.error === 'temporarily_unavailable' ? 503 : 400;
        throw Object.assign(err, { status, statusCode: status });
      }
      if (e.error === 'invalid_grant') throw new errors.InvalidGrant(e.description);
      if (e.error === 'invalid_scope') {
        throw new errors.InvalidScope(e.description, String(ctx.oidc.params?.scope ?? ''));
      }
      if (e.error === 'invalid_target') throw new errors.InvalidTarget(e.description);
      throw new errors.InvalidRequest(e.description);
    }
  }

  async #exchange(
    provider: Provider,
    errors: OidcErrors,
    h: GrantHelpers,
    signer: { alg: string; kid: string },
    ctx: KoaContextWithOIDC,
  ): Promise<void> {
    const client = ctx.oidc.client;
    if (!client) throw new Refusal('invalid_request', 'no_client', 'client authentication is required');
    const params = ctx.oidc.params as Record<string, unknown>;
    // DPoP first, as for client credentials: a nonce challenge costs nothing else.
    const dPoP = await h.validateDpop(provider, ctx);

    const requestedType = params.requested_token_type;
    if (requestedType !== undefined && !SUBJECT_TYPES.has(String(requestedType))) {
      throw new Refusal(
        'invalid_request',
        'unsupported_requested_token_type',
        'only access tokens can be issued by this exchange',
      );
    }
    const subjectToken = stringParam(params.subject_token, 'subject_token');
    const subjectType = stringParam(params.subject_token_type, 'subject_token_type');
    if (!SUBJECT_TYPES.has(subjectType)) {
      throw new Refusal(
        'invalid_request',
        'unsupported_subject_token_type',
        'subject_token_type must be an access token or a JWT',
      );
    }
    const subject = await this.#subject(subjectToken);
    const agentId = client.clientId;

    const connection = vaultConnectionOf(singleResource(params.resource) ?? '');
    if (connection !== undefined) {
      await this.#upstreamExchange(provider, errors, h, ctx, dPoP, {
        subject,
        agentId,
        connection,
        requestedType,
      });
      return;
    }

    // RFC 8693 §4.4: a subject token naming who may act for it admits only that party.
    const mayAct = subject.claims.may_act;
    if (mayAct !== undefined) {
      const m = mayAct as { sub?: unknown; iss?: unknown };
      const issuerOk = m.iss === undefined || m.iss === this.#opts.issuer;
      if (typeof mayAct !== 'object' || mayAct === null || m.sub !== agentId || !issuerOk) {
        throw new Refusal(
          'invalid_request',
          'may_act_mismatch',
          'the subject token does not allow this client to act',
        );
      }
    }
    if (params.actor_token !== undefined) await this.#checkActor(params, agentId);

    // The current actor exchanging its own delegated token (to narrow scope or change resource)
    // adds no link to the chain; anyone else becomes the new outermost actor.
    const reexchange = subject.act?.sub === agentId;
    const depth = (subject.act ? actDepth(subject.act) : 0) + (reexchange ? 0 : 1);
    if (depth > this.#opts.config.maxDelegationDepth) {
      throw new Refusal(
        'invalid_request',
        'delegation_depth_exceeded',
        `the delegation chain would exceed ${this.#opts.config.maxDelegationDepth} actors`,
      );
    }

    const user = subject.user;
    if (user.status !== 'active') throw new Refusal('invalid_grant', 'user_disabled', 'the user is disabled');
    const grants = await this.#opts.grants.findActive(user.id, agentId);
    if (grants.length === 0) {
      throw new Refusal(
        'invalid_grant',
        'no_active_grant',
        'the user has not delegated to this agent (no active grant)',
      );
    }

    const resource = this.#resource(params, grants);
    const candidates = grants.filter((g) => g.resources.length === 0 || g.resources.includes(resource));
    if (candidates.length === 0) {
      throw new Refusal('invalid_target', 'resource_not_granted', 'no grant covers the requested resource');
    }
    const template = templateOf(client as unknown as Record<string, unknown>);
    const allowed = new Set(template.allowedScopes);
    const subjectScopes = subject.scopes ? new Set(subject.scopes) : undefined;
    const requested = [
      ...new Set(
        String(params.scope ?? '')
          .split(' ')
          .filter(Boolean),
      ),
    ];
    let grant: DelegationGrant;
    let scopes: string[];
    if (requested.length > 0) {
      const covering = candidates.find((g) => requested.every((s) => g.scopes.includes(s)));
      if (!covering) {
        throw new Refusal(
          'invalid_scope',
          'scope_exceeds_grant',
          'the requested scope exceeds the delegation grant',
        );
      }
      if (!requested.every((s) => allowed.has(s))) {
        throw new Refusal(
          'invalid_scope',
          'scope_exceeds_template',
          'the requested scope exceeds the agent template',
        );
      }
      if (subjectScopes && !requested.every((s) => subjectScopes.has(s))) {
        throw new Refusal(
          'invalid_scope',
          'scope_exceeds_subject',
          'the requested scope exceeds the subject token',
        );
      }
      grant = covering;
      scopes = requested;
    } else {
      grant = candidates[0] as DelegationGrant;
      scopes = grant.scopes.filter((s) => allowed.has(s) && (!subjectScopes || subjectScopes.has(s)));
      if (scopes.length === 0) {
        throw new Refusal(
          'invalid_scope',
          'no_common_scope',
          'the grant, template and subject token share no scope',
        );
      }
    }

    const now = Math.floor(this.#opts.clock.now() / 1000);
    const lifetime = Math.min(
      template.lifetime,
      (subject.claims.exp as number) - now,
      Math.floor(grant.expiresAt / 1000) - now,
    );
    if (lifetime < 1) {
      throw new Refusal(
        'invalid_grant',
        'subject_expiring',
        'the subject token or the grant is about to expire',
      );
    }

    const act: ActClaim =
      reexchange && subject.act
        ? subject.act
        : subject.act
          ? { sub: agentId, act: subject.act }
          : { sub: agentId };
    const outcome: ExchangeOutcome = {
      userId: user.id,
      grantId: grant.id,
      grantChain: [...new Set([...subject.grantChain, grant.id])],
      actors: actorsOf(act),
      act,
      subjectIssuer: subject.issuer,
      subjectTokenType: subjectType,
    };

    const { ClientCredentials, ResourceServer } = provider;
    const token = new ClientCredentials({ client, scope: scopes.join(' '), expiresIn: lifetime });
    token.resourceServer = new ResourceServer(resource, {
      audience: resource,
      scope: scopes.join(' '),
      accessTokenTTL: lifetime,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: signer.alg, kid: signer.kid } },
    } as never);
    if (dPoP) {
      await h.checkDpopReplay(provider, ctx, dPoP, agentId, errors.InvalidGrant);
      token.setThumbprint('jkt', dPoP.thumbprint);
    }
    h.checkDpopRequired(provider, ctx, dPoP, errors.InvalidGrant);
    this.#plans.set(token, outcome);
    const state = requestState();
    if (state) state.exchange = outcome;
    ctx.oidc.entity('ClientCredentials', token);
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: token.tokenType,
      expires_in: lifetime,
      scope: scopes.join(' '),
    };
  }

  /**
   * Exchange mode of the vault (`resource` = `urn:warden:vault:connection:<name>`): only the
   * current actor of an active delegated Warden token, under grants that are all still active,
   * gets the delegating user's own upstream access token, if the assembly's hook (policy, vault)
   * allows it. The upstream token is a Bearer token: it cannot be bound to the agent's DPoP key.
   */
  async #upstreamExchange(
    provider: Provider,
    errors: OidcErrors,
    h: GrantHelpers,
    ctx: KoaContextWithOIDC,
    dPoP: { thumbprint: string; jti: string } | undefined,
    req: { subject: Subject; agentId: string; connection: string; requestedType: unknown },
  ): Promise<void> {
    const { subject, agentId, connection } = req;
    const state = requestState();
    if (state) state.upstreamAttempt = { connection, userId: subject.user.id };
    const upstream = this.#opts.upstream;
    if (!upstream) {
      throw new Refusal(
        'invalid_target',
        'vault_exchange_unavailable',
        'exchange mode is not available here',
      );
    }
    if (req.requestedType !== ACCESS_TOKEN_TYPE) {
      throw new Refusal(
        'invalid_request',
        'vault_exchange_requested_type',
        `requested_token_type must be ${ACCESS_TOKEN_TYPE} for a vault connection`,
      );
    }
    const params = ctx.oidc.params as Record<string, unknown>;
    if (params.scope !== undefined && params.scope !== '') {
      throw new Refusal(
        'invalid_scope',
        'vault_exchange_scope',
        'scope is not accepted for a vault connection (the upstream token carries the account scope)',
      );
    }
    if (subject.issuer !== this.#opts.issuer || !subject.act) {
      throw new Refusal(
        'invalid_grant',
        'vault_exchange_not_delegated',
        'the subject token must be a delegated Warden token (with act)',
      );
    }
    if (subject.act.sub !== agentId) {
      throw new Refusal(
        'invalid_grant',
        'vault_exchange_not_current_actor',
        'the client is not the current actor of the subject token',
      );
    }
    if (subject.user.status !== 'active') {
      throw new Refusal('invalid_grant', 'user_disabled', 'the user is disabled');
    }
    const now = this.#opts.clock.now();
    const chain = subject.grantChain;
    for (const id of chain) {
      const g = await this.#opts.grants.find(id);
      if (!g || !isGrantActive(g, now)) {
        throw new Refusal(
          'invalid_grant',
          'grant_inactive',
          'a delegation grant of the subject token is no longer active',
        );
      }
    }
    const own = (await this.#opts.grants.findActive(subject.user.id, agentId)).filter((g) =>
      chain.includes(g.id),
    );
    if (own.length === 0) {
      throw new Refusal(
        'invalid_grant',
        'no_active_grant',
        'the user has not delegated to this agent (no active grant)',
      );
    }
    const resource = `${VAULT_CONNECTION_RESOURCE_PREFIX}${connection}`;
    const grant = own.find((g) => g.resources.length === 0 || g.resources.includes(resource));
    if (!grant) {
      throw new Refusal('invalid_target', 'resource_not_granted', 'no grant covers the requested resource');
    }
    if (state?.upstreamAttempt) state.upstreamAttempt.grantId = grant.id;
    // The upstream token leaves Warden's DPoP protection, so the agent must at least prove it holds
    // the key its delegated token is bound to: a stolen subject token alone gets nothing.
    const jkt = (subject.claims.cnf as { jkt?: unknown } | undefined)?.jkt;
    if (jkt !== undefined && dPoP?.thumbprint !== jkt) {
      throw new Refusal(
        'invalid_grant',
        'vault_exchange_dpop_mismatch',
        'the DPoP proof must use the key the subject token is bound to',
      );
    }
    if (dPoP) await h.checkDpopReplay(provider, ctx, dPoP, agentId, errors.InvalidGrant);
    h.checkDpopRequired(provider, ctx, dPoP, errors.InvalidGrant);

    const request = {
      agentId,
      userId: subject.user.id,
      grantId: grant.id,
      grantChain: chain,
      actors: actorsOf(subject.act),
      scopes: subject.scopes ?? [],
      connection,
    };
    let result: Awaited<ReturnType<UpstreamExchange>>;
    try {
      result = await upstream(request);
    } catch (e) {
      if (e instanceof UpstreamExchangeRefused) throw new Refusal(e.error, e.reason, e.message, true);
      throw e;
    }
    const nowS = Math.floor(this.#opts.clock.now() / 1000);
    const expiresIn = Math.min(
      Math.floor(result.expiresAt / 1000) - nowS,
      (subject.claims.exp as number) - nowS,
      Math.floor(grant.expiresAt / 1000) - nowS,
    );
    if (expiresIn < 1) {
      throw new Refusal(
        'invalid_grant',
        'subject_expiring',
        'the subject token, the grant or the upstream token is about to expire',
      );
    }
    if (state) {
      state.upstream = {
        ...request,
        connectionId: result.connectionId,
        accountId: result.accountId,
        expiresIn,
        determiningPolicies: result.determiningPolicies,
      };
    }
    ctx.body = {
      access_token: result.accessToken,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: expiresIn,
    };
  }

  /** Verifies the subject token and finds the user it speaks for. */
  async #subject(token: string): Promise<Subject> {
    if (token.length > TOKEN_MAX_CHARS) {
      throw new Refusal('invalid_request', 'subject_token_malformed', 'the subject token is too large');
    }
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new Refusal('invalid_request', 'subject_token_malformed', 'the subject token is not a JWT');
    }
    if (iss === this.#opts.issuer) return this.#wardenSubject(token);
    const trusted = this.#opts.config.trustedIssuers.find((t) => t.issuer === iss);
    if (!trusted) {
      throw new Refusal(
        'invalid_request',
        'subject_issuer_untrusted',
        'the subject token issuer is not trusted',
      );
    }
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, this.#issuerKeys.get(trusted.issuer) as JWTVerifyGetKey, {
        issuer: trusted.issuer,
        audience: trusted.audience,
        algorithms: trusted.algorithms,
        ...(trusted.typ ? { typ: trusted.typ } : {}),
        currentDate: new Date(this.#opts.clock.now()),
        clockTolerance: 5,
        requiredClaims: ['exp', trusted.userClaim],
      }));
    } catch (e) {
      throw new Refusal(
        'invalid_request',
        `subject_token_${joseReason(e)}`,
        'the subject token is not valid',
      );
    }
    if (claims.act !== undefined) {
      throw new Refusal(
        'invalid_request',
        'subject_token_delegated',
        'an external subject token must not carry act',
      );
    }
    const value = claims[trusted.userClaim];
    if (typeof value !== 'string' || value.length === 0 || value.length > 254) {
      throw new Refusal(
        'invalid_request',
        'subject_claim_missing',
        `the subject token has no usable ${trusted.userClaim}`,
      );
    }
    if (trusted.userMatch === 'email' && claims.email_verified === false) {
      throw new Refusal('invalid_request', 'subject_email_unverified', 'the subject email is not verified');
    }
    const user = await this.#mapUser(value, trusted.userMatch);
    return { claims, user, act: undefined, scopes: undefined, grantChain: [], issuer: trusted.issuer };
  }

  async #wardenSubject(token: string) {
    const claims = await this.#opts.activeClaims(token);
    if (!claims?.jti) {
      throw new Refusal('invalid_request', 'subject_token_inactive', 'the subject token is not active');
    }
    let act: ActClaim | undefined;
    if (claims.act !== undefined) {
      act = claims.act as ActClaim;
      actDepth(act);
    } else if (
      typeof claims.client_id === 'string' &&
      claims.client_id !== claims.sub &&
      claims.client_id !== CONSOLE_CLIENT_ID
    ) {
      // A token issued to an agent for the user without act (e.g. by authorization code): that
      // agent is the previous actor, so the chain does not lose it.
      act = { sub: claims.client_id };
    }
    // A Warden token speaks for a user only when delegated (act) or issued to the user directly.
    const user = await this.#lookupUser(String(claims.sub), 'id');
    if (!user) {
      throw new Refusal(
        'invalid_request',
        'subject_not_a_user',
        'the subject token does not speak for a user',
      );
    }
    const grantChain = await this.#opts.issued.grantsOf(claims.jti);
    // The person's own console token (authorization_code, no act) speaks for them wholly: it
    // carries no scope of any agent resource, so the grant alone bounds what is exchanged.
    const own = claims.client_id === CONSOLE_CLIENT_ID && act === undefined;
    const scopes = own
      ? undefined
      : typeof claims.scope === 'string'
        ? claims.scope.split(' ').filter(Boolean)
        : [];
    return { claims, user, act, scopes, grantChain, issuer: this.#opts.issuer };
  }

  async #mapUser(value: string, match: 'email' | 'username' | 'id'): Promise<User> {
    const user = await this.#lookupUser(value, match);
    if (!user) throw new Refusal('invalid_grant', 'user_unknown', 'the subject is not a Warden user');
    return user;
  }

  async #lookupUser(value: string, match: 'email' | 'username' | 'id'): Promise<User | undefined> {
    if (match === 'email') {
      const found = await this.#opts.users.findByEmail(value);
      if (found.length > 1)
        throw new Refusal('invalid_grant', 'user_ambiguous', 'the subject email is ambiguous');
      return found[0];
    }
    try {
      const user = await this.#opts.users.get(value);
      return (match === 'id' ? user.id : user.username) === value ? user : undefined;
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  /** The actor token, when given, must be an active Warden token of this very client. */
  async #checkActor(params: Record<string, unknown>, agentId: string): Promise<void> {
    const token = stringParam(params.actor_token, 'actor_token');
    const type = stringParam(params.actor_token_type, 'actor_token_type');
    if (!SUBJECT_TYPES.has(type)) {
      throw new Refusal(
        'invalid_request',
        'unsupported_actor_token_type',
        'actor_token_type must be an access token or a JWT',
      );
    }
    const claims = token.length <= TOKEN_MAX_CHARS ? await this.#opts.activeClaims(token) : undefined;
    if (!claims || claims.client_id !== agentId || claims.sub !== agentId || claims.act !== undefined) {
      throw new Refusal(
        'invalid_request',
        'actor_token_mismatch',
        'the actor token does not identify this client',
      );
    }
  }

  /** RFC 8707 `resource` (or RFC 8693 `audience` naming one): one configured resource the grant allows. */
  #resource(params: Record<string, unknown>, grants: DelegationGrant[]): string {
    const given = params.resource ?? params.audience;
    if (Array.isArray(given) && given.length !== 1) {
      throw new Refusal(
        'invalid_target',
        'multiple_resources',
        'only a single resource indicator is supported',
      );
    }
    const value = Array.isArray(given) ? String(given[0]) : given === undefined ? undefined : String(given);
    if (value === undefined) {
      const granted = grants.find((g) => g.resources.length > 0)?.resources[0];
      return grants.some((g) => g.resources.length === 0) || !granted
        ? (this.#opts.resources[0] as string)
        : granted;
    }
    if (!this.#opts.resources.includes(value)) {
      throw new Refusal(
        'invalid_target',
        'resource_unknown',
        'the resource is not served by this authorization server',
      );
    }
    return value;
  }
}

interface Subject {
  claims: JWTPayload;
  user: User;
  act: ActClaim | undefined;
  scopes: string[] | undefined;
  grantChain: string[];
  issuer: string;
}

/** The single `resource` parameter, when there is exactly one. */
function singleResource(value: unknown): string | undefined {
  if (Array.isArray(value)) return value.length === 1 ? String(value[0]) : undefined;
  return typeof value === 'string' ? value : undefined;
}

function stringParam(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new Refusal('invalid_request', `missing_${name}`, `${name} is required`);
  }
  return value;
}

/** Levels in an `act` chain; a malformed or absurdly deep chain is refused. */
function actDepth(act: unknown): number {
  let depth = 0;
  let cur = act;
  while (cur !== undefined) {
    if (typeof cur !== 'object' || cur === null || typeof (cur as ActClaim).sub !== 'string' || depth > 10) {
      throw new Refusal(
        'invalid_request',
        'subject_act_malformed',
        'the subject token act claim is malformed',
      );
    }
    depth += 1;
    cur = (cur as ActClaim).act;
  }
  return depth;
}

function actorsOf(act: ActClaim): string[] {
  const out: string[] = [];
  for (let cur: ActClaim | undefined = act; cur; cur = cur.act) out.push(cur.sub);
  return out;
}

function templateOf(client: Record<string, unknown>): { lifetime: number; allowedScopes: string[] } {
  const lifetime = client.warden_token_lifetime ?? client.wardenTokenLifetime;
  const scopes = client.warden_allowed_scopes ?? client.wardenAllowedScopes;
  return {
    lifetime: typeof lifetime === 'number' ? lifetime : 300,
    allowedScopes: Array.isArray(scopes) ? (scopes as string[]) : [],
  };
}

/** A stable reason code for a failed JWT verification (never the token). */
function joseReason(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `${e.claim}_invalid`;
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'unknown_key';
  if (e instanceof joseErrors.JWKSTimeout) return 'jwks_unavailable';
  if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid) return 'malformed';
  return 'invalid';
}
