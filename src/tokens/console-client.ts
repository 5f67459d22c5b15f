import type { AdapterPayload } from 'oidc-provider';

/** The client id of Warden's first-party public client (the console, `warden login --browser`). */
export const CONSOLE_CLIENT_ID = 'warden-console';

/** The console's default redirect URIs: its callback on Warden's origin and the CLI's loopback. */
export function defaultConsoleRedirectUris(publicUrl: string): string[] {
  const url = new URL(publicUrl);
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  // A native client may use http only on a loopback address (RFC 8252 §8.3).
  const own = url.protocol === 'https:' || loopback ? [`${publicUrl}/console/callback`] : [];
  return [...own, 'http://127.0.0.1/callback'];
}

/**
 * The console's client metadata: a public native client (RFC 8252; any port on a loopback redirect
 * URI), `authorization_code` only, no client authentication — PKCE (S256, required for every
 * client) is what binds the code to the party that asked for it.
 */
export function consoleClientMetadata(redirectUris: string[]): AdapterPayload {
  return {
    client_id: CONSOLE_CLIENT_ID,
    client_name: 'Warden console',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: redirectUris,
    dpop_bound_access_tokens: false,
  } as AdapterPayload;
}
