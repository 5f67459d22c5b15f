import { randomUUID } from 'node:crypto';
import { after } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FastifyInstance } from 'fastify';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JWK,
  SignJWT,
} from 'jose';
import { type Clock, createLogger, loadConfig } from '../../src/core/index.ts';
import {
  accessTokenHash,
  type CredentialInjector,
  type GatewayDecision,
  type GatewayDecisionRequest,
  type GatewayOptions,
  JwtTokenVerifier,
  type PolicyDecider,
} from '../../src/gateway/index.ts';
import { bootstrapAdmin, buildServer, createWarden, type Warden } from '../../src/http/index.ts';
import { type Backend, freshDatabase } from '../support/databases.ts';
import { keyPair } from '../support/fixtures.ts';
import { freePort } from '../support/process.ts';

type CryptoKeyLike = Parameters<SignJWT['sign']>[0];

/** The test's stand-in for Warden's token signing key (until the token service is assembled). */
export interface IssuerKey {
  privateKey: CryptoKeyLike;
  kid: string;
  jwks: { keys: JWK[] };
}

export async function issuerKey(): Promise<IssuerKey> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, kid, jwks: { keys: [{ ...jwk, kid, alg: 'ES256', use: 'sig' }] } };
}

/** An agent's DPoP key. */
export interface AgentKey {
  privateKey: CryptoKeyLike;
  publicJwk: JWK;
  jkt: string;
}

export async function agentKey(): Promise<AgentKey> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk) };
}

export interface MintOptions {
  issuer: string;
  audience: string;
  agentId: string;
  templateId?: string;
  sub?: string;
  act?: Record<string, unknown>;
  scope?: string;
  jkt?: string | undefined;
  /** Seconds relative to now. */
  expiresIn?: number;
  notBefore?: number;
  issuedAt?: number;
  typ?: string;
  kid?: string;
  now?: number;
  /** More claims (e.g. `agent_attestation`). */
  extra?: Record<string, unknown>;
}

/** Mints an RFC 9068 access token as Warden's token service would. */
export async function mintAccessToken(key: IssuerKey, o: MintOptions): Promise<string> {
  const now = Math.floor((o.now ?? Date.now()) / 1000);
  const jwt = new SignJWT({
    client_id: o.agentId,
    scope: o.scope ?? 'tickets:read tickets:write',
    ...(o.jkt ? { cnf: { jkt: o.jkt } } : {}),
    ...(o.act ? { act: o.act } : {}),
    ...(o.templateId ? { template_id: o.templateId } : {}),
    ...o.extra,
  })
    .setProtectedHeader({ alg: 'ES256', typ: o.typ ?? 'at+jwt', kid: o.kid ?? key.kid })
    .setIssuer(o.issuer)
    .setAudience(o.audience)
    .setSubject(o.sub ?? o.agentId)
    .setJti(randomUUID())
    .setIssuedAt(now + (o.issuedAt ?? 0))
    .setExpirationTime(now + (o.expiresIn ?? 300));
  if (o.notBefore !== undefined) jwt.setNotBefore(now + o.notBefore);
  return jwt.sign(key.privateKey);
}

/** A DPoP proof for one request (RFC 9449 §4.2). */
export async function dpopProof(
  key: AgentKey,
  method: string,
  url: string,
  token: string,
  overrides: Record<string, unknown> = {},
): Promise<string> {
  const u = new URL(url);
  return new SignJWT({
    htm: method,
    htu: `${u.origin}${u.pathname}`,
    jti: randomUUID(),
    ath: accessTokenHash(token),
    ...overrides,
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
    .setIssuedAt()
    .sign(key.privateKey);
}

/** fetch that sends `Authorization: DPoP <token>` and a fresh proof with every request. */
export function dpopFetch(key: AgentKey, token: () => string): typeof fetch {
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = init?.method ?? 'GET';
    const headers = new Headers(init?.headers);
    headers.set('authorization', `DPoP ${token()}`);
    headers.set('dpop', await dpopProof(key, method, url, token()));
    return fetch(input, { ...init, headers });
  };
}

/** The official MCP SDK client, connected to the gateway with a DPoP-bound token. */
export async function connectAgent(
  mcpUrl: string,
  key: AgentKey,
  token: string,
  cleanup: (fn: () => Promise<void>) => void = after,
): Promise<Client> {
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    fetch: dpopFetch(key, () => token),
  });
  await client.connect(transport);
  cleanup(() => client.close());
  return client;
}

/**
 * A decision point for the gateway tests (the policy part's engine replaces it once assembled):
 * denies tools named in `deny`, demands approval for `approval`, permits the rest, and remembers
 * every request it was asked.
 */
export class ScriptedDecider implements PolicyDecider {
  readonly requests: GatewayDecisionRequest[] = [];
  deny = new Set<string>();
  approval = new Set<string>();
  /** Denies when this argument of any call exceeds the limit (an argument-based rule). */
  argumentLimit: { name: string; max: number } | undefined;

