import type { FastifyInstance } from 'fastify';
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
  // Attestation-based client authentication: a fresh PoP challenge (and DPoP nonce).
  { method: 'POST', url: '/challenge' },
];

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
}
