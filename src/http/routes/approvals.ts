import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  type Approver,
  approvalListQuerySchema,
  approvalViewSchema,
  approverStatsSchema,
  channelInputSchema,
  channelViewSchema,
  cookie,
  decisionBodySchema,
  groupInputSchema,
  groupViewSchema,
  LOGIN_COOKIE,
  PAGE_CSP,
  type PageSession,
  PageSessions,
  parseCookies,
  renderError,
  renderInbox,
  renderLogin,
  renderRequest,
  SESSION_COOKIE,
  sameToken,
} from '../../approvals/index.ts';
import { NotFoundError, randomToken, WardenError } from '../../core/index.ts';
import { type Caller, ROLES } from '../../identity/index.ts';
import { type AnyRoute, defineRoute } from '../route.ts';
import type { Warden } from '../warden.ts';

const DECIDERS = ROLES; // eligibility (rule, separation of duties) is decided per request
const READERS = ['admin', 'approver', 'security_analyst', 'auditor', 'agent_owner'] as const;
const idParams = z.object({ id: z.uuid() }).strict();
const nameParams = z.object({ name: z.string().min(1).max(64) }).strict();

function approverOf(caller: Caller): Approver {
  return {
    type: 'user',
    id: caller.userId,
    name: caller.username,
    roles: [caller.role],
    request: caller.request,
  };
}

