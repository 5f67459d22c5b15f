import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

/**
 * An external OpenID Provider whose tokens may be exchanged (RFC 8693) for tokens an agent uses on
 * a Warden user's behalf. Keys come from `jwksUri` (fetched and cached; `jku`/`x5u` in a token are
 * never followed) or inline `jwks`.
 */
const trustedIssuerSchema = z
  .object({
    /** `iss` must equal this exactly. */
    issuer: z.url({ protocol: /^https?$/ }),
    jwksUri: z.url({ protocol: /^https?$/ }).optional(),
    jwks: z
      .object({
        keys: z
          .array(
            z
              .record(z.string(), z.unknown())
              .refine((k) => k.kty !== 'oct' && !('d' in k) && !('k' in k), 'public asymmetric keys only'),
          )
          .min(1)
          .max(50),
      })
      .optional(),
    /** The audience the subject token must carry (the IdP's client id or API identifier for Warden). */
    audience: z.string().min(1).max(500),
    /** Accepted signing algorithms; asymmetric only. */
    algorithms: z
      .array(
        z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
      )
      .min(1)
      .default(['RS256', 'PS256', 'ES256', 'EdDSA']),
    /** If set, the JWT header `typ` must equal it (e.g. `at+jwt`). */
    typ: z.string().min(1).max(100).optional(),
    /** The claim naming the person, and the Warden user field it must equal. */
    userClaim: z.string().min(1).max(100).default('email'),
    userMatch: z.enum(['email', 'username', 'id']).default('email'),
  })
  .strict()
  .refine((t) => (t.jwksUri === undefined) !== (t.jwks === undefined), {
    message: 'exactly one of jwksUri and jwks',
  });

