import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { InteractionResponse } from '../../tokens/index.ts';
import type { Warden } from '../warden.ts';

/**
 * The OAuth 2 authorization server's endpoints (src/tokens), served by oidc-provider. Each route
 * hands the raw Node request to the provider in `onRequest`, before Fastify reads the body, and
 * hijacks the reply: the provider parses the form body itself and writes the whole response.
 */
const ENDPOINTS: { method: 'GET' | 'POST'; url: string; target?: string }[] = [
  { method: 'GET', url: '/.well-known/openid-configuration' },
  // RFC 8414 metadata: the same document as OpenID discovery.
  {
    method: 'GET',
    url: '/.well-known/oauth-authorization-server',
    target: '/.well-known/openid-configuration',
  },
  { method: 'GET', url: '/jwks' },
  { method: 'POST', url: '/token' },
  { method: 'POST', url: '/token/introspection' },
  { method: 'POST', url: '/token/revocation' },
  // The authorization endpoint (authorization_code + PKCE) and its resume step after sign-in/consent.
  { method: 'GET', url: '/auth' },
  { method: 'POST', url: '/auth' },
  { method: 'GET', url: '/auth/:uid' },
  // OpenID CIBA: an agent asks a person out of band (the approvals part asks them).
  { method: 'POST', url: '/backchannel' },
  // Attestation-based client authentication: a fresh PoP challenge (and DPoP nonce).
  { method: 'POST', url: '/challenge' },
];

const UID = /^[A-Za-z0-9_-]{10,64}$/;

/** Mounts the authorization server's endpoints on the Fastify server. */
export function registerTokens(app: FastifyInstance, warden: Warden): void {
  for (const endpoint of ENDPOINTS) {
    app.route({
      method: endpoint.method,
      url: endpoint.url,
      onRequest: (request, reply, done) => {
        reply.hijack();
        if (endpoint.target) {
          const query = request.raw.url?.includes('?')
            ? request.raw.url.slice(request.raw.url.indexOf('?'))
            : '';
          request.raw.url = `${endpoint.target}${query}`;
        }
        warden.tokens.handle(request.raw, reply.raw);
        done();
      },
      handler: async () => undefined,
    });
  }
  registerInteractionPages(app, warden);
}

/**
 * Warden's sign-in and consent pages of the authorization_code flow (`/interaction/:uid`), rendered
 * by src/tokens; forms are url-encoded and parsed here, keeping repeated fields (`scope`).
 */
function registerInteractionPages(app: FastifyInstance, warden: Warden): void {
  const send = (reply: FastifyReply, out: InteractionResponse) => {
    reply.status(out.status).headers(out.headers);
    if (out.cookies.length) reply.header('set-cookie', out.cookies);
    if (out.redirect) return reply.redirect(out.redirect, 303);
    return reply.header('content-type', 'text/html; charset=utf-8').send(out.html ?? '');
  };
  const uidOf = (request: FastifyRequest, reply: FastifyReply): string | undefined => {
    const uid = (request.params as { uid?: string }).uid ?? '';
    if (UID.test(uid)) return uid;
    reply.status(404).header('content-type', 'text/plain; charset=utf-8').send('not found');
    return undefined;
  };
  app.register(async (scope) => {
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 16 * 1024 },
      (_request, body, done) => done(null, new URLSearchParams(body as string)),
    );
    scope.get('/interaction/:uid', async (request, reply) => {
      const uid = uidOf(request, reply);
      if (!uid) return reply;
      return send(reply, await warden.tokens.interactions.show(uid, request.raw, reply.raw));
    });
    for (const step of ['login', 'consent'] as const) {
      scope.post(`/interaction/:uid/${step}`, async (request, reply) => {
        const uid = uidOf(request, reply);
        if (!uid) return reply;
        const form = request.body instanceof URLSearchParams ? request.body : new URLSearchParams();
        return send(reply, await warden.tokens.interactions[step](uid, request.raw, reply.raw, form));
      });
    }
  });
}
