import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError } from './cli-error.ts';

/** Where `warden login` keeps the server URL and API token (mode 0600). */
export function credentialsFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.WARDEN_CLI_CONFIG_DIR ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'warden');
  return join(base, 'credentials.json');
}

export interface SavedCredentials {
  url: string;
  token: string;
}

export function saveCredentials(creds: SavedCredentials, env: NodeJS.ProcessEnv = process.env): string {
  const file = credentialsFile(env);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

function loadCredentials(env: NodeJS.ProcessEnv): SavedCredentials | undefined {
  const file = credentialsFile(env);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SavedCredentials;
  } catch {
    throw new CliError(`${file} is not valid JSON; run warden login again`);
  }
}

/** A thin client of the admin API that turns problem+json answers into {@link CliError}s. */
export class ApiClient {
  readonly url: string;
  readonly #token: string | undefined;

  constructor(url: string, token: string | undefined) {
    this.url = url.replace(/\/+$/, '');
    this.#token = token;
  }

  /** URL from WARDEN_URL or the saved login; token from WARDEN_TOKEN or the saved login. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): ApiClient {
    const saved = loadCredentials(env);
    const url = env.WARDEN_URL ?? saved?.url ?? 'http://127.0.0.1:8420';
    return new ApiClient(url, env.WARDEN_TOKEN ?? saved?.token);
  }

  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    options: { anonymous?: boolean } = {},
  ): Promise<T> {
    if (!this.#token && !options.anonymous) {
      throw new CliError('not logged in: run `warden login` or set WARDEN_TOKEN');
    }
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          ...(this.#token && !options.anonymous ? { authorization: `Bearer ${this.#token}` } : {}),
          accept: 'application/json, application/problem+json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new CliError(
        `cannot reach Warden at ${this.url}: ${(e as Error).cause ? String(((e as Error).cause as Error).message) : (e as Error).message}`,
      );
    }
    const text = await response.text();
    const data = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    if (!response.ok) {
      const params = Array.isArray(data?.['invalid-params'])
        ? (data['invalid-params'] as { name: string; reason: string }[])
            .map((p) => `\n  ${p.name}: ${p.reason}`)
            .join('')
        : '';
      throw new CliError(
        `${String(data?.detail ?? response.statusText)} (${String(data?.code ?? response.status)})${params}`,
      );
    }
    return data as T;
  }
}
