import { generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { calculateJwkThumbprint, type JWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import type { Clock } from '../../src/core/index.ts';
import type { Backend } from '../support/databases.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/** A free loopback port: the issuer must name the port clients use, so it is chosen up front. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** The resource (gateway) tokens are issued for in these tests. */
export const GATEWAY = 'https://gateway.example.test/mcp';
export const OTHER_RESOURCE = 'https://other.example.test/api';

/** Starts a real Warden whose issuer is its own listening URL. */
export async function startTokenServer(
  backend: Backend,
  env: Record<string, string> = {},
  clock?: Clock,
): Promise<TestServer> {
  const port = await freePort();
  return startTestServer(backend, {
    ...(clock ? { clock } : {}),
    env: {
      WARDEN_PORT: String(port),
      WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}`,
      WARDEN_TOKENS_RESOURCES: `${GATEWAY},${OTHER_RESOURCE}`,
      ...env,
    },
  });
}

/** An agent registered through the admin API, with its private key held by the test. */
export interface TestAgent {
  id: string;
  name: string;
  kid: string;
  privateKey: KeyObject;
  publicJwk: JWK;
  providerName: string;
}

let counter = 0;

/** Registers a provider (once per name), a template and an agent with a fresh ES256 key. */
export async function registerAgent(
  server: TestServer,
  spec: { scopes?: string[]; requireDpop?: boolean; lifetime?: number; provider?: string } = {},
): Promise<TestAgent> {
  counter += 1;
  const providerName = spec.provider ?? `prov-${counter}`;
  const existing = await server.call('GET', `/v1/providers/${providerName}`);
  if (existing.status === 404) {
    const providerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      format: 'jwk',
    });
    const res = await server.call('POST', '/v1/providers', {
      name: providerName,
      contact: 'security@example.test',
      jwks: { keys: [{ ...providerKey, kid: 'p1', alg: 'ES256', use: 'sig' }] },
    });
    if (res.status !== 201) throw new Error(`provider: ${res.status} ${JSON.stringify(res.body)}`);
  }
  const templateName = `tpl-${counter}`;
  const tpl = await server.call('POST', '/v1/templates', {
    name: templateName,
    spec: {
      description: 'test template',
      allowed_scopes: spec.scopes ?? ['tickets.read', 'tickets.write'],
      token_lifetime: spec.lifetime ?? 300,
      require_dpop: spec.requireDpop ?? true,
    },
  });
  if (tpl.status !== 201) throw new Error(`template: ${tpl.status} ${JSON.stringify(tpl.body)}`);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(pub);
  const publicJwk = { ...pub, kid, alg: 'ES256', use: 'sig' };
  const name = `agent-${counter}`;
  const res = await server.call('POST', '/v1/agents', {
    name,
    provider: providerName,
    template: templateName,
    purpose: 'testing the token service',
    jwks: { keys: [publicJwk] },
  });
  if (res.status !== 201) throw new Error(`agent: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id, name, kid, privateKey, publicJwk, providerName };
}

/** Signs a client assertion; every claim and header can be overridden to build attacks. */
export async function clientAssertion(
  agent: TestAgent,
  audience: string,
  overrides: { header?: Record<string, unknown>; claims?: Record<string, unknown>; key?: KeyObject } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: agent.id,
    sub: agent.id,
    aud: audience,
    jti: randomUUID(),
    iat: now,
    exp: now + 60,
    ...overrides.claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid: agent.kid, ...overrides.header } as never)
    .sign(overrides.key ?? agent.privateKey);
}

/** A DPoP key pair for a test client. */
export async function dpopKeys(): Promise<oauth.CryptoKeyPair> {
  return oauth.generateKeyPair('ES256') as Promise<oauth.CryptoKeyPair>;
}

/** Signs a DPoP proof by hand, for attacks on its claims. */
export async function dpopProof(
  keys: oauth.CryptoKeyPair,
  claims: { htm: string; htu: string; nonce?: string; jti?: string; iat?: number; ath?: string },
): Promise<string> {
  const { exportJWK } = await import('jose');
  const jwk = await exportJWK(keys.publicKey);
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
    .sign(keys.privateKey);
}

/** POSTs a form to the server and returns status, JSON body and headers. */
export async function postForm(
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: res.status, body, headers: res.headers };
}

/**
 * Requests a token the hard way (hand-made assertion and DPoP proof), fetching a DPoP nonce first
 * when the server asks for one. Returns the final response.
 */
export async function requestToken(
  server: TestServer,
  agent: TestAgent,
  options: {
    keys?: oauth.CryptoKeyPair;
    scope?: string;
    resource?: string;
    assertion?: string;
    proof?: (nonce: string | undefined) => Promise<string>;
  } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const tokenUrl = `${server.url}/token`;
  const keys = options.keys ?? (await dpopKeys());
  const form = (assertion: string) => {
    const f: Record<string, string> = {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    };
    if (options.scope !== undefined) f.scope = options.scope;
    if (options.resource !== undefined) f.resource = options.resource;
    return f;
  };
  const proof =
    options.proof ??
    ((nonce) => dpopProof(keys, { htm: 'POST', htu: tokenUrl, ...(nonce ? { nonce } : {}) }));
  if (options.assertion !== undefined) {
    // A fixed assertion gets one try (its jti is spent even when the server then asks for a DPoP
    // nonce), so fetch a nonce first with a throwaway assertion.
    const probe = await postForm(tokenUrl, form(await clientAssertion(agent, server.url)), {
      dpop: await dpopProof(keys, { htm: 'POST', htu: tokenUrl }),
    });
    const nonce = probe.headers.get('dpop-nonce') ?? undefined;
    return postForm(tokenUrl, form(options.assertion), { dpop: await proof(nonce) });
  }
  let res = await postForm(tokenUrl, form(await clientAssertion(agent, server.url)), {
    dpop: await proof(undefined),
  });
  if (res.status === 400 && res.body?.error === 'use_dpop_nonce') {
    const nonce = res.headers.get('dpop-nonce') ?? undefined;
    res = await postForm(tokenUrl, form(await clientAssertion(agent, server.url)), {
      dpop: await proof(nonce),
    });
  }
  return res;
}
