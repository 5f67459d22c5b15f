/**
 * Token service benchmark: client_credentials with private_key_jwt + DPoP + ES256 JWT access
 * tokens against a real Warden node (SQLite, HTTP on loopback, load generator in this process),
 * next to the crypto ceiling measured in the same run (two ES256 verifications and one ES256
 * signature per token, with jose), and the introspection rate.
 */
import { generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, EmbeddedJWK, exportJWK, type JWK, jwtVerify, SignJWT } from 'jose';
import { createLogger, loadConfig } from '../src/core/index.ts';
import { bootstrapAdmin, buildServer, createWarden, type Warden } from '../src/http/index.ts';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const ISSUE_MS = Number(process.env.BENCH_ISSUE_MS ?? 3000);
const INTROSPECT_MS = 1500;
const PACED_MS = 2000;
const TARGET_RATE = Number(process.env.BENCH_TARGET_RATE ?? 1000);
const CEILING_MS = 1500;

/**
 * The load generator's client side, kept cheap because it shares the machine (and this process)
 * with the server: ES256 JWTs signed synchronously with node:crypto (no WebCrypto job per
 * signature) and HTTP/1.1 keep-alive through node:http (a real client is another process anyway).
 */
function signEs256(header: object, payload: object, key: KeyObject): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 256 });

/** POSTs a form; resolves with the status, the parsed JSON body and the DPoP-Nonce header. */
function post(
  url: string,
  form: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; dpopNonce: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent: keepAlive,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(form),
        ...headers,
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        try {
          const nonce = res.headers['dpop-nonce'];
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
            dpopNonce: typeof nonce === 'string' ? nonce : undefined,
          });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.end(form);
  });
}

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

/** What one load phase measured. `cpuMs` is this process's CPU time (server and generator). */
export interface LoadResult {
  rate: number;
  p50: number;
  p99: number;
  count: number;
  cpuMs: number;
}

/** Runs `work` from `concurrency` loops for `ms`; returns completed count, latencies and CPU time. */
export async function load(ms: number, concurrency: number, work: () => Promise<void>): Promise<LoadResult> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await work();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rate: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    count: latencies.length,
    cpuMs: (used.user + used.system) / 1000,
  };
}

/**
 * Open loop: starts `work` at a fixed `perSecond` for `ms`, whatever the answers' latency (a
 * closed loop would slow down with the server and hide queueing). Latency counts from the
 * scheduled start, so a server that falls behind shows it in p99.
 */
export async function paced(ms: number, perSecond: number, work: () => Promise<void>): Promise<LoadResult> {
  const latencies: number[] = [];
  const inflight: Promise<void>[] = [];
  const started = performance.now();
  const cpu = process.cpuUsage();
  const total = Math.floor((ms / 1000) * perSecond);
  for (let i = 0; i < total; i += 1) {
    const due = started + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(work().then(() => void latencies.push(performance.now() - due)));
  }
  await Promise.all(inflight);
  const used = process.cpuUsage(cpu);
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rate: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    count: latencies.length,
    cpuMs: (used.user + used.system) / 1000,
  };
}

