/**
 * Token service benchmark: client_credentials with private_key_jwt + DPoP + ES256 JWT access
 * tokens against a real Warden node (SQLite, HTTP on loopback, load generator in this process),
 * next to the crypto ceiling measured in the same run (two ES256 verifications and one ES256
 * signature per token, with jose), the introspection rate, and the RFC 8693 token exchange rate
 * (an external IdP's user token, verified with an inline JWKS, exchanged under a delegation grant).
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  calculateJwkThumbprint,
  EmbeddedJWK,
  exportJWK,
  importJWK,
  type JWK,
  jwtVerify,
  SignJWT,
} from 'jose';
import { createLogger, loadConfig } from '../src/core/index.ts';
import { bootstrapAdmin, buildServer, createWarden } from '../src/http/index.ts';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const ISSUE_MS = 3000;
const INTROSPECT_MS = 1500;
const EXCHANGE_MS = 3000;
const IDP = 'https://idp.bench.example';
const CEILING_MS = 1500;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Runs `work` from `concurrency` loops for `ms`; returns completed count and latencies. */
async function load(ms: number, concurrency: number, work: () => Promise<void>) {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await work();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rate: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    count: latencies.length,
  };
}

/** Two ES256 verifications (assertion, DPoP proof) and one ES256 signature, serially, with jose. */
async function cryptoCeiling(ms: number): Promise<number> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dpop = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dpopJwk = await exportJWK(dpop.publicKey);
  const assertion = await new SignJWT({ iss: 'c', sub: 'c', aud: 'x', jti: '1' })
    .setProtectedHeader({ alg: 'ES256' })
    .setExpirationTime('1h')
    .sign(privateKey);
  const proof = await new SignJWT({ htm: 'POST', htu: 'x', jti: '1', iat: Math.floor(Date.now() / 1000) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: dpopJwk })
    .sign(dpop.privateKey);
  const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  let n = 0;
  const end = performance.now() + ms;
  const started = performance.now();
  while (performance.now() < end) {
    await jwtVerify(assertion, publicKey);
    await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' });
    await new SignJWT({ sub: 'c', scope: 'a' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .sign(signer);
    n += 1;
  }
  return n / ((performance.now() - started) / 1000);
}

export async function run(): Promise<void> {
  const idpKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const idpJwk = { ...(await exportJWK(idpKeys.publicKey)), kid: 'idp', alg: 'ES256' };
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-bench-tokens-'));
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    WARDEN_DATA_DIR: dataDir,
    WARDEN_PORT: String(port),
    WARDEN_PUBLIC_URL: issuer,
    WARDEN_LOG_LEVEL: 'silent',
    WARDEN_TOKENS_RESOURCES: 'https://gateway.example/mcp',
    WARDEN_TOKENS_RATE_LIMIT_PER_SECOND: '100000',
    WARDEN_TOKENS_RATE_LIMIT_BURST: '100000',
    WARDEN_TOKENS_TRUSTED_ISSUERS: JSON.stringify([
      { issuer: IDP, jwks: { keys: [idpJwk] }, audience: 'warden', algorithms: ['ES256'] },
    ]),
  });
  const warden = await createWarden(config, { logger: createLogger({ level: 'silent' }) });
  const creds = await bootstrapAdmin(warden);
  const app = await buildServer(warden);
  await app.listen({ host: '127.0.0.1', port });
  try {
    const admin = async (path: string, body: unknown) => {
      const res = await fetch(`${issuer}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${creds?.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as { id: string };
    };
    const providerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      format: 'jwk',
    });
    await admin('/v1/providers', {
      name: 'bench-vendor',
      contact: 'bench@example.test',
      jwks: { keys: [{ ...providerKey, kid: 'p1' }] },
    });
    await admin('/v1/templates', {
      name: 'bench-template',
      spec: { description: 'bench', allowed_scopes: ['a', 'b'], require_dpop: true },
    });
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = publicKey.export({ format: 'jwk' }) as JWK;
    const kid = await calculateJwkThumbprint(pub);
    const agent = await admin('/v1/agents', {
      name: 'bench-agent',
      provider: 'bench-vendor',
      template: 'bench-template',
      purpose: 'benchmark',
      jwks: { keys: [{ ...pub, kid, alg: 'ES256' }] },
    });
    const clientKey = await importJWK(
      { ...(privateKey.export({ format: 'jwk' }) as JWK), alg: 'ES256' },
      'ES256',
    );
    const dpop = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const dpopJwk = await exportJWK(dpop.publicKey);
    const tokenUrl = `${issuer}/token`;
    const assertion = () =>
      new SignJWT({ iss: agent.id, sub: agent.id, aud: issuer, jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(clientKey);
    let nonce: string | undefined;
    const proof = () =>
      new SignJWT({ htm: 'POST', htu: tokenUrl, jti: randomUUID(), ...(nonce ? { nonce } : {}) })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: dpopJwk })
        .setIssuedAt()
        .sign(dpop.privateKey);
    let failures = 0;
    let lastToken = '';
    const issue = async (): Promise<void> => {
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const res = await fetch(tokenUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: await proof() },
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            scope: 'a',
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: await assertion(),
          }),
        });
        const body = (await res.json()) as { access_token?: string; error?: string };
        if (res.status === 400 && body.error === 'use_dpop_nonce') {
          nonce = res.headers.get('dpop-nonce') ?? undefined;
          continue;
        }
        if (!body.access_token) failures += 1;
        else lastToken = body.access_token;
        return;
      }
      failures += 1;
    };
    await load(500, 4, issue); // warm-up (JIT, connection pool, nonce)
    failures = 0;
    const issuance = await load(ISSUE_MS, CONCURRENCY, issue);
    const introspect = async (): Promise<void> => {
      const res = await fetch(`${issuer}/token/introspection`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: lastToken,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await assertion(),
        }),
      });
      const body = (await res.json()) as { active?: boolean };
      if (body.active !== true) failures += 1;
    };
    const introspection = await load(INTROSPECT_MS, CONCURRENCY, introspect);

    await admin('/v1/users', { username: 'bench-user', email: 'bench-user@example.test' });
    await admin('/v1/grants', { user: 'bench-user', agent: agent.id, scopes: ['a'], purpose: 'benchmark' });
    const subjectToken = await new SignJWT({ email: 'bench-user@example.test' })
      .setProtectedHeader({ alg: 'ES256', kid: 'idp' })
      .setIssuer(IDP)
      .setAudience('warden')
      .setSubject('bench-user')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(idpKeys.privateKey);
    const exchangeOnce = async (): Promise<void> => {
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const res = await fetch(tokenUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: await proof() },
          body: new URLSearchParams({
            grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
            subject_token: subjectToken,
            subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
            scope: 'a',
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: await assertion(),
          }),
        });
        const body = (await res.json()) as { access_token?: string; error?: string };
        if (res.status === 400 && body.error === 'use_dpop_nonce') {
          nonce = res.headers.get('dpop-nonce') ?? undefined;
          continue;
        }
        if (!body.access_token) failures += 1;
        return;
      }
      failures += 1;
    };
    await load(300, 4, exchangeOnce);
    const exchange = await load(EXCHANGE_MS, CONCURRENCY, exchangeOnce);
    const ceiling = await cryptoCeiling(CEILING_MS);
    const f = (n: number) => n.toFixed(0);
    const ms = (n: number) => n.toFixed(2);
    process.stdout.write(
      [
        'tokens: client_credentials + private_key_jwt + DPoP + ES256 JWT (SQLite, one process, generator in-process)',
        `  issuance      ${f(issuance.rate)} tokens/s at concurrency ${CONCURRENCY}; p50 ${ms(issuance.p50)} ms, p99 ${ms(issuance.p99)} ms (${issuance.count} tokens)`,
        `  ceiling       ${f(ceiling)} tokens/s (2 ES256 verifications + 1 ES256 signature, jose, one core, serial)`,
        `  ratio         issuance / ceiling = ${(issuance.rate / ceiling).toFixed(2)}`,
        `  introspection ${f(introspection.rate)} /s at concurrency ${CONCURRENCY} (each with a fresh private_key_jwt); p50 ${ms(introspection.p50)} ms, p99 ${ms(introspection.p99)} ms`,
        `  exchange      ${f(exchange.rate)} tokens/s at concurrency ${CONCURRENCY} (RFC 8693, external IdP ES256 subject token + grant lookup); p50 ${ms(exchange.p50)} ms, p99 ${ms(exchange.p99)} ms; exchange / issuance = ${(exchange.rate / issuance.rate).toFixed(2)}`,
        `  failures      ${failures}`,
        '',
      ].join('\n'),
    );
  } finally {
    await app.close();
    await warden.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.main) await run();