  decide(request: GatewayDecisionRequest): GatewayDecision {
    this.requests.push(request);
    const id = request.resource.id;
    const arg = this.argumentLimit ? request.context.args?.[this.argumentLimit.name] : undefined;
    if (this.deny.has(id) || (typeof arg === 'number' && arg > (this.argumentLimit?.max ?? Infinity))) {
      return {
        decision: 'deny',
        approval_required: false,
        reason: `forbidden by policy test:deny-${id}`,
        determining_policies: [{ id: `test:deny-${id}` }],
      };
    }
    if (this.approval.has(id)) {
      return {
        decision: 'permit',
        approval_required: true,
        reason: `refunds need the owner's approval`,
        determining_policies: [{ id: 'test:approval' }],
      };
    }
    return {
      decision: 'permit',
      approval_required: false,
      reason: 'permitted by policy test:permit',
      determining_policies: [{ id: 'test:permit' }],
    };
  }
}

/** A vault stand-in that hands out one static header and records who asked. */
export class StaticCredentials implements CredentialInjector {
  readonly requests: { connectionOrCredentialId: string; agentId: string }[] = [];
  readonly headers: Record<string, string>;
  constructor(headers: Record<string, string>) {
    this.headers = headers;
  }
  async getCredential(r: { connectionOrCredentialId: string; agentId: string }) {
    this.requests.push({ connectionOrCredentialId: r.connectionOrCredentialId, agentId: r.agentId });
    return { headers: { ...this.headers } };
  }
}

export interface GatewayNode {
  warden: Warden;
  app: FastifyInstance;
  url: string;
  mcpUrl: string;
  adminToken: string;
  call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: any; headers: Headers }>;
}

/** A real Warden node (database, HTTP listener, gateway) whose gateway trusts `issuer`. */
export async function startGatewayNode(
  backend: Backend,
  o: {
    /** The test's token-signing key; absent: the node's own token service issues the tokens. */
    issuer?: IssuerKey;
    decider?: PolicyDecider;
    credentials?: CredentialInjector;
    options?: GatewayOptions;
    databaseUrl?: string;
    clock?: Clock;
    nodeId?: string;
    /** Nodes sharing a database must share its master key. */
    masterKey?: string;
    /** Registers cleanup (default: `after` of the current test or file). */
    cleanup?: (fn: () => Promise<void>) => void;
  },
): Promise<GatewayNode> {
  const db = o.databaseUrl
    ? { url: o.databaseUrl, dataDir: (await freshDatabase('sqlite')).dataDir }
    : await freshDatabase(backend);
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    WARDEN_DATA_DIR: db.dataDir,
    WARDEN_PORT: String(port),
    WARDEN_PUBLIC_URL: publicUrl,
    WARDEN_LOG_LEVEL: 'silent',
    ...(o.nodeId ? { WARDEN_NODE_ID: o.nodeId } : {}),
    ...(o.masterKey ? { WARDEN_MASTER_KEY: o.masterKey } : {}),
    ...(db.url ? { WARDEN_DATABASE_URL: db.url } : {}),
  });
  const clock = o.clock;
  const warden = await createWarden(config, {
    clock,
    logger: createLogger({ level: 'silent' }),
    gateway: {
      tokenVerifier: o.issuer
        ? new JwtTokenVerifier({
            issuer: publicUrl,
            keys: createLocalJWKSet(o.issuer.jwks),
            clock: clock ?? { now: () => Date.now() },
          })
        : undefined,
      decider: o.decider,
      credentials: o.credentials,
      options: o.options,
    },
  });
  const creds = await bootstrapAdmin(warden);
  const app = await buildServer(warden);
  await app.listen({ host: '127.0.0.1', port });
  (o.cleanup ?? after)(async () => {
    await app.close();
    await warden.close();
  });
  const adminToken = creds?.token ?? '';
  return {
    warden,
    app,
    url: publicUrl,
    mcpUrl: `${publicUrl}/mcp`,
    adminToken,
    async call(method, path, body) {
      const headers: Record<string, string> = { authorization: `Bearer ${adminToken}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${publicUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // keep the text
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
  };
}

/** Registers a provider, a template and an agent through the admin API; returns the agent. */
export async function registerAgent(
  node: GatewayNode,
  name: string,
  spec: Record<string, unknown>,
): Promise<{ id: string; template_id: string; provider_id: string }> {
  const provider = await node.call('GET', '/v1/providers/acme');
  if (provider.status === 404) {
    const p = await node.call('POST', '/v1/providers', {
      name: 'acme',
      contact: 'sec@acme.test',
      jwks: (await keyPair()).jwks,
    });
    if (p.status !== 201) throw new Error(`provider: ${JSON.stringify(p.body)}`);
  }
  const t = await node.call('POST', '/v1/templates', {
    name: `tpl-${name}`,
    spec: { description: 'test template', ...spec },
  });
  if (t.status !== 201) throw new Error(`template: ${JSON.stringify(t.body)}`);
  const a = await node.call('POST', '/v1/agents', {
    name,
    provider: 'acme',
    template: `tpl-${name}`,
    purpose: 'works tickets',
    jwks: (await keyPair()).jwks,
  });
  if (a.status !== 201) throw new Error(`agent: ${JSON.stringify(a.body)}`);
  return a.body;
}
