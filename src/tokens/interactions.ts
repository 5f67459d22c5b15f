import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { default as Provider } from 'oidc-provider';
import { z } from 'zod';
import type { Auditor, AuditRequestMeta } from '../audit/index.ts';
import {
  type Clock,
  NotFoundError,
  RateLimitedError,
  randomToken,
  UnauthenticatedError,
} from '../core/index.ts';
import type { AgentRegistry, TemplateRegistry, UserDirectory } from '../identity/index.ts';
import { CONSOLE_CLIENT_ID } from './console-client.ts';
import {
  type ConsentView,
  interactionPageCsp,
  renderConsentPage,
  renderInteractionError,
  renderLoginPage,
} from './interaction-pages.ts';

/** The CSRF cookie of the sign-in and consent forms (double submit, bound to the browser). */
export const INTERACTION_CSRF_COOKIE = 'warden_interaction_csrf';

/** Consent durations offered (seconds), cut at the template's `delegation.max_duration_seconds`. */
const DURATIONS = [3600, 8 * 3600, 86_400, 7 * 86_400, 30 * 86_400, 90 * 86_400];

const loginForm = z.object({
  csrf: z.string().min(1).max(200),
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
});
const consentForm = z.object({
  csrf: z.string().min(1).max(200),
  decision: z.enum(['approve', 'deny']),
  scope: z.array(z.string().min(1).max(128)).max(100),
  duration: z.coerce
    .number()
    .int()
    .min(60)
    .max(90 * 86_400),
});

/** What the HTTP layer sends back for an interaction request. */
export interface InteractionResponse {
  status: number;
  /** A page to render (HTML), or… */
  html?: string;
  /** …where to send the browser (303). */
  redirect?: string;
  /** Set-Cookie values. */
  cookies: string[];
  /** Headers every interaction page carries (CSP, no caching, no framing). */
  headers: Record<string, string>;
}

/** A delegation the consent screen approved: what {@link InteractionsDeps.grantDelegation} records. */
export interface ConsentedDelegation {
  userId: string;
  username: string;
  agentId: string;
  agentName: string;
  scopes: string[];
  resource: string;
  purpose: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  request: AuditRequestMeta;
}

export interface InteractionsDeps {
  provider: () => Provider;
  users: UserDirectory;
  agents: AgentRegistry;
  templates: TemplateRegistry;
  auditor: Auditor;
  clock: Clock;
  /** Whether cookies must be `Secure` (the issuer is https). */
  secure: boolean;
  trustProxy: boolean;
  /**
   * Records the Warden delegation grant for an approved consent (with its `delegation.granted`
   * audit event) and returns its id; the library's Grant is created under the same id, so
   * revoking the Warden grant reaches every code and token issued under it.
   */
  grantDelegation: (delegation: ConsentedDelegation) => Promise<string>;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/**
 * The people-facing half of the authorization_code flow: Warden's own sign-in page (the identity
 * part's throttled password check) and the delegation consent screen, driven through
 * oidc-provider's interaction API. Pages carry no script and a strict CSP; every form carries a
 * CSRF token bound to a cookie; nothing secret ever goes in a URL.
 */
export class Interactions {
  readonly #deps: InteractionsDeps;

  constructor(deps: InteractionsDeps) {
    this.#deps = deps;
  }

