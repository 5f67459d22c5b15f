import { z } from 'zod';
import { InvalidRequestError } from '../core/index.ts';
import { EXPORT_FORMATS } from './formats/format.ts';
import { DEFAULT_ENTERPRISE_NUMBER, SYSLOG_LIMITS } from './syslog-message.ts';

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lower-case letters, digits, . _ - only, at most 63, starting alnum');

const common = {
  name,
  format: z.enum(EXPORT_FORMATS).default('ocsf'),
  enabled: z.boolean().default(true),
  /** Most events read and sent per partition in one round. */
  batchSize: z.number().int().min(1).max(5000).default(500),
  /** `beginning`: export the whole ledger; `now`: only events recorded after the sink was created. */
  startAt: z.enum(['beginning', 'now']).default('beginning'),
};

const pem = z.string().min(1).max(65_536);
const hostname = z.string().min(1).max(255);
const port = z.number().int().min(1).max(65_535);
const httpUrl = z.url({ protocol: /^https?$/ });

const syslogSink = z
  .object({
    ...common,
    type: z.literal('syslog'),
    /** `tcp` (RFC 6587 octet counting), `tls` (RFC 5425), or `udp` (best effort: no delivery guarantee). */
    transport: z.enum(['tcp', 'tls', 'udp']).default('tcp'),
    host: hostname,
    port,
    facility: z.number().int().min(0).max(23).default(13),
    appName: z.string().min(1).max(SYSLOG_LIMITS.appName).default('warden'),
    /** HOSTNAME field; defaults to this machine's name. */
    hostname: z.string().min(1).max(SYSLOG_LIMITS.hostname).optional(),
    enterpriseNumber: z.number().int().min(1).max(4_294_967_295).default(DEFAULT_ENTERPRISE_NUMBER),
    tls: z
      .object({
        ca: pem.optional(),
        serverName: hostname.optional(),
        rejectUnauthorized: z.boolean().default(true),
        clientCert: pem.optional(),
        /** Secret: sealed in the store, never returned. */
        clientKey: pem.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const kafkaSink = z
  .object({
    ...common,
    type: z.literal('kafka'),
    brokers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'host:port')).min(1),
    topic: z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, 'a Kafka topic name'),
    clientId: z.string().min(1).max(255).default('warden-exporter'),
    ssl: z.boolean().default(false),
    ca: pem.optional(),
  })
  .strict();

const splunkHecSink = z
  .object({
    ...common,
    type: z.literal('splunk_hec'),
    /** Base URL of the HEC endpoint, e.g. `https://splunk:8088`. */
    url: httpUrl,
    /** Secret: the HEC token, sent as `Authorization: Splunk <token>`. */
    token: z.string().min(1).max(512),
    index: z.string().min(1).max(255).optional(),
    source: z.string().min(1).max(255).default('warden'),
    sourcetype: z.string().min(1).max(255).optional(),
    ca: pem.optional(),
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  })
  .strict();

const webhookSink = z
  .object({
    ...common,
    type: z.literal('webhook'),
    url: httpUrl,
    /** Secret: the HMAC-SHA256 key (at least 32 characters). */
    hmacKey: z.string().min(32).max(1024),
    ca: pem.optional(),
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  })
  .strict();

const fileSink = z
  .object({
    ...common,
    type: z.literal('file'),
    /** The active file; rotated files get `.1`, `.2`, … (`.1` the newest). */
    path: z.string().min(1).max(4096),
    maxBytes: z
      .number()
      .int()
      .min(1024)
      .default(100 * 1024 * 1024),
    maxFiles: z.number().int().min(1).max(1000).default(10),
  })
  .strict();

/** A sink as configured: one of the sink types, with defaults applied. */
export const sinkDefinitionSchema = z.discriminatedUnion('type', [
  syslogSink,
  kafkaSink,
  splunkHecSink,
  webhookSink,
  fileSink,
]);

export type SinkDefinition = z.infer<typeof sinkDefinitionSchema>;
export type SinkDefinitionInput = z.input<typeof sinkDefinitionSchema>;
export type SinkType = SinkDefinition['type'];
export type SyslogSinkDefinition = z.infer<typeof syslogSink>;
export type KafkaSinkDefinition = z.infer<typeof kafkaSink>;
export type SplunkHecSinkDefinition = z.infer<typeof splunkHecSink>;
export type WebhookSinkDefinition = z.infer<typeof webhookSink>;
export type FileSinkDefinition = z.infer<typeof fileSink>;

/** Paths of the secret members of each sink type: sealed in the store, never returned. */
export const SECRET_PATHS: Record<SinkType, readonly string[]> = {
  syslog: ['tls.clientKey'],
  kafka: [],
  splunk_hec: ['token'],
  webhook: ['hmacKey'],
  file: [],
};

function getPath(obj: Record<string, any>, path: string): unknown {
  return path.split('.').reduce<any>((o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);
}

function setPath(obj: Record<string, any>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof node[p] !== 'object' || node[p] === null) node[p] = {};
    node = node[p];
  }
  const last = parts.at(-1) as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
}

/** Splits a definition into its public part and its secrets (path → value). */
export function splitSecrets(def: SinkDefinition): {
  config: Record<string, unknown>;
  secrets: Record<string, string>;
} {
  const config = structuredClone(def) as Record<string, any>;
  const secrets: Record<string, string> = {};
  for (const path of SECRET_PATHS[def.type]) {
    const value = getPath(config, path);
    if (typeof value === 'string') secrets[path] = value;
    setPath(config, path, undefined);
  }
  return { config, secrets };
}

/** Puts secrets back into a public config. */
export function joinSecrets(config: Record<string, unknown>, secrets: Record<string, string>): unknown {
  const out = structuredClone(config) as Record<string, any>;
  for (const [path, value] of Object.entries(secrets)) setPath(out, path, value);
  return out;
}

/**
 * Validates a sink definition. @throws InvalidRequestError naming each bad field and why, never
 * echoing a value (a misplaced secret must not land in an error message).
 */
export function parseSinkDefinition(input: unknown, where = 'body'): SinkDefinition {
  const result = sinkDefinitionSchema.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidRequestError('the sink definition is invalid', {
    code: 'ERR_INVALID_SINK',
    invalidParams: result.error.issues.map((issue) => ({
      name: [where, ...issue.path.map(String)].join('.'),
      reason: issue.message,
    })),
  });
}