/** Two ES256 verifications (assertion, DPoP proof) and one ES256 signature, serially, with jose. */
export async function cryptoCeiling(ms: number): Promise<{ rate: number; cpuMs: number }> {
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
  const cpu = process.cpuUsage();
  while (performance.now() < end) {
    await jwtVerify(assertion, publicKey);
    await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' });
    await new SignJWT({ sub: 'c', scope: 'a' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .sign(signer);
    n += 1;
  }
  const used = process.cpuUsage(cpu);
  return { rate: n / ((performance.now() - started) / 1000), cpuMs: (used.user + used.system) / 1000 / n };
}

/** A running Warden node with one DPoP-bound agent, and a client for it. */
export interface TokenBench {
  warden: Warden;
  issuer: string;
  /** One token request (retried once on `use_dpop_nonce`); failures are counted. */
  issue(): Promise<void>;
  /** One introspection of the last token issued. */
  introspect(): Promise<void>;
  failures(): number;
  resetFailures(): void;
  close(): Promise<void>;
}

export async function startTokenBench(): Promise<TokenBench> {
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
    // An empty PostgreSQL database to run against instead of the embedded SQLite file.
    ...(process.env.BENCH_DATABASE_URL ? { WARDEN_DATABASE_URL: process.env.BENCH_DATABASE_URL } : {}),
    // To compare group commit settings (default: the server's).
    ...(process.env.WARDEN_AUDIT_COMMIT_DELAY_MS
      ? { WARDEN_AUDIT_COMMIT_DELAY_MS: process.env.WARDEN_AUDIT_COMMIT_DELAY_MS }
      : {}),
  });
  const warden = await createWarden(config, { logger: createLogger({ level: 'silent' }) });
  const creds = await bootstrapAdmin(warden);
  const app = await buildServer(warden);
  await app.listen({ host: '127.0.0.1', port });
  const close = async () => {
    keepAlive.destroy();
    await app.close();
    await warden.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
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
    const dpop = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const dpopJwk = await exportJWK(dpop.publicKey);
    const tokenUrl = `${issuer}/token`;
    const assertion = () => {
      const now = Math.floor(Date.now() / 1000);
      return signEs256(
        { alg: 'ES256', kid },
        { iss: agent.id, sub: agent.id, aud: issuer, jti: randomUUID(), iat: now, exp: now + 60 },
        privateKey,
      );
    };
    let nonce: string | undefined;
    const proof = () =>
      signEs256(
        { alg: 'ES256', typ: 'dpop+jwt', jwk: dpopJwk },
        {
          htm: 'POST',
          htu: tokenUrl,
          jti: randomUUID(),
          iat: Math.floor(Date.now() / 1000),
          ...(nonce ? { nonce } : {}),
        },
        dpop.privateKey,
      );
    let failures = 0;
    let lastToken = '';
    const issue = async (): Promise<void> => {
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const res = await post(
          tokenUrl,
          new URLSearchParams({
            grant_type: 'client_credentials',
            scope: 'a',
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: assertion(),
          }).toString(),
          { dpop: proof() },
        );
        const body = res.body as { access_token?: string; error?: string };
        // Like a real client (RFC 9449 §8.2), keep the newest nonce from any response, so only
        // the very first request (and one per nonce rollover) costs an extra round trip.
        nonce = res.dpopNonce ?? nonce;
        if (res.status === 400 && body.error === 'use_dpop_nonce') continue;
        if (!body.access_token) failures += 1;
        else lastToken = body.access_token;
        return;
      }
      failures += 1;
    };
    const introspect = async (): Promise<void> => {
      const res = await post(
        `${issuer}/token/introspection`,
        new URLSearchParams({
          token: lastToken,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion(),
        }).toString(),
      );
      if ((res.body as { active?: boolean }).active !== true) failures += 1;
    };
    return {
      warden,
      issuer,
      issue,
      introspect,
      failures: () => failures,
      resetFailures: () => {
        failures = 0;
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

export async function run(): Promise<void> {
  const bench = await startTokenBench();
  try {
    await load(500, 4, bench.issue); // warm-up (JIT, connection pool, nonce)
    bench.resetFailures();
    const issuance = await load(ISSUE_MS, CONCURRENCY, bench.issue);
    // The issue's latency target is p99 at 1,000 tokens/s; also shown at half the rate measured
    // above, where this machine is not saturated.
    const atTarget = await paced(1000, TARGET_RATE, bench.issue);
    const half = Math.max(1, Math.floor(issuance.rate / 2));
    const atHalf = await paced(PACED_MS, half, bench.issue);
    const introspection = await load(INTROSPECT_MS, CONCURRENCY, bench.introspect);
    const ceiling = await cryptoCeiling(CEILING_MS);
    const f = (n: number) => n.toFixed(0);
    const ms = (n: number) => n.toFixed(2);
    process.stdout.write(
      [
        `tokens: client_credentials + private_key_jwt + DPoP + ES256 JWT (${process.env.BENCH_DATABASE_URL ? 'PostgreSQL' : 'SQLite'}, one process, generator in-process)`,
        `  issuance      ${f(issuance.rate)} tokens/s at concurrency ${CONCURRENCY}; p50 ${ms(issuance.p50)} ms, p99 ${ms(issuance.p99)} ms (${issuance.count} tokens); CPU ${ms(issuance.cpuMs / issuance.count)} ms/token`,
        `  ceiling       ${f(ceiling.rate)} tokens/s (2 ES256 verifications + 1 ES256 signature, jose, one core, serial); CPU ${ms(ceiling.cpuMs)} ms/token`,
        `  ratio         issuance / ceiling = ${(issuance.rate / ceiling.rate).toFixed(2)}; by CPU time per token ${(ceiling.cpuMs / (issuance.cpuMs / issuance.count)).toFixed(2)} (less sensitive to other load on the machine)`,
        `  paced         ${TARGET_RATE} tokens/s offered for 1 s: ${f(atTarget.rate)} done/s; p50 ${ms(atTarget.p50)} ms, p99 ${ms(atTarget.p99)} ms`,
        `  paced         ${half} tokens/s offered (half the maximum): ${f(atHalf.rate)} done/s; p50 ${ms(atHalf.p50)} ms, p99 ${ms(atHalf.p99)} ms`,
        `  introspection ${f(introspection.rate)} /s at concurrency ${CONCURRENCY} (each with a fresh private_key_jwt); p50 ${ms(introspection.p50)} ms, p99 ${ms(introspection.p99)} ms; CPU ${ms(introspection.cpuMs / introspection.count)} ms/op`,
        `  failures      ${bench.failures()}`,
        '',
      ].join('\n'),
    );
  } finally {
    await bench.close();
  }
}

if (import.meta.main) await run();
