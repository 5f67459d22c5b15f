import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WardenError } from '../core/index.ts';
import type { Gateway } from './gateway.ts';
import { parseIntent } from './gateway.ts';
import { GatewayDenial } from './gateway-denial.ts';
import { INTENT_HEADER, incomingCall } from './mcp-endpoint.ts';
import { matchRoute } from './route-match.ts';

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus what must never cross the gateway. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);
/** The agent's credentials and Warden's own request headers stay at the gateway. */
const AGENT_ONLY = new Set(['authorization', 'dpop', 'cookie', INTENT_HEADER, 'x-warden-task-id']);

function strip(headers: IncomingMessage['headers'], extra: Set<string>): Record<string, string | string[]> {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k) || extra.has(k)) continue;
    out[k] = v;
  }
  return out;
}

function toWardenError(d: GatewayDenial): WardenError {
  return new WardenError(
    d.code,
    d.status,
    d.status === 429 ? 'Too many requests' : d.status >= 500 ? 'Bad gateway' : 'Forbidden',
    d.message,
    {
      headers: d.retryAfter ? { 'retry-after': String(d.retryAfter) } : {},
      extensions: d.decision
        ? {
            decision: d.decision.decision,
            approval_required: d.decision.approval_required,
            policies: d.decision.determining_policies.map((p) => p.id),
          }
        : {},
    },
  );
}

/**
 * `/proxy/<upstream>/<path>`: REST calls through the same path as MCP calls. The route rules map
 * method + path to a Cedar `Endpoint`; unmatched requests are denied. Bodies stream both ways;
 * hop-by-hop headers and the agent's Authorization/DPoP headers are never forwarded; the vault's
 * credential is injected instead.
 */
export function mountHttpProxy(app: FastifyInstance, gateway: Gateway): void {
  void app.register(async (scope) => {
    // Bodies are streamed to the upstream untouched: no parsing, no buffering.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.all<{ Params: { name: string; '*': string } }>('/proxy/:name/*', async (request, reply) => {
      const upstream = await gateway.httpUpstream(request.params.name);
      const resourcePath = `/proxy/${upstream.name}`;
      const auth = await gateway.authenticate(
        incomingCall(request),
        resourcePath,
        gateway.proxyResource(upstream.name),
      );
      gateway.checkScopes(auth, upstream, resourcePath);
      const rawPath = `/${request.url.split('?')[0]?.split('/').slice(3).join('/') ?? ''}`;
      const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
      const match = matchRoute(upstream.routes, request.method, rawPath);
      const base = new URL(upstream.url as string);
      const target = new URL(`${base.pathname.replace(/\/$/, '')}${rawPath}${query}`, base);
      const http = { method: request.method, host: base.host, path: rawPath };
      const intent = parseIntent(request.headers[INTENT_HEADER]);
      const body = request.body as Readable | undefined;
      try {
        const upstreamRes = await gateway.governHttp(
          auth,
          upstream,
          match?.rule.endpoint ?? '(unmatched)',
          match?.params ?? {},
          http,
          intent,
          (injected) =>
            new Promise<IncomingMessage>((resolve, reject) => {
              const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
              const req = send(target, {
                method: request.method,
                headers: { ...strip(request.headers, AGENT_ONLY), ...injected, host: target.host },
                timeout: upstream.timeout_ms,
              });
              req.on('response', resolve);
              req.on('timeout', () =>
                req.destroy(Object.assign(new Error('upstream timeout'), { name: 'TimeoutError' })),
              );
              req.on('error', reject);
              if (body && request.method !== 'GET' && request.method !== 'HEAD') body.pipe(req);
              else req.end();
            }),
          (res) => ((res.statusCode ?? 502) >= 500 ? 'failure' : 'success'),
          match
            ? undefined
            : GatewayDenial.denied(
                `no route rule of ${upstream.name} allows ${request.method} ${rawPath}`,
                undefined,
                'ERR_NO_ROUTE_RULE',
              ),
        );
        reply.status(upstreamRes.statusCode ?? 502);
        for (const [k, v] of Object.entries(strip(upstreamRes.headers, new Set(['set-cookie']))))
          reply.header(k, v);
        return reply.send(upstreamRes);
      } catch (e) {
        body?.resume();
        throw e instanceof GatewayDenial ? toWardenError(e) : e;
      }
    });
  });
}
