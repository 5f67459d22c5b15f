import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

/** The fixed upstream user every programmatic login signs in as. */
export const UPSTREAM_USER = 'upstream-user-1';

export interface Upstream {
  issuer: string;
  /** The upstream API base URL; `GET /me` answers 200 only for an active access token. */
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  provider: Provider;
  /** POST requests that reached the token endpoint, by grant type. */
  tokenRequests: Map<string, number>;
  /** Access tokens the API accepted (to prove what it received). */
  apiAccepted: string[];
  /** Grants created by the interaction handler (one per completed connect). */
  grants: string[];
  /** Follows an authorization URL like a browser whose user is signed in; returns the callback URL. */
  authorize(authorizationUrl: string): Promise<string>;
  /** Revokes every grant: the refresh tokens stop working, as when a user disconnects the app upstream. */
  revokeAll(): Promise<void>;
  close(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

/**
 * A real upstream: a second oidc-provider (authorization code + PKCE, refresh-token rotation,
 * client_secret_basic) whose interactions sign a fixed user in automatically, and an API that
 * accepts only access tokens the provider's introspection endpoint says are active.
 */
export async function startUpstream(options: { redirectUris?: string[] } = {}): Promise<Upstream> {
  const clientId = 'warden-vault';
  const clientSecret = `upstream-client-secret-${crypto.randomUUID()}`;
  const apiClientSecret = `upstream-api-secret-${crypto.randomUUID()}`;
  const redirectUris = options.redirectUris ?? ['http://127.0.0.1:9/v1/vault/connect/callback'];
  const redirectUri = redirectUris[0] as string;
  const tokenRequests = new Map<string, number>();
  const apiAccepted: string[] = [];
  const grants: string[] = [];

  const server = createServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'upstream-1', alg: 'RS256', use: 'sig' };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: redirectUris,
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'upstream-api',
        client_secret: apiClientSecret,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [jwk as any] },
    cookies: { keys: [`cookie-key-${crypto.randomUUID()}`] },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true, allowedPolicy: async () => true },
      revocation: { enabled: true },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    rotateRefreshToken: true,
    pkce: { required: () => true },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    ttl: {
      IdToken: 3600,
      AccessToken: 3600,
      RefreshToken: 14 * 86_400,
      Grant: 14 * 86_400,
      Session: 86_400,
      Interaction: 600,
    },
  });
  // Count every request the token endpoint receives, by grant type (after the provider parsed it).
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && ctx.method === 'POST') {
      const grantType = String((ctx.oidc?.params as { grant_type?: string } | undefined)?.grant_type ?? '?');
      tokenRequests.set(grantType, (tokenRequests.get(grantType) ?? 0) + 1);
    }
  });
  provider.on('server_error', (_ctx, err) => console.error('upstream server_error', err));

  const callback = provider.callback();
  server.on('request', async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const url = new URL(req.url ?? '/', issuer);
      if (url.pathname.startsWith('/interaction/')) {
        // The user is "already signed in": log in the fixed user and grant what was asked.
        const details = await provider.interactionDetails(req, res);
        const params = details.params as Record<string, string>;
        const grant = details.grantId
          ? ((await provider.Grant.find(details.grantId)) as InstanceType<typeof provider.Grant>)
          : new provider.Grant({ accountId: UPSTREAM_USER, clientId: params.client_id as string });
        grant.addOIDCScope(params.scope ?? 'openid');
        const grantId = await grant.save();
        grants.push(grantId);
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId: UPSTREAM_USER }, consent: { grantId } },
          { mergeWithLastSubmission: false },
        );
        return;
      }
      callback(req, res);
    } catch (e) {
      res.statusCode = 500;
      res.end(String((e as Error).message));
    }
  });

  const api = createServer(async (req, res) => {
    const auth = req.headers.authorization ?? '';
    const match = /^Bearer (.+)$/.exec(auth);
    let active = false;
    let sub: string | undefined;
    if (match) {
      const response = await fetch(`${issuer}/token/introspection`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`upstream-api:${apiClientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token: match[1] as string }),
      });
      const info = (await response.json()) as { active?: boolean; sub?: string; client_id?: string };
      active = info.active === true && info.client_id === clientId;
      sub = info.sub;
    }
    if (!active) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      return;
    }
    apiAccepted.push(match?.[1] as string);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub }));
  });
  // Long keep-alive: a client reusing a socket the server is just closing would see ECONNRESET.
  server.keepAliveTimeout = 60_000;
  api.keepAliveTimeout = 60_000;
  const apiPort = await listen(api);

  return {
    issuer,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    clientId,
    clientSecret,
    redirectUri,
    provider,
    tokenRequests,
    apiAccepted,
    grants,
    async authorize(authorizationUrl: string): Promise<string> {
      const jar = new Map<string, string>();
      let url = authorizationUrl;
      for (let hop = 0; hop < 10; hop++) {
        const response = await fetch(url, {
          redirect: 'manual',
          headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
        });
        for (const cookie of response.headers.getSetCookie()) {
          const pair = cookie.split(';')[0] as string;
          const eq = pair.indexOf('=');
          jar.set(pair.slice(0, eq), pair.slice(eq + 1));
        }
        const location = response.headers.get('location');
        if (!location)
          throw new Error(`authorization stopped with HTTP ${response.status}: ${await response.text()}`);
        const next = new URL(location, url).toString();
        if (redirectUris.some((r) => next.startsWith(r))) return next;
        url = next;
      }
      throw new Error('too many redirects');
    },
    async revokeAll(): Promise<void> {
      for (const id of grants) {
        const grant = await provider.Grant.find(id);
        await grant?.destroy();
      }
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      api.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => api.close(() => r()));
    },
  };
}