  /** GET /interaction/:uid — the page the current prompt needs (sign-in or consent). */
  async show(uid: string, req: IncomingMessage, res: ServerResponse): Promise<InteractionResponse> {
    const details = await this.#details(uid, req, res);
    if (!details) return this.#expired();
    const csrf = randomToken(24);
    if (details.prompt.name === 'login') {
      return this.#page(
        200,
        renderLoginPage({ uid, csrf, clientName: await this.#clientName(details) }),
        [this.#csrfCookie(csrf)],
        details,
      );
    }
    if (details.prompt.name === 'consent') {
      if (details.params.client_id === CONSOLE_CLIENT_ID) {
        return this.#consoleConsent(details, req, res);
      }
      const view = await this.#consentView(details, csrf);
      if ('refusal' in view) return view.refusal;
      return this.#page(200, renderConsentPage(view), [this.#csrfCookie(csrf)], details);
    }
    return this.#page(
      400,
      renderInteractionError('Not supported', 'This sign-in step is not supported.'),
      [],
    );
  }

  /** POST /interaction/:uid/login — checks the password (throttled) and resumes the authorization. */
  async login(
    uid: string,
    req: IncomingMessage,
    res: ServerResponse,
    form: URLSearchParams,
  ): Promise<InteractionResponse> {
    const details = await this.#details(uid, req, res);
    if (details?.prompt.name !== 'login') return this.#expired();
    const clientName = await this.#clientName(details);
    const fresh = randomToken(24);
    const again = (status: number, error: string) =>
      this.#page(
        status,
        renderLoginPage({ uid, csrf: fresh, clientName, error }),
        [this.#csrfCookie(fresh)],
        details,
      );
    const parsed = loginForm.safeParse(Object.fromEntries(form));
    const request = this.#requestMeta(req);
    if (!parsed.success || !this.#csrfOk(req, parsed.data.csrf)) {
      await this.#audit({
        type: 'auth.login_failed',
        actor: { type: 'anonymous', id: String(form.get('username') ?? 'unknown').slice(0, 64) },
        action: 'oauth.authorize.login',
        outcome: 'denied',
        error_code: parsed.success ? 'ERR_CSRF' : 'ERR_INVALID_REQUEST',
        request,
        details: { client_id: details.params.client_id },
      });
      return again(
        parsed.success ? 403 : 400,
        parsed.success ? 'The sign-in form expired; please try again.' : 'Enter a username and password.',
      );
    }
    let userId: string;
    try {
      const user = await this.#deps.users.signIn(parsed.data.username, parsed.data.password, request, {
        action: 'oauth.authorize.login',
      });
      userId = user.id;
    } catch (e) {
      if (e instanceof RateLimitedError) {
        await this.#audit({
          type: 'auth.login_failed',
          actor: { type: 'anonymous', id: parsed.data.username },
          action: 'oauth.authorize.login',
          outcome: 'denied',
          error_code: e.code,
          request,
          details: { reason: 'throttled', client_id: details.params.client_id },
        });
        return again(429, 'Too many failed sign-ins; try again later.');
      }
      if (e instanceof UnauthenticatedError) return again(401, 'Wrong username or password.');
      throw e;
    }
    const returnTo = await this.#deps
      .provider()
      .interactionResult(
        req,
        res,
        { login: { accountId: userId, remember: false, amr: ['pwd'] } },
        { mergeWithLastSubmission: false },
      );
    return this.#redirect(returnTo, [this.#csrfCookie('', 0)]);
  }

  /** POST /interaction/:uid/consent — the user's decision on a delegation request. */
  async consent(
    uid: string,
    req: IncomingMessage,
    res: ServerResponse,
    form: URLSearchParams,
  ): Promise<InteractionResponse> {
    const details = await this.#details(uid, req, res);
    if (details?.prompt.name !== 'consent' || details.params.client_id === CONSOLE_CLIENT_ID) {
      return this.#expired();
    }
    // A second submission of the same screen (double click, back button) creates nothing more.
    const decided = (details.result as { consent?: { grantId?: string } } | undefined)?.consent?.grantId;
    if (decided) return this.#redirect(details.returnTo, []);
    const request = this.#requestMeta(req);
    const userId = String(details.session?.accountId ?? '');
    const clientId = String(details.params.client_id);
    const parsed = consentForm.safeParse({
      csrf: form.get('csrf') ?? '',
      decision: form.get('decision') ?? '',
      scope: form.getAll('scope'),
      duration: form.get('duration') ?? '',
    });
    const refuse = async (status: number, reason: string, message: string) => {
      await this.#audit({
        type: 'authorization.consent_denied',
        actor: { type: 'user', id: userId },
        action: 'oauth.authorize.consent',
        resource: { type: 'agent', id: clientId },
        outcome: 'denied',
        error_code: reason,
        request,
        details: { reason },
      });
      const csrf = randomToken(24);
      const view = await this.#consentView(details, csrf, message);
      if ('refusal' in view) return view.refusal;
      return this.#page(status, renderConsentPage(view), [this.#csrfCookie(csrf)], details);
    };
    if (!parsed.success) return refuse(400, 'invalid_request', 'The form was not complete.');
    if (!this.#csrfOk(req, parsed.data.csrf)) {
      return refuse(403, 'csrf_failed', 'The form did not come from this page; nothing was granted.');
    }
    const view = await this.#consentView(details, 'unused');
    if ('refusal' in view) return view.refusal;
    if (parsed.data.decision === 'deny') {
      await this.#audit({
        type: 'authorization.consent_denied',
        actor: { type: 'user', id: userId, name: view.username },
        action: 'oauth.authorize.consent',
        resource: { type: 'agent', id: clientId, name: view.agent.name },
        outcome: 'denied',
        error_code: 'access_denied',
        request,
        details: { reason: 'user_denied', requested_scope: view.scopes.join(' ') },
      });
      const returnTo = await this.#deps.provider().interactionResult(req, res, {
        error: 'access_denied',
        error_description: 'the user denied the request',
      });
      return this.#redirect(returnTo, [this.#csrfCookie('', 0)]);
    }
    const chosen = [...new Set(parsed.data.scope)];
    const outside = chosen.filter((s) => !view.scopes.includes(s));
    if (outside.length > 0) {
      return refuse(400, 'scope_not_grantable', `Not grantable: ${outside.join(' ')}. Nothing was granted.`);
    }
    if (chosen.length === 0) return refuse(400, 'no_scope', 'Choose at least one permission, or deny.');
    if (!view.durations.includes(parsed.data.duration)) {
      return refuse(400, 'invalid_duration', 'Choose one of the offered durations.');
    }
    const expiresAt = this.#deps.clock.now() + parsed.data.duration * 1000;
    const grantId = await this.#deps.grantDelegation({
      userId,
      username: view.username,
      agentId: clientId,
      agentName: view.agent.name,
      scopes: chosen,
      resource: view.resource,
      purpose: view.purpose,
      expiresAt,
      request,
    });
    const provider = this.#deps.provider();
    // The library's own bookkeeping, under the Warden grant's id (see grantDelegation).
    const grant = new provider.Grant({
      jti: grantId,
      accountId: userId,
      clientId,
      expiresIn: parsed.data.duration,
    } as never);
    grant.addResourceScope(view.resource, chosen.join(' '));
    // Offered but not chosen: recorded as rejected, so the library does not ask again.
    const unchosen = view.scopes.filter((s) => !chosen.includes(s));
    if (unchosen.length > 0) grant.rejectResourceScope(view.resource, unchosen.join(' '));
    // OpenID scopes and claims are the console's business: an agent gets none (recorded as
    // rejected, so the request completes without them and no ID token is issued to it).
    const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
    if (missing.missingOIDCScope?.length) grant.rejectOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims?.length) grant.rejectOIDCClaims(missing.missingOIDCClaims);
    await grant.save();
    const returnTo = await provider.interactionResult(
      req,
      res,
      { consent: { grantId } },
      { mergeWithLastSubmission: true },
    );
    return this.#redirect(returnTo, [this.#csrfCookie('', 0)]);
  }

  /**
   * The console is Warden's own first-party client: signing in is the consent. Its grant holds
   * what it asked for of `openid profile email` and Warden's own resource, nothing else.
   */
  async #consoleConsent(
    details: Details,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<InteractionResponse> {
    const provider = this.#deps.provider();
    const accountId = String(details.session?.accountId ?? '');
    const grant = details.grantId
      ? ((await provider.Grant.find(details.grantId)) ??
        new provider.Grant({ accountId, clientId: CONSOLE_CLIENT_ID }))
      : new provider.Grant({ accountId, clientId: CONSOLE_CLIENT_ID });
    const prompt = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const oidc = (prompt.missingOIDCScope ?? []).filter((s) => ['openid', 'profile', 'email'].includes(s));
    if (oidc.length) grant.addOIDCScope(oidc.join(' '));
    if (prompt.missingOIDCClaims?.length) grant.addOIDCClaims(prompt.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(prompt.missingResourceScopes ?? {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const grantId = await grant.save();
    const returnTo = await provider.interactionResult(
      req,
      res,
      { consent: { grantId } },
      { mergeWithLastSubmission: true },
    );
    return this.#redirect(returnTo, []);
  }

  async #consentView(
    details: Details,
    csrf: string,
    error?: string,
  ): Promise<ConsentView | { refusal: InteractionResponse }> {
    const clientId = String(details.params.client_id);
    const userId = String(details.session?.accountId ?? '');
    let resolved: Awaited<ReturnType<AgentRegistry['resolve']>>;
    try {
      resolved = await this.#deps.agents.resolve(clientId);
    } catch (e) {
      if (e instanceof NotFoundError) return { refusal: this.#expired() };
      throw e;
    }
    const { agent, provider, template } = resolved;
    const delegation = template.spec.delegation;
    if (!resolved.usable || !delegation?.allowed) {
      return {
        refusal: this.#page(
          403,
          renderInteractionError('Not allowed', 'This agent may not ask for delegated access.'),
          [],
        ),
      };
    }
    const [user, owner, tpl] = await Promise.all([
      this.#deps.users.get(userId),
      this.#deps.users.get(agent.owner_id).catch(() => undefined),
      this.#deps.templates.get(template.template_id),
    ]);
    const requested = String(details.params.scope ?? '')
      .split(' ')
      .filter(Boolean);
    const allowed = new Set(template.spec.allowed_scopes);
    const resource = Array.isArray(details.params.resource)
      ? String(details.params.resource[0])
      : String(details.params.resource ?? '');
    return {
      uid: details.uid,
      csrf,
      username: user.username,
      agent: { id: agent.id, name: agent.name, purpose: agent.purpose },
      owner: owner ? (owner.display_name ?? owner.username) : agent.owner_id,
      provider: provider.display_name ?? provider.name,
      template: { name: tpl.name, version: template.version },
      purpose: String(details.params.purpose ?? ''),
      resource,
      scopes: requested.filter((s) => allowed.has(s)),
      refused: requested.filter((s) => !allowed.has(s)),
      durations: DURATIONS.filter((d) => d <= delegation.max_duration_seconds).concat(
        DURATIONS.includes(delegation.max_duration_seconds) ? [] : [delegation.max_duration_seconds],
      ),
      ...(error ? { error } : {}),
    };
  }

  async #details(uid: string, req: IncomingMessage, res: ServerResponse): Promise<Details | undefined> {
    try {
      const details = await this.#deps.provider().interactionDetails(req, res);
      // The cookie names the interaction; the URL must name the same one.
      return details.uid === uid ? details : undefined;
    } catch (e) {
      if ((e as { name?: string }).name === 'SessionNotFound') return undefined;
      throw e;
    }
  }

  async #clientName(details: Details): Promise<string> {
    const clientId = String(details.params.client_id);
    if (clientId === CONSOLE_CLIENT_ID) return 'the Warden console';
    const client = await this.#deps.provider().Client.find(clientId);
    return client?.clientName ?? clientId;
  }

  #csrfOk(req: IncomingMessage, token: string): boolean {
    const cookie = parseCookies(req.headers.cookie)[INTERACTION_CSRF_COOKIE];
    if (!cookie || cookie.length !== token.length) return false;
    return timingSafeEqual(Buffer.from(cookie), Buffer.from(token));
  }

  #csrfCookie(value: string, maxAge = 600): string {
    return [
      `${INTERACTION_CSRF_COOKIE}=${value}`,
      'Path=/interaction',
      `Max-Age=${maxAge}`,
      'HttpOnly',
      'SameSite=Lax',
      ...(this.#deps.secure ? ['Secure'] : []),
    ].join('; ');
  }

  #requestMeta(req: IncomingMessage): AuditRequestMeta {
    const forwarded = this.#deps.trustProxy
      ? String(req.headers['x-forwarded-for'] ?? '')
          .split(',')[0]
          ?.trim()
      : undefined;
    return {
      source_ip: forwarded || req.socket.remoteAddress || 'unknown',
      user_agent: String(req.headers['user-agent'] ?? '').slice(0, 300) || undefined,
    };
  }

  async #audit(event: Parameters<Auditor['record']>[0]): Promise<void> {
    await this.#deps.auditor.record(event);
  }

  #expired(): InteractionResponse {
    return this.#page(
      400,
      renderInteractionError(
        'Sign-in expired',
        'This sign-in request has expired or was already completed. Start again from the application.',
      ),
      [],
    );
  }

  #page(status: number, html: string, cookies: string[], details?: Details): InteractionResponse {
    const redirectUri = details?.params.redirect_uri;
    return {
      status,
      html,
      cookies,
      headers: {
        ...PAGE_HEADERS,
        'content-security-policy': interactionPageCsp(
          typeof redirectUri === 'string' ? redirectUri : undefined,
        ),
      },
    };
  }

  #redirect(location: string, cookies: string[]): InteractionResponse {
    return { status: 303, redirect: location, cookies, headers: PAGE_HEADERS };
  }
}

const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy': interactionPageCsp(),
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/** Parses a Cookie header into name → value (first occurrence wins). */
function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 1) continue;
    const name = part.slice(0, i).trim();
    if (!(name in out)) out[name] = part.slice(i + 1).trim();
  }
  return out;
}