/** A JSON array given in one environment variable. */
const jsonArray = (v: unknown) => {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
};

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The configuration schema. Every key can come from the config file; most also from `WARDEN_*`. */
export const configSchema = z
  .object({
    dataDir: z.string().min(1).default('./warden-data'),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.coerce.number().int().min(0).max(65_535).default(8420),
    /** The URL clients reach Warden at; also the OAuth issuer. Defaults to http://host:port. */
    publicUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** `postgres://…` for PostgreSQL; `sqlite:PATH` or unset for the embedded SQLite file. */
    databaseUrl: z
      .string()
      .regex(/^(postgres(ql)?:\/\/|sqlite:)/, 'must start with postgres://, postgresql:// or sqlite:')
      .optional(),
    /** Master key (64 hex or 43 base64url chars). Unset: a key file in the data directory. */
    masterKey: z.string().optional(),
    /** Older master keys, accepted until `warden keys rotate-master` has re-wrapped everything. */
    masterKeyPrevious: z.array(z.string()).default([]),
    /** At first start, the bootstrap administrator's API token; ignored afterwards. */
    adminToken: z.string().min(32, 'must be at least 32 characters').optional(),
    logLevel: z.enum(logLevels).default('info'),
    /** This node's name: its audit partition. Defaults to one persisted in the data directory. */
    nodeId: z
      .string()
      .regex(/^[a-zA-Z0-9._-]{1,64}$/, 'letters, digits, . _ - only, at most 64')
      .optional(),
    http: z
      .object({
        bodyLimit: z.coerce
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(1024 * 1024),
        trustProxy: z.coerce.boolean().default(false),
      })
      .strict()
      .default({ bodyLimit: 1024 * 1024, trustProxy: false }),
    audit: z
      .object({
        /** `closed` (default): an action whose event cannot be written is refused. */
        failMode: z.enum(['closed', 'open']).default('closed'),
        checkpointIntervalSeconds: z.coerce.number().int().min(1).max(86_400).default(60),
        /** Group commit delay while writers are concurrent (src/audit/README.md); 0: none. */
        commitDelayMs: z.coerce.number().int().min(0).max(100).default(0),
        /** Events older than this many days are removed by the retention job. Unset: kept forever. */
        retentionDays: z.coerce.number().int().min(1).max(36_500).optional(),
      })
      .strict()
      .default({ failMode: 'closed', checkpointIntervalSeconds: 60, commitDelayMs: 0 }),
    /** The gateway's approve step (src/gateway/README.md): how a call that needs approval waits. */
    gateway: z
      .object({
        /** `hold` (default): the call stays open until decided; `pending`: answered at once, retried. */
        approvalMode: z.enum(['hold', 'pending']).default('hold'),
        /** Longest a held call waits for a decision before it is answered as pending. */
        approvalWaitSeconds: z.coerce.number().int().min(0).max(3600).default(30),
      })
      .strict()
      .default({ approvalMode: 'hold', approvalWaitSeconds: 30 }),
    /** Streaming the ledger to SIEMs (src/export). Each sink is validated by the exporter at start. */
    export: z
      .object({
        /** Sinks defined here are created or updated in the store at start (see src/export/README.md). */
        sinks: z.array(z.record(z.string(), z.unknown())).default([]),
        /** How often an idle sink looks for new events. */
        pollIntervalMs: z.coerce.number().int().min(10).max(60_000).default(200),
      })
      .strict()
      .default({ sinks: [], pollIntervalMs: 200 }),
    /**
     * The first-party public client `warden-console` (authorization_code + PKCE S256): the console
     * and `warden login --browser`. Redirect URIs must be https or http on a loopback address (any
     * port is accepted for loopback, RFC 8252 §7.3). Unset: `<publicUrl>/console/callback` and
     * `http://127.0.0.1/callback`.
     */
    console: z
      .object({
        redirectUris: z
          .array(
            z
              .url({ protocol: /^https?$/ })
              .refine(
                (u) =>
                  u.startsWith('https:') || /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?\//.test(u),
                'https, or http on a loopback address',
              ),
          )
          .max(20)
          .default([]),
        /** Lifetime of the console's user access tokens in seconds (default 15 minutes). */
        accessTokenLifetimeSeconds: z.coerce.number().int().min(60).max(3600).default(900),
      })
      .strict()
      .default({ redirectUris: [], accessTokenLifetimeSeconds: 900 }),
    /** The OAuth authorization server (src/tokens). */
    tokens: z
      .object({
        /**
         * Resource indicators (RFC 8707) tokens may be issued for: the gateway URL(s). Unset: the
         * public URL itself. A request without `resource` gets the first one.
         */
        resources: z
          .array(z.url({ protocol: /^https?$/ }))
          .max(50)
          .default([]),
        /** Algorithm of the access token signing keys. */
        signingAlg: z.enum(['ES256', 'EdDSA', 'RS256']).default('ES256'),
        /** A new signing key becomes active after this many seconds (default 30 days). */
        keyRotationSeconds: z.coerce
          .number()
          .int()
          .min(3600)
          .max(365 * 86_400)
          .default(30 * 86_400),
        /** Token endpoint requests per client per second (sustained) and burst size. */
        rateLimitPerSecond: z.coerce.number().min(0.1).max(100_000).default(20),
        rateLimitBurst: z.coerce.number().int().min(1).max(100_000).default(40),
        /** `required`: every DPoP proof must carry a server nonce (RFC 9449 §8). */
        dpopNonce: z.enum(['required', 'optional']).default('required'),
        /** Longest chain of actors in a delegated token (`act` nesting) token exchange may build. */
        maxDelegationDepth: z.coerce.number().int().min(1).max(10).default(3),
        /**
         * Where CIBA ping notifications may go: `public` (default) refuses endpoints resolving to
         * loopback, private or other special-use addresses (SSRF protection); `any` allows them
         * (agents on the same private network; tests).
         */
        cibaNotificationTargets: z.enum(['public', 'any']).default('public'),
        /** External IdPs whose user tokens may be exchanged (JSON array in the environment). */
        trustedIssuers: z.preprocess(jsonArray, z.array(trustedIssuerSchema).max(20)).default([]),
      })
      .strict()
      .default({
        resources: [],
        signingAlg: 'ES256',
        keyRotationSeconds: 30 * 86_400,
        rateLimitPerSecond: 20,
        rateLimitBurst: 40,
        dpopNonce: 'required',
        maxDelegationDepth: 3,
        cibaNotificationTargets: 'public',
        trustedIssuers: [],
      }),
  })
  .strict();

export type WardenConfig = z.infer<typeof configSchema>;

