import { AsyncLocalStorage } from 'node:async_hooks';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../core/index.ts';
import type { Upstream } from './schemas.ts';

/** Headers injected into whatever upstream request runs inside {@link UpstreamConnections.withHeaders}. */
const injected = new AsyncLocalStorage<Record<string, string>>();

/** Request headers an agent could use to smuggle something upstream; the gateway sets its own. */
const FORBIDDEN_INJECTED = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);

/** fetch for upstream MCP requests: adds the credential of the call in progress, nothing else. */
const credentialFetch: typeof fetch = (input, init) => {
  const extra = injected.getStore();
  if (!extra) return fetch(input, init);
  const headers = new Headers(init?.headers);
  for (const [k, v] of Object.entries(extra)) if (!FORBIDDEN_INJECTED.has(k.toLowerCase())) headers.set(k, v);
  return fetch(input, { ...init, headers });
};

/** The MCP SDK's client side, loaded when the first upstream is connected (not at start). */
let sdkClient:
  | Promise<
      [
        typeof import('@modelcontextprotocol/sdk/client/index.js'),
        typeof import('@modelcontextprotocol/sdk/client/stdio.js'),
        typeof import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
        typeof import('@modelcontextprotocol/sdk/types.js'),
      ]
    >
  | undefined;

function loadSdkClient() {
  sdkClient ??= Promise.all([
    import('@modelcontextprotocol/sdk/client/index.js'),
    import('@modelcontextprotocol/sdk/client/stdio.js'),
    import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ]);
  return sdkClient;
}

/** Connecting and listing may take longer than a call's budget (a stdio server starting up). */
function discoveryTimeout(u: Upstream): number {
  return Math.max(u.timeout_ms, 10_000);
}

interface Entry {
  upstream: Upstream;
  client?: Promise<Client>;
  tools?: { list: Tool[]; at: number };
  loading?: Promise<Tool[]>;
}

/**
 * The gateway's MCP clients, one per upstream, connected on first use (streamable HTTP or a stdio
 * child process), with each upstream's tool list cached for `toolsTtlMs` and refreshed when the
 * upstream says its list changed.
 */
export class UpstreamConnections {
  readonly #entries = new Map<string, Entry>();
  readonly #logger: Logger;
  readonly #toolsTtlMs: number;
  readonly #now: () => number;

  constructor(options: { logger: Logger; toolsTtlMs: number; now: () => number }) {
    this.#logger = options.logger;
    this.#toolsTtlMs = options.toolsTtlMs;
    this.#now = options.now;
  }

  /** Runs `fn` so that every upstream HTTP request it makes carries `headers`. */
  static withHeaders<T>(headers: Record<string, string>, fn: () => Promise<T>): Promise<T> {
    return injected.run(headers, fn);
  }

  #entry(upstream: Upstream): Entry {
    let e = this.#entries.get(upstream.name);
    if (!e || e.upstream.id !== upstream.id || e.upstream.updated_at !== upstream.updated_at) {
      if (e) void this.#dispose(e);
      e = { upstream };
      this.#entries.set(upstream.name, e);
    }
    return e;
  }

  /** The connected client of an upstream (connecting it if needed). */
  client(upstream: Upstream): Promise<Client> {
    const e = this.#entry(upstream);
    if (!e.client) {
      e.client = this.#connect(e).catch((err: unknown) => {
        e.client = undefined;
        throw err;
      });
    }
    return e.client;
  }

  async #connect(e: Entry): Promise<Client> {
    const u = e.upstream;
    const [
      { Client },
      { getDefaultEnvironment, StdioClientTransport },
      { StreamableHTTPClientTransport },
      { ToolListChangedNotificationSchema },
    ] = await loadSdkClient();
    const client = new Client({ name: 'warden-gateway', version: '0.1.0' });
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      e.tools = undefined;
    });
    client.onclose = () => {
      if (this.#entries.get(u.name) === e) {
        e.client = undefined;
        e.tools = undefined;
      }
    };
    const transport =
      u.transport === 'stdio' && u.command
        ? new StdioClientTransport({
            command: u.command.command,
            args: u.command.args,
            cwd: u.command.cwd,
            env: getDefaultEnvironment(),
            stderr: 'ignore',
          })
        : new StreamableHTTPClientTransport(new URL(u.url as string), { fetch: credentialFetch });
    await client.connect(transport, { timeout: discoveryTimeout(u) });
    this.#logger.info({ upstream: u.name, transport: u.transport }, 'upstream connected');
    return client;
  }

  /** The upstream's tools (every page), from the cache when fresh. */
  async tools(upstream: Upstream): Promise<Tool[]> {
    const e = this.#entry(upstream);
    if (e.tools && this.#now() - e.tools.at < this.#toolsTtlMs) return e.tools.list;
    if (!e.loading) {
      e.loading = (async () => {
        const client = await this.client(upstream);
        const list: Tool[] = [];
        let cursor: string | undefined;
        do {
          const page = await client.listTools(cursor ? { cursor } : {}, {
            timeout: discoveryTimeout(upstream),
          });
          list.push(...page.tools);
          cursor = page.nextCursor;
        } while (cursor && list.length < 10_000);
        e.tools = { list, at: this.#now() };
        return list;
      })().finally(() => {
        e.loading = undefined;
      });
    }
    return e.loading;
  }

  /** Forgets the cached tool list of an upstream so the next listing asks it again. */
  invalidate(name: string): void {
    const e = this.#entries.get(name);
    if (e) e.tools = undefined;
  }

  /** Disconnects an upstream (it was changed or removed). */
  async drop(name: string): Promise<void> {
    const e = this.#entries.get(name);
    if (!e) return;
    this.#entries.delete(name);
    await this.#dispose(e);
  }

  async #dispose(e: Entry): Promise<void> {
    const c = e.client;
    e.client = undefined;
    if (c) await c.then((client) => client.close()).catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.all([...this.#entries.keys()].map((n) => this.drop(n)));
  }
}
