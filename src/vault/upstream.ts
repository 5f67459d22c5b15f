import * as oauth from 'oauth4webapi';
import { InvalidRequestError, UnavailableError } from '../core/index.ts';

/** The endpoints of an upstream authorization server, as stored on a connection. */
export interface UpstreamMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  revocation_endpoint?: string | undefined;
  code_challenge_methods_supported?: string[] | undefined;
  authorization_response_iss_parameter_supported?: boolean | undefined;
}

/** Client authentication methods Warden uses with upstreams (it is a confidential client). */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post';

/** The token endpoint's answer, reduced to what the vault keeps. */
export interface UpstreamTokens {
  accessToken: string;
  tokenType: string;
  expiresIn: number | undefined;
  refreshToken: string | undefined;
  scope: string | undefined;
}

/** How the vault talks to upstreams: a timeout, and whether plain http is allowed (tests, dev). */
export interface UpstreamHttpOptions {
  timeoutMs: number;
  allowHttp: boolean;
}

/** The upstream refused the grant: the refresh token (or code) is no longer valid. */
export class UpstreamGrantError extends Error {
  readonly error: string;
  constructor(error: string) {
    super(`upstream refused the grant: ${error}`);
    this.error = error;
  }
}

function requestOptions(http: UpstreamHttpOptions): oauth.HttpRequestOptions<'GET' | 'POST', any> {
  return {
    signal: () => AbortSignal.timeout(http.timeoutMs),
    // oauth4webapi refuses http:// unless told; only loopback test and dev setups need it.
    [oauth.allowInsecureRequests]: http.allowHttp,
  };
}

function toAs(meta: UpstreamMetadata): oauth.AuthorizationServer {
  return meta as unknown as oauth.AuthorizationServer;
}

function clientAuth(method: ClientAuthMethod, secret: string): oauth.ClientAuth {
  return method === 'client_secret_post' ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
}

/**
 * Finds an issuer's metadata: RFC 8414 (`/.well-known/oauth-authorization-server`) first, then
 * OpenID Connect discovery (`/.well-known/openid-configuration`). The returned `issuer` is
 * checked to equal the one asked for.
 */
export async function discoverUpstream(issuer: string, http: UpstreamHttpOptions): Promise<UpstreamMetadata> {
  const url = new URL(issuer);
  const failures: string[] = [];
  for (const algorithm of ['oauth2', 'oidc'] as const) {
    try {
      const response = await oauth.discoveryRequest(url, { ...requestOptions(http), algorithm });
      const as = await oauth.processDiscoveryResponse(url, response);
      if (!as.authorization_endpoint || !as.token_endpoint) {
        throw new Error('metadata lacks authorization_endpoint or token_endpoint');
      }
      return {
        issuer: as.issuer,
        authorization_endpoint: as.authorization_endpoint,
        token_endpoint: as.token_endpoint,
        revocation_endpoint: as.revocation_endpoint,
        code_challenge_methods_supported: as.code_challenge_methods_supported,
        authorization_response_iss_parameter_supported: as.authorization_response_iss_parameter_supported,
      };
    } catch (e) {
      failures.push(`${algorithm}: ${(e as Error).message}`);
    }
  }
  throw new InvalidRequestError(`issuer discovery failed for ${issuer} (${failures.join('; ')})`, {
    code: 'ERR_VAULT_DISCOVERY_FAILED',
    invalidParams: [{ name: 'body.issuer', reason: 'no RFC 8414 or OpenID Connect metadata found' }],
  });
}

/** Builds the authorization request URL (code flow, PKCE S256, state). */
export async function authorizationUrl(
  meta: UpstreamMetadata,
  clientId: string,
  redirectUri: string,
  scopes: string[],
  state: string,
  codeVerifier: string,
): Promise<string> {
  const url = new URL(meta.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', clientId);
  url.searchParams.set('redirect_uri', redirectUri);
  if (scopes.length > 0) url.searchParams.set('scope', scopes.join(' '));
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
  // Ask for consent so upstreams that issue refresh tokens only on consent (offline_access) do so.
  if (scopes.includes('offline_access')) url.searchParams.set('prompt', 'consent');
  return url.toString();
}

function reduce(result: oauth.TokenEndpointResponse): UpstreamTokens {
  return {
    accessToken: result.access_token,
    tokenType: result.token_type,
    expiresIn: result.expires_in,
    refreshToken: result.refresh_token,
    scope: result.scope,
  };
}

function translate(e: unknown, what: string): never {
  if (e instanceof oauth.ResponseBodyError) {
    if (e.error === 'invalid_grant') throw new UpstreamGrantError(e.error);
    throw new UnavailableError(`upstream ${what} failed: ${e.error} (HTTP ${e.status})`, {
      code: 'ERR_VAULT_UPSTREAM_ERROR',
    });
  }
  if (e instanceof oauth.AuthorizationResponseError) {
    throw new InvalidRequestError(`the upstream authorization was not granted: ${e.error}`, {
      code: 'ERR_VAULT_CONNECT_DENIED',
    });
  }
  if (e instanceof UpstreamGrantError || e instanceof InvalidRequestError) throw e;
  throw new UnavailableError(`upstream ${what} failed: ${(e as Error).message}`, {
    code: 'ERR_VAULT_UPSTREAM_ERROR',
  });
}

/**
 * Validates the authorization response (state, `iss` per RFC 9207, error parameters) and redeems
 * the code with the PKCE verifier.
 */
export async function redeemCode(
  meta: UpstreamMetadata,
  clientId: string,
  method: ClientAuthMethod,
  clientSecret: string,
  callback: URLSearchParams,
  expectedState: string,
  redirectUri: string,
  codeVerifier: string,
  http: UpstreamHttpOptions,
): Promise<UpstreamTokens> {
  const as = toAs(meta);
  const client: oauth.Client = { client_id: clientId };
  try {
    const params = oauth.validateAuthResponse(as, client, callback, expectedState);
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      clientAuth(method, clientSecret),
      params,
      redirectUri,
      codeVerifier,
      requestOptions(http),
    );
    return reduce(await oauth.processAuthorizationCodeResponse(as, client, response));
  } catch (e) {
    return translate(e, 'code redemption');
  }
}

/** Uses a refresh token. @throws UpstreamGrantError on `invalid_grant`. */
export async function refreshAtUpstream(
  meta: UpstreamMetadata,
  clientId: string,
  method: ClientAuthMethod,
  clientSecret: string,
  refreshToken: string,
  http: UpstreamHttpOptions,
): Promise<UpstreamTokens> {
  const as = toAs(meta);
  const client: oauth.Client = { client_id: clientId };
  try {
    const response = await oauth.refreshTokenGrantRequest(
      as,
      client,
      clientAuth(method, clientSecret),
      refreshToken,
      requestOptions(http),
    );
    return reduce(await oauth.processRefreshTokenResponse(as, client, response));
  } catch (e) {
    return translate(e, 'token refresh');
  }
}

/** A fresh PKCE verifier and state (both 32 random bytes). */
export function newPkce(): { state: string; codeVerifier: string } {
  return { state: oauth.generateRandomState(), codeVerifier: oauth.generateRandomCodeVerifier() };
}
