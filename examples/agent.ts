/**
 * An example agent: it holds a private key (no shared secret), gets a DPoP-bound access token for
 * the gateway from Warden's token endpoint (client credentials + private_key_jwt + DPoP, RFC 7523
 * and RFC 9449), and calls tools through the gateway with the official MCP SDK client.
 *
 *   WARDEN_URL=http://127.0.0.1:8420 AGENT_ID=<agent id> AGENT_KEY=bot.key.json \
 *     node examples/agent.ts tickets.search '{"query":"printer"}' "checking the printer queue"
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { base64url, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';

type SigningKey = Parameters<SignJWT['sign']>[0];

/** The agent's identity: its registered id and the private key whose public half Warden holds. */
export interface AgentIdentity {
  id: string;
  privateJwk: JWK;
}

/** A DPoP key pair (fresh per process: the token is bound to it). */
export interface DpopKey {
  privateKey: SigningKey;
  publicJwk: JWK;
}

export async function newDpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { privateKey, publicJwk: await exportJWK(publicKey) };
}

async function sha256(text: string): Promise<string> {
  return base64url.encode(
    new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))),
  );
}

/** A DPoP proof for one request; `ath` binds it to the access token at a resource server. */
export async function dpopProof(
  key: DpopKey,
  method: string,
  url: string,
  extra: { nonce?: string; token?: string } = {},
): Promise<string> {
  const u = new URL(url);
  return new SignJWT({
    htm: method,
    htu: `${u.origin}${u.pathname}`,
    jti: randomUUID(),
    ...(extra.nonce ? { nonce: extra.nonce } : {}),
    ...(extra.token ? { ath: await sha256(extra.token) } : {}),
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
    .setIssuedAt()
    .sign(key.privateKey);
}

/**
 * Gets an access token for `resource` (RFC 8707) with the client-credentials grant, authenticated
 * with a private_key_jwt assertion and bound to `dpop` (retrying once with the server's DPoP nonce).
 */
export async function getAccessToken(
  wardenUrl: string,
  agent: AgentIdentity,
  dpop: DpopKey,
  options: { resource: string; scope?: string },
): Promise<{ access_token: string; token_type: string; expires_in: number; scope?: string }> {
  const issuer = wardenUrl.replace(/\/$/, '');
  const tokenUrl = `${issuer}/token`;
  const key = await importJWK(agent.privateJwk, agent.privateJwk.alg ?? 'ES256');
  let nonce: string | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: agent.privateJwk.alg ?? 'ES256', kid: agent.privateJwk.kid as string })
      .setIssuer(agent.id)
      .setSubject(agent.id)
      .setAudience(issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(key);
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      resource: options.resource,
      ...(options.scope ? { scope: options.scope } : {}),
    });
    const res = await fetch(tokenUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        dpop: await dpopProof(dpop, 'POST', tokenUrl, nonce ? { nonce } : {}),
      },
      body: form.toString(),
    });
    const body = (await res.json()) as Record<string, unknown>;
    if (res.ok) return body as never;
    if (body.error === 'use_dpop_nonce' && res.headers.get('dpop-nonce') && attempt === 0) {
      nonce = res.headers.get('dpop-nonce') as string;
      continue;
    }
    throw new Error(`token request refused: ${body.error} ${body.error_description ?? ''}`);
  }
  throw new Error('token request refused: no usable DPoP nonce');
}

/** fetch that presents the token with the DPoP scheme and a fresh proof on every request. */
export function dpopFetch(dpop: DpopKey, token: () => string): typeof fetch {
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const headers = new Headers(init?.headers);
    headers.set('authorization', `DPoP ${token()}`);
    headers.set('dpop', await dpopProof(dpop, init?.method ?? 'GET', url, { token: token() }));
    return fetch(input, { ...init, headers });
  };
}

/** Connects the MCP SDK client to the gateway, getting the token first. */
export async function connectThroughGateway(
  wardenUrl: string,
  agent: AgentIdentity,
  options: { scope?: string } = {},
): Promise<{ client: Client; token: string }> {
  const mcpUrl = `${wardenUrl.replace(/\/$/, '')}/mcp`;
  const dpop = await newDpopKey();
  const { access_token } = await getAccessToken(wardenUrl, agent, dpop, {
    resource: mcpUrl,
    scope: options.scope,
  });
  const client = new Client({ name: 'example-agent', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: dpopFetch(dpop, () => access_token) }),
  );
  return { client, token: access_token };
}

if (import.meta.main) {
  const wardenUrl = process.env.WARDEN_URL ?? 'http://127.0.0.1:8420';
  const agent = {
    id: process.env.AGENT_ID as string,
    privateJwk: JSON.parse(readFileSync(process.env.AGENT_KEY as string, 'utf8')) as JWK,
  };
  const [tool, args, intent] = process.argv.slice(2);
  const { client } = await connectThroughGateway(wardenUrl, agent, { scope: process.env.AGENT_SCOPE });
  const { tools } = await client.listTools();
  process.stdout.write(`tools I may call: ${tools.map((t) => t.name).join(', ') || '(none)'}\n`);
  if (tool) {
    const result = await client.callTool({
      name: tool,
      arguments: args ? JSON.parse(args) : {},
      ...(intent ? { _meta: { 'warden/intent': intent } } : {}),
    });
    process.stdout.write(`${JSON.stringify(result.content)}\n`);
  }
  await client.close();
}
