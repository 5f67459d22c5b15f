import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import pg from 'pg';

/**
 * Where the tests find PostgreSQL: an admin connection used only to create and drop throwaway
 * databases. This machine (and CI) has a trust-auth cluster at 127.0.0.1:5432.
 */
export const PG_ADMIN_URL = process.env.WARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Creates a throwaway PostgreSQL database, dropped when the test file ends. Returns its URL. */
export async function throwawayPostgres(): Promise<string> {
  const name = `warden_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  after(async () => {
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A fresh temporary directory, removed when the test file ends. */
export function tempDir(prefix = 'warden-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The two database back ends every store-level test runs against. */
export const BACKENDS = ['sqlite', 'postgres'] as const;
export type Backend = (typeof BACKENDS)[number];

/** Returns `{ url, dataDir }` for a fresh, empty database of the given back end. */
export async function freshDatabase(backend: Backend): Promise<{ url: string | undefined; dataDir: string }> {
  const dataDir = tempDir();
  return { url: backend === 'postgres' ? await throwawayPostgres() : undefined, dataDir };
}
