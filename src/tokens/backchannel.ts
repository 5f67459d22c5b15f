import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { NotFoundError } from '../core/index.ts';
import type { UserDirectory } from '../identity/index.ts';

/** The CIBA grant type (OpenID CIBA Core 1.0 §10.1). */
export const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';
/** Seconds a poll-mode client waits between token requests (CIBA §7.3 `interval`). */
export const CIBA_POLL_INTERVAL = 5;
/** Longest life of a backchannel request, whatever `requested_expiry` asks (seconds). */
export const CIBA_MAX_EXPIRY = 600;
/** Printable text, 1 to 100 characters: shown as-is on the approval page (escaped there). */
const BINDING_MESSAGE = /^[\p{L}\p{N}\p{P}\p{S} ]{1,100}$/u;

/** What a person is asked to approve: handed to the approvals part by the HTTP assembly. */
export interface BackchannelRequest {
  authReqId: string;
  userId: string;
  agentId: string;
  agentName: string;
  bindingMessage: string;
  scopes: string[];
  resource: string | undefined;
  /** When the library request expires (epoch ms): the approval must not outlive it. */
  expiresAt: number;
}

/**
 * The injected link to whoever asks the person (tokens must not import approvals): `request`
 * opens an approval for the user; its decision comes back through `TokenService.decideBackchannel`.
 */
export interface BackchannelHook {
  request(input: BackchannelRequest): Promise<void>;
}

interface Deps {
  users: UserDirectory;
  hook: () => BackchannelHook | undefined;
  now: () => number;
  errors: typeof import('oidc-provider').errors;
}

/**
 * oidc-provider's `features.ciba` for agents: poll and ping, `login_hint` = an active Warden user's
 * username or email, a required binding message, no login_hint_token / user_code.
 */
type CibaFeature = NonNullable<NonNullable<Configuration['features']>['ciba']>;

export function cibaFeature(deps: Deps): CibaFeature {
  const { errors } = deps;
  return {
    enabled: true,
    deliveryModes: ['poll', 'ping'],
    processLoginHint: async (_ctx, hint) => {
      const user = await findActiveUser(deps.users, String(hint));
      if (!user) throw new errors.UnknownUserId('login_hint does not name an active user');
      return user;
    },
    processLoginHintToken: async () => {
      throw new errors.InvalidRequest('login_hint_token is not supported; use login_hint');
    },
    validateBindingMessage: async (_ctx, message) => {
      if (typeof message !== 'string' || !BINDING_MESSAGE.test(message) || message.trim().length === 0) {
        throw new errors.InvalidBindingMessage(
          'binding_message is required: 1 to 100 characters of printable text',
        );
      }
    },
    // CIBA §7.1: request_context is deployment-specific; Warden uses none and ignores it.
    validateRequestContext: async () => undefined,
    verifyUserCode: async (_ctx, _account, userCode) => {
      if (userCode !== undefined) throw new errors.InvalidRequest('user_code is not supported');
    },
    triggerAuthenticationDevice: async (ctx, request, account, client) => {
      const hook = deps.hook();
      if (!hook) throw new errors.UnauthorizedClient('backchannel authentication is not available');
      const r = request as unknown as {
        jti: string;
        scope?: string;
        resource?: string | string[];
        expiration: number;
        params?: Record<string, unknown>;
      };
      const extra = client as unknown as Record<string, unknown>;
      await hook.request({
        authReqId: r.jti,
        userId: account.accountId,
        agentId: client.clientId,
        agentName: String(extra.warden_agent_name ?? client.clientId),
        bindingMessage: String(ctx.oidc.params?.binding_message ?? ''),
        scopes: String(r.scope ?? '')
          .split(' ')
          .filter(Boolean),
        resource: Array.isArray(r.resource) ? r.resource[0] : r.resource,
        expiresAt: deps.now() + r.expiration * 1000,
      });
    },
  };
}

/** The library's account id for a login hint: a username or a unique email of an active user. */
async function findActiveUser(users: UserDirectory, hint: string): Promise<string | undefined> {
  if (hint.length === 0 || hint.length > 320) return undefined;
  if (hint.includes('@')) {
    const found = await users.findByEmail(hint);
    return found.length === 1 && found[0]?.status === 'active' ? found[0].id : undefined;
  }
  try {
    const user = await users.get(hint);
    // `get` also takes an id; a hint names a person by username only.
    return user.status === 'active' && user.username === hint ? user.id : undefined;
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

/**
 * Poll-rate control (CIBA §7.3/§11: `slow_down`): the library does not enforce `interval`, so each
 * node remembers when an auth_req_id was last polled. Per node only: a client spreading polls over
 * nodes behind a balancer is slowed per node, which still bounds the load.
 */
export class PollPacer {
  readonly #last = new Map<string, number>();
  /** @returns true when this poll came sooner than the interval after the previous one. */
  tooSoon(authReqId: string, now: number): boolean {
    const prev = this.#last.get(authReqId);
    this.#last.set(authReqId, now);
    if (this.#last.size > 10_000) {
      for (const [id, at] of this.#last) if (now - at > CIBA_MAX_EXPIRY * 1000) this.#last.delete(id);
    }
    return prev !== undefined && now - prev < CIBA_POLL_INTERVAL * 1000;
  }
}

/**
 * Finishes a /backchannel answer: `interval` on success (the library leaves it out), and an agent
 * whose template does not allow CIBA gets `unauthorized_client` (CIBA §13) where the library says
 * `invalid_request`.
 */
export function finishBackchannelAnswer(ctx: KoaContextWithOIDC): void {
  const body = ctx.body as Record<string, unknown> | undefined;
  if (!body) return;
  if (ctx.status === 200 && typeof body.auth_req_id === 'string') body.interval = CIBA_POLL_INTERVAL;
  if (
    body.error === 'invalid_request' &&
    body.error_description === `${CIBA_GRANT} is not allowed for this client`
  ) {
    ctx.body = {
      error: 'unauthorized_client',
      error_description: "this agent's template does not allow it to ask people out of band (CIBA)",
    };
  }
}

/**
 * How long a backchannel request's record outlives its expiry: long enough that a late poll is
 * answered `expired_token` rather than `invalid_grant` (the records hide expired rows).
 */
export const CIBA_RECORD_GRACE_SECONDS = 600;