/** Environment variables and the config key each sets. */
export const ENV_KEYS: Record<string, string> = {
  WARDEN_DATA_DIR: 'dataDir',
  WARDEN_HOST: 'host',
  WARDEN_PORT: 'port',
  WARDEN_PUBLIC_URL: 'publicUrl',
  WARDEN_DATABASE_URL: 'databaseUrl',
  WARDEN_MASTER_KEY: 'masterKey',
  WARDEN_MASTER_KEY_PREVIOUS: 'masterKeyPrevious',
  WARDEN_ADMIN_TOKEN: 'adminToken',
  WARDEN_LOG_LEVEL: 'logLevel',
  WARDEN_NODE_ID: 'nodeId',
  WARDEN_HTTP_BODY_LIMIT: 'http.bodyLimit',
  WARDEN_HTTP_TRUST_PROXY: 'http.trustProxy',
  WARDEN_AUDIT_FAIL_MODE: 'audit.failMode',
  WARDEN_AUDIT_CHECKPOINT_INTERVAL: 'audit.checkpointIntervalSeconds',
  WARDEN_AUDIT_RETENTION_DAYS: 'audit.retentionDays',
  WARDEN_AUDIT_COMMIT_DELAY_MS: 'audit.commitDelayMs',
  WARDEN_EXPORT_POLL_INTERVAL: 'export.pollIntervalMs',
  WARDEN_GATEWAY_APPROVAL_MODE: 'gateway.approvalMode',
  WARDEN_GATEWAY_APPROVAL_WAIT_SECONDS: 'gateway.approvalWaitSeconds',
  WARDEN_CONSOLE_REDIRECT_URIS: 'console.redirectUris',
  WARDEN_CONSOLE_ACCESS_TOKEN_LIFETIME: 'console.accessTokenLifetimeSeconds',
  WARDEN_TOKENS_RESOURCES: 'tokens.resources',
  WARDEN_TOKENS_SIGNING_ALG: 'tokens.signingAlg',
  WARDEN_TOKENS_KEY_ROTATION_SECONDS: 'tokens.keyRotationSeconds',
  WARDEN_TOKENS_RATE_LIMIT_PER_SECOND: 'tokens.rateLimitPerSecond',
  WARDEN_TOKENS_RATE_LIMIT_BURST: 'tokens.rateLimitBurst',
  WARDEN_TOKENS_DPOP_NONCE: 'tokens.dpopNonce',
  WARDEN_TOKENS_CIBA_NOTIFICATION_TARGETS: 'tokens.cibaNotificationTargets',
  WARDEN_TOKENS_MAX_DELEGATION_DEPTH: 'tokens.maxDelegationDepth',
  WARDEN_TOKENS_TRUSTED_ISSUERS: 'tokens.trustedIssuers',
};

const LIST_KEYS = new Set(['masterKeyPrevious', 'tokens.resources', 'console.redirectUris']);

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts.at(-1) as string] = value;
}

function envNameFor(path: string): string | undefined {
  return Object.entries(ENV_KEYS).find(([, key]) => key === path)?.[0];
}

/**
 * Loads and validates the configuration: defaults, then the JSON file named by `WARDEN_CONFIG`
 * (if any), then `WARDEN_*` variables. @throws ConfigError naming the bad key and why.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Record<string, unknown> = {},
): WardenConfig {
  let raw: Record<string, unknown> = {};
  const file = env.WARDEN_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(resolve(file), 'utf8');
    } catch (e) {
      throw new ConfigError(
        `WARDEN_CONFIG: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new Error('not an object');
      }
      raw = parsed as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`WARDEN_CONFIG: ${file} is not a JSON object (${(e as Error).message})`);
    }
  }
  for (const [name, path] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(
      raw,
      path,
      LIST_KEYS.has(path)
        ? value
            .split(',')
            .map((v) => v.trim())
            .filter(Boolean)
        : value,
    );
  }
  for (const [path, value] of Object.entries(overrides)) setPath(raw, path, value);
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const path = issue.path.join('.') || '(root)';
      const envName = envNameFor(path);
      const where = envName ? `${path} (${envName})` : path;
      // Never echo a value: a misplaced secret must not end up in a terminal or a log.
      return `${where}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return result.data;
}

/** The public URL of this Warden, without a trailing slash. */
export function publicUrlOf(config: WardenConfig): string {
  const url =
    config.publicUrl ??
    `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  return url.replace(/\/+$/, '');
}
