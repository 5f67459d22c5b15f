import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';

/** A person known to the external IdP. */
export interface IdpUser {
  sub: string;
  email: string;
  emailVerified?: boolean;
}

export interface ExternalIdp {
  issuer: string;
  /** The client id Warden's trusted-issuer entry expects as the ID token audience. */
  clientId: string;
  /** The IdP's private signing key (to forge tokens with otherwise valid signatures in attacks). */
  privateJwk: JWK;
  /** Signs `user` in through a real authorization code + PKCE flow and returns the ID token. */
  idToken(user: IdpUser): Promise<string>;
}

/**
 * A second, real oidc-provider acting as the company's IdP: authorization code + PKCE, whose
 * interaction signs in whichever user the test names, issuing RS256 ID tokens that carry `email`.
 */
export async function startExternalIdp(): Promise<ExternalIdp> {
  const clientId = 'warden-exchange';
  const clientSecret = `idp-secret-${randomUUID()}`;
  const redirectUri = 'http://127.0.0.1:9/callback';
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
  const accounts = new Map<string, IdpUser>();
  let next: IdpUser | undefined;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [redirectUri],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [privateJwk as any] },
    cookies: { keys: [`cookie-${randomUUID()}`] },
    features: { devInteractions: { enabled: false } },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    conformIdTokenClaims: false,
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    findAccount: async (_ctx, sub) => {
      const user = accounts.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        claims: async () => ({ sub, email: user.email, email_verified: user.emailVerified ?? true }),
      };
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('idp server_error', err));
  const callback = provider.callback();
  server.on('request', async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const url = new URL(req.url ?? '/', issuer);
      if (url.pathname.startsWith('/interaction/') && next) {
        const details = await provider.interactionDetails(req, res);
        const params = details.params as Record<string, string>;
        const grant = new provider.Grant({ accountId: next.sub, clientId: params.client_id as string });
        grant.addOIDCScope(params.scope ?? 'openid');
        const grantId = await grant.save();
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId: next.sub }, consent: { grantId } },
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
  server.keepAliveTimeout = 60_000;
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  return {
    issuer,
    clientId,
    privateJwk,
    async idToken(user) {
      accounts.set(user.sub, user);
      next = user;
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const auth = new URL(`${issuer}/auth`);
      auth.search = new URLSearchParams({
        client_id: clientId,
        response_type: 'code',
        scope: 'openid email',
        redirect_uri: redirectUri,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        nonce: randomUUID(),
        state: randomUUID(),
      }).toString();
      const jar = new Map<string, string>();
      let url = auth.toString();
      let code: string | undefined;
      for (let hop = 0; hop < 10 && !code; hop++) {
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
          throw new Error(`IdP login stopped with HTTP ${response.status}: ${await response.text()}`);
        const target = new URL(location, url);
        if (target.toString().startsWith(redirectUri)) code = target.searchParams.get('code') ?? undefined;
        url = target.toString();
      }
      if (!code) throw new Error('the IdP returned no code');
      const token = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: redirectUri,
          code_verifier: verifier,
        }),
      });
      const body = (await token.json()) as { id_token?: string };
      if (!body.id_token) throw new Error(`IdP token endpoint: ${JSON.stringify(body)}`);
      return body.id_token;
    },
  };
}
