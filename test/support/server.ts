import { after } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type Clock, createLogger, loadConfig } from '../../src/core/index.ts';
import { bootstrapAdmin, buildServer, createWarden, type Warden } from '../../src/http/index.ts';
import { type Backend, freshDatabase } from './databases.ts';

export interface TestServer {
  warden: Warden;
  app: FastifyInstance;
  /** Base URL of the listening server, e.g. http://127.0.0.1:40123 */
  url: string;
  /** The bootstrap administrator's API token. */
  adminToken: string;
  adminPassword: string;
  dataDir: string;
  /** fetch against the server with the admin token (or `token`) and JSON handling. */
  call(
    method: string,
    path: string,
    body?: unknown,
    token?: string | null,
  ): Promise<{ status: number; body: any; headers: Headers }>;
}

/**
 * Starts a real Warden node (real database, real HTTP listener on a random loopback port) for a
 * test file; it is closed when the file ends.
 */
export async function startTestServer(
  backend: Backend,
  options: { clock?: Clock; env?: Record<string, string>; databaseUrl?: string; dataDir?: string } = {},
): Promise<TestServer> {
  const db = options.databaseUrl
    ? { url: options.databaseUrl, dataDir: options.dataDir ?? (await freshDatabase('sqlite')).dataDir }
    : await freshDatabase(backend);
  const config = loadConfig({
    WARDEN_DATA_DIR: db.dataDir,
    WARDEN_PORT: '0',
    WARDEN_LOG_LEVEL: 'silent',
    ...(db.url ? { WARDEN_DATABASE_URL: db.url } : {}),
    ...options.env,
  });
  const warden = await createWarden(config, {
    clock: options.clock,
    logger: createLogger({ level: 'silent' }),
  });
  const creds = await bootstrapAdmin(warden);
  const app = await buildServer(warden);
  await app.listen({ host: '127.0.0.1', port: warden.config.port });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  after(async () => {
    await app.close();
    await warden.close();
  });
  const adminToken = creds?.token ?? '';
  return {
    warden,
    app,
    url,
    adminToken,
    adminPassword: creds?.password ?? '',
    dataDir: db.dataDir,
    async call(method, path, body, token = adminToken) {
      const headers: Record<string, string> = {};
      if (token !== null) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
  };
}
