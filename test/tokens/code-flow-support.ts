import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import * as client from 'openid-client';
import type { TestServer } from '../support/server.ts';
import type { TestAgent } from './support.ts';

/** Where the test clients say they want the user back (nothing listens there). */
export const AGENT_CALLBACK = 'http://127.0.0.1:45679/agent/callback';
/** The console's loopback callback as the CLI would use it (any port is accepted, RFC 8252). */
export const CONSOLE_CALLBACK = 'http://127.0.0.1:45678/callback';

let counter = 0;

/** A person with a password, created through the admin API. */
export async function createPerson(
  server: TestServer,
  name: string,
  roles: string[] = [],
): Promise<{ id: string; username: string; password: string }> {
  const password = `${name}-password-123`;
  const res = await server.call('POST', '/v1/users', {
    username: name,
    password,
    display_name: `${name[0]?.toUpperCase()}${name.slice(1)} Example`,
    email: `${name}@example.test`,
    roles,
  });
  if (res.status !== 201) throw new Error(`user: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id, username: name, password };
}

/** An agent whose template may (or may not) ask people for delegated access. */
export async function registerDelegatingAgent(
  server: TestServer,
  spec: {
    allowed: boolean;
    scopes?: string[];
    requireDpop?: boolean;
    redirectUri?: string;
    /** CIBA: allowed, and the ping endpoint (absent: poll). */
    ciba?: boolean;
    notify?: string;
  },
): Promise<TestAgent> {
  counter += 1;
  const providerName = `deleg-prov-${counter}`;
  const providerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const prov = await server.call('POST', '/v1/providers', {
    name: providerName,
    display_name: 'Acme Agents',
    contact: 'security@acme.example',
    jwks: { keys: [{ ...providerKey, kid: 'p1', alg: 'ES256', use: 'sig' }] },
  });
  if (prov.status !== 201) throw new Error(`provider: ${prov.status} ${JSON.stringify(prov.body)}`);
  const templateName = `deleg-tpl-${counter}`;
  const tpl = await server.call('POST', '/v1/templates', {
    name: templateName,
    spec: {
      description: 'assistant that acts for people',
      allowed_scopes: spec.scopes ?? ['tickets.read', 'tickets.write'],
      token_lifetime: 300,
      require_dpop: spec.requireDpop ?? false,
      ...(spec.allowed
        ? {
            delegation: {
              allowed: true,
              redirect_uris: [spec.redirectUri ?? AGENT_CALLBACK],
              max_duration_seconds: 7 * 86_400,
            },
          }
        : spec.ciba
          ? {
              delegation: { ciba: true, ...(spec.notify ? { ciba_notification_endpoint: spec.notify } : {}) },
            }
          : {}),
    },
  });
  if (tpl.status !== 201) throw new Error(`template: ${tpl.status} ${JSON.stringify(tpl.body)}`);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(pub);
  const publicJwk = { ...pub, kid, alg: 'ES256', use: 'sig' };
  const name = `helper-${counter}`;
  const res = await server.call('POST', '/v1/agents', {
    name,
    provider: providerName,
    template: templateName,
    purpose: 'files tickets for people',
    jwks: { keys: [publicJwk] },
  });
  if (res.status !== 201) throw new Error(`agent: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id, name, kid, privateKey, publicJwk, providerName };
}

/** openid-client for the public console client (no client authentication; PKCE). */
export function consoleConfig(server: TestServer): Promise<client.Configuration> {
  return client.discovery(new URL(server.url), 'warden-console', undefined, client.None(), {
    execute: [client.allowInsecureRequests],
    algorithm: 'oauth2',
  });
}

/** openid-client for an agent (private_key_jwt). */
export function agentConfig(server: TestServer, agent: TestAgent): Promise<client.Configuration> {
  return client.discovery(
    new URL(server.url),
    agent.id,
    undefined,
    client.PrivateKeyJwt({
      key: agent.privateKey.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']),
      kid: agent.kid,
    }),
    { execute: [client.allowInsecureRequests], algorithm: 'oauth2' },
  );
}

/** A fresh PKCE pair and state, and the authorization URL with them. */
export async function authorizationRequest(
  config: client.Configuration,
  params: Record<string, string>,
): Promise<{ url: URL; verifier: string; state: string }> {
  const verifier = client.randomPKCECodeVerifier();
  const state = randomUUID();
  const url = client.buildAuthorizationUrl(config, {
    response_type: 'code',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  });
  return { url, verifier, state };
}
