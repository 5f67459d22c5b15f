import type { FastifyInstance } from 'fastify';
import { DPOP_ALGS } from './dpop.ts';
import type { Gateway } from './gateway.ts';

/** RFC 9728 protected resource metadata for one of the gateway's resources. */
export async function protectedResourceMetadata(gateway: Gateway, resource: string, scopes: string[]) {
  return {
    resource,
    authorization_servers: [gateway.issuer],
    scopes_supported: [...new Set(scopes)].sort(),
    bearer_methods_supported: ['header'],
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
    dpop_bound_access_tokens_required: true,
    resource_name: 'Warden gateway',
  };
}

/**
 * Serves the metadata at `/.well-known/oauth-protected-resource<path>` for the MCP endpoint (and
 * at the root, which describes the MCP endpoint) and for each HTTP proxy upstream.
 */
export function mountProtectedResourceMetadata(app: FastifyInstance, gateway: Gateway): void {
  const mcp = async () => {
    const upstreams = (await gateway.catalog()).filter((u) => u.kind === 'mcp');
    return protectedResourceMetadata(
      gateway,
      gateway.mcpResource,
      upstreams.flatMap((u) => u.scopes),
    );
  };
  app.get(`/.well-known/oauth-protected-resource${gateway.settings.mcpPath}`, mcp);
  app.get('/.well-known/oauth-protected-resource', mcp);
  app.get<{ Params: { name: string } }>(
    '/.well-known/oauth-protected-resource/proxy/:name',
    async (request) => {
      const u = await gateway.httpUpstream(request.params.name);
      return protectedResourceMetadata(gateway, gateway.proxyResource(u.name), u.scopes);
    },
  );
}
