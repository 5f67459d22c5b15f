import { createServer } from 'node:http';
import * as oauth from 'oauth4webapi';
import { CliError } from './cli-error.ts';

/** The first-party public client the CLI signs in with (see src/tokens/console-client.ts). */
const CONSOLE_CLIENT_ID = 'warden-console';

const DONE_PAGE =
  '<!doctype html><meta charset="utf-8"><title>Warden</title><p>Signed in. You can close this window and return to the terminal.</p>';
const FAILED_PAGE =
  '<!doctype html><meta charset="utf-8"><title>Warden</title><p>Sign-in failed. Return to the terminal.</p>';

/**
 * Signs a person in through their browser (RFC 8252): a one-shot HTTP listener on a random
 * loopback port receives the redirect, PKCE (S256) binds the code to this process, and the code
 * is exchanged at the token endpoint by the public `warden-console` client.
 * @param onUrl shows the person where to sign in.
 * @returns the console access token (short-lived; the caller trades it for an API token).
 */
export async function browserLogin(
  wardenUrl: string,
  onUrl: (url: URL) => void,
  timeoutMs = 5 * 60_000,
): Promise<string> {
  const issuer = new URL(wardenUrl);
  const insecure = issuer.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {};
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
  if (!as.authorization_endpoint) throw new CliError(`${wardenUrl} has no authorization endpoint`);
  const client: oauth.Client = { client_id: CONSOLE_CLIENT_ID };
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  try {
    const callback = new Promise<URLSearchParams>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CliError('sign-in timed out')), timeoutMs);
      timer.unref();
      server.on('request', (req, res) => {
        const url = new URL(req.url ?? '/', redirectUri);
        if (url.pathname !== '/callback') {
          res.writeHead(404).end();
          return;
        }
        try {
          const params = oauth.validateAuthResponse(as, client, url.searchParams, state);
          res
            .writeHead(200, {
              'content-type': 'text/html; charset=utf-8',
              'content-security-policy': "default-src 'none'",
            })
            .end(DONE_PAGE);
          clearTimeout(timer);
          resolve(params);
        } catch (e) {
          res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' }).end(FAILED_PAGE);
          clearTimeout(timer);
          const cause = e as { error?: string; message?: string };
          reject(new CliError(`sign-in failed: ${cause.error ?? cause.message ?? 'invalid response'}`));
        }
      });
    });
    const authUrl = new URL(as.authorization_endpoint);
    authUrl.search = new URLSearchParams({
      client_id: CONSOLE_CLIENT_ID,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid',
      resource: issuer.href.replace(/\/$/, ''),
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    }).toString();
    onUrl(authUrl);
    const params = await callback;
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.None(),
      params,
      redirectUri,
      verifier,
      insecure,
    );
    // Only the access token is used (and redeemed by the server at once); the ID token is not.
    const body = (await response.json().catch(() => ({}))) as { access_token?: string; error?: string };
    if (!response.ok || typeof body.access_token !== 'string') {
      throw new CliError(`the code exchange failed: ${body.error ?? response.status}`);
    }
    return body.access_token;
  } finally {
    server.close();
  }
}