/** Admin API of approvals: list, show, approve, deny; channels and approver groups. */
export function approvalsRoutes(warden: Warden): AnyRoute[] {
  const { approvals } = warden;
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/approvals',
      tag: 'approvals',
      summary: 'List approval requests (agent owners see those about their agents or on their behalf)',
      auth: READERS,
      query: approvalListQuerySchema,
      response: { status: 200, schema: z.object({ items: z.array(approvalViewSchema) }) },
      handler: async ({ query, caller }) => ({
        items: await approvals.list(query, { userId: caller.userId, roles: [caller.role] }),
      }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/approvals/stats',
      tag: 'approvals',
      summary: 'Per-approver decision counts, approve ratio and latency',
      auth: ['admin', 'security_analyst'],
      query: z.object({ since: z.coerce.number().int().min(0).optional() }).strict(),
      response: { status: 200, schema: z.object({ items: z.array(approverStatsSchema) }) },
      handler: async ({ query }) => ({ items: await approvals.stats(query.since) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/approvals/channels',
      tag: 'approvals',
      summary: 'List notification channels (secrets never shown)',
      auth: ['admin'],
      response: { status: 200, schema: z.object({ items: z.array(channelViewSchema) }) },
      handler: async () => ({ items: await approvals.channels.list() }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/approvals/channels',
      tag: 'approvals',
      summary: 'Add a notification channel: signed webhook, SMTP email or Slack incoming webhook',
      auth: ['admin'],
      body: channelInputSchema,
      response: { status: 201, schema: channelViewSchema },
      handler: ({ body, caller }) => approvals.channels.create(body, caller),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/approvals/channels/:name',
      tag: 'approvals',
      summary: 'Remove a notification channel',
      auth: ['admin'],
      params: nameParams,
      response: { status: 204 },
      handler: async ({ params, caller }) => {
        await approvals.channels.delete(params.name, caller);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/approvals/groups',
      tag: 'approvals',
      summary: 'List approver groups',
      auth: ['admin', 'security_analyst', 'approver'],
      response: { status: 200, schema: z.object({ items: z.array(groupViewSchema) }) },
      handler: async () => ({ items: await approvals.groups.list() }),
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/approvals/groups/:name',
      tag: 'approvals',
      summary: 'Create or replace an approver group',
      auth: ['admin'],
      params: nameParams,
      body: groupInputSchema,
      response: { status: 200, schema: groupViewSchema },
      handler: ({ params, body, caller }) => approvals.groups.put(params.name, body.members, caller),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/approvals/:id',
      tag: 'approvals',
      summary: 'Show an approval request',
      auth: READERS,
      params: idParams,
      response: { status: 200, schema: approvalViewSchema },
      handler: async ({ params, caller }) => {
        const view = await approvals.get(params.id);
        const broad = ['admin', 'approver', 'security_analyst', 'auditor'].includes(caller.role);
        if (!broad && view.agent.owner_id !== caller.userId && view.user_id !== caller.userId) {
          throw new NotFoundError(`approval request ${params.id} does not exist`, {
            code: 'ERR_APPROVAL_NOT_FOUND',
          });
        }
        return view;
      },
    }),
    ...(['approve', 'deny'] as const).map((decision) =>
      defineRoute({
        method: 'POST',
        url: `/v1/approvals/:id/${decision}`,
        tag: 'approvals',
        summary: `${decision === 'approve' ? 'Approve' : 'Deny'} a pending request (the approvers its rule names; never the agent's owner unless allowed)`,
        auth: DECIDERS,
        params: idParams,
        body: decisionBodySchema,
        response: { status: 200, schema: approvalViewSchema },
        handler: ({ params, body, caller }) =>
          approvals.decide(params.id, decision, approverOf(caller), body.comment),
      }),
    ),
  ];
}

/**
 * The server-rendered approval page (`/approvals`, `/approvals/:id`): sign-in with username and
 * password, a sealed HttpOnly session cookie, a CSRF token on every form, all output escaped, no
 * script, and a strict Content-Security-Policy.
 */
export function registerApprovalPages(app: FastifyInstance, warden: Warden): void {
  const sessions = new PageSessions(warden.keyring, warden.clock);
  const secure = warden.publicUrl.startsWith('https:');
  const attempts = new Map<string, number[]>();

  const html = (reply: FastifyReply, status: number, body: string) =>
    reply
      .status(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', PAGE_CSP)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(body);

  const loginForm = (reply: FastifyReply, next: string, status = 200, error?: string) => {
    const token = randomToken(24);
    reply.header('set-cookie', cookie(LOGIN_COOKIE, token, 600, secure));
    return html(reply, status, renderLogin({ next, csrf: token, ...(error ? { error } : {}) }));
  };

  const sessionOf = async (request: FastifyRequest): Promise<PageSession | undefined> => {
    const session = sessions.read(parseCookies(request.headers.cookie)[SESSION_COOKIE]);
    if (!session) return undefined;
    try {
      const user = await warden.identity.users.get(session.userId);
      return user.status === 'active' ? session : undefined;
    } catch {
      return undefined;
    }
  };

  const approverFor = async (session: PageSession, request: FastifyRequest): Promise<Approver> => {
    const user = await warden.identity.users.get(session.userId);
    return {
      type: 'user',
      id: user.id,
      name: user.username,
      roles: user.roles,
      request: {
        source_ip: request.ip,
        user_agent: request.headers['user-agent']?.slice(0, 300),
        request_id: request.id,
      },
    };
  };

  const safeNext = (next: unknown) =>
    typeof next === 'string' && /^\/approvals(\/[0-9a-f-]{36})?$/.test(next) ? next : '/approvals';

  app.register(async (scope) => {
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 16 * 1024 },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    scope.setErrorHandler((error, _request, reply) => {
      const e = error as Error & { statusCode?: number };
      if (e instanceof WardenError) return html(reply, e.status, renderError(e.title, e.message));
      const status = e.statusCode && e.statusCode < 500 ? e.statusCode : 500;
      if (status >= 500) warden.logger.error({ err: { message: e.message } }, 'approval page failed');
      return html(
        reply,
        status,
        renderError(
          'Error',
          status < 500 ? 'The request could not be processed.' : 'An unexpected error occurred.',
        ),
      );
    });

    scope.get('/approvals', async (request, reply) => {
      const session = await sessionOf(request);
      if (!session) return loginForm(reply, '/approvals');
      const user = await warden.identity.users.get(session.userId);
      const views = await warden.approvals.list({ limit: 100 }, { userId: user.id, roles: user.roles });
      views.sort((a, b) => Number(b.status === 'pending') - Number(a.status === 'pending'));
      return html(reply, 200, renderInbox(views, { username: session.username, csrf: session.csrf }));
    });

    scope.get<{ Params: { id: string } }>('/approvals/:id', async (request, reply) => {
      const id = request.params.id;
      if (!/^[0-9a-f-]{36}$/.test(id))
        return html(reply, 404, renderError('Not found', 'No such approval request.'));
      const session = await sessionOf(request);
      if (!session) return loginForm(reply, `/approvals/${id}`);
      const approver = await approverFor(session, request);
      const view = await warden.approvals.get(id);
      const mayRead =
        approver.roles.some((r) => ['admin', 'approver', 'security_analyst', 'auditor'].includes(r)) ||
        view.agent.owner_id === approver.id ||
        view.user_id === approver.id;
      if (!mayRead) return html(reply, 404, renderError('Not found', 'No such approval request.'));
      const done = (request.query as Record<string, string>).done;
      const names: Record<string, string> = {};
      for (const uid of [view.agent.owner_id, view.user_id]) {
        if (uid && !names[uid]) {
          names[uid] = await warden.identity.users.get(uid).then(
            (u) => u.display_name ?? u.username,
            () => uid,
          );
        }
      }
      return html(
        reply,
        200,
        renderRequest(view, {
          username: session.username,
          csrf: session.csrf,
          canDecide: await warden.approvals.canDecide(id, approver),
          names,
          ...(done === 'approved' || done === 'denied' ? { message: `You ${done} this request.` } : {}),
        }),
      );
    });

    scope.post<{ Body: Record<string, string> }>('/approvals/login', async (request, reply) => {
      const body = request.body ?? {};
      const next = safeNext(body.next);
      if (!sameToken(body.csrf, parseCookies(request.headers.cookie)[LOGIN_COOKIE])) {
        return loginForm(reply, next, 403, 'The sign-in form expired; please try again.');
      }
      const key = `${request.ip}|${String(body.username ?? '')}`;
      const now = warden.clock.now();
      const recent = (attempts.get(key) ?? []).filter((t) => now - t < 5 * 60_000);
      if (recent.length >= 5)
        return loginForm(reply, next, 429, 'Too many failed sign-ins; try again later.');
      try {
        const user = await warden.identity.users.verifyPassword(
          String(body.username ?? ''),
          String(body.password ?? ''),
        );
        attempts.delete(key);
        const { value } = sessions.issue(user);
        await warden.auditor.record({
          type: 'auth.login_succeeded',
          actor: { type: 'user', id: user.id, name: user.username },
          action: 'approvals.page.login',
          outcome: 'success',
          request: { source_ip: request.ip, request_id: request.id },
        });
        reply.header('set-cookie', [
          cookie(SESSION_COOKIE, value, sessions.ttlSeconds, secure),
          cookie(LOGIN_COOKIE, '', 0, secure),
        ]);
        return reply.redirect(next, 303);
      } catch (e) {
        if (!(e instanceof WardenError) || e.status !== 401) throw e;
        recent.push(now);
        attempts.set(key, recent);
        if (attempts.size > 10_000) attempts.clear();
        await warden.auditor.record({
          type: 'auth.login_failed',
          actor: { type: 'anonymous', id: String(body.username ?? '').slice(0, 64) },
          action: 'approvals.page.login',
          outcome: 'denied',
          error_code: e.code,
          request: { source_ip: request.ip, request_id: request.id },
        });
        return loginForm(reply, next, 401, 'Wrong username or password.');
      }
    });

    scope.post<{ Body: Record<string, string> }>('/approvals/logout', async (request, reply) => {
      const session = await sessionOf(request);
      if (session && !sameToken(request.body?.csrf, session.csrf)) {
        return html(reply, 403, renderError('Forbidden', 'The form did not come from this page.'));
      }
      reply.header('set-cookie', cookie(SESSION_COOKIE, '', 0, secure));
      return reply.redirect('/approvals', 303);
    });

    scope.post<{ Params: { id: string }; Body: Record<string, string> }>(
      '/approvals/:id/decision',
      async (request, reply) => {
        const id = request.params.id;
        if (!/^[0-9a-f-]{36}$/.test(id))
          return html(reply, 404, renderError('Not found', 'No such approval request.'));
        const session = await sessionOf(request);
        if (!session)
          return loginForm(reply, `/approvals/${id}`, 401, 'Your session ended; please sign in again.');
        const body = request.body ?? {};
        if (!sameToken(body.csrf, session.csrf)) {
          return html(
            reply,
            403,
            renderError(
              'Forbidden',
              'The form did not come from this page (CSRF check failed); nothing was decided.',
            ),
          );
        }
        const decision = body.decision;
        if (decision !== 'approve' && decision !== 'deny') {
          return html(reply, 400, renderError('Invalid request', 'Choose approve or deny.'));
        }
        const comment =
          typeof body.comment === 'string' && body.comment.trim()
            ? body.comment.trim().slice(0, 1000)
            : undefined;
        const view = await warden.approvals.decide(
          id,
          decision,
          await approverFor(session, request),
          comment,
        );
        return reply.redirect(
          `/approvals/${id}?done=${view.status === 'denied' ? 'denied' : 'approved'}`,
          303,
        );
      },
    );
  });
}
