import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino replaces with `[redacted]` in every log line. Secrets are kept out of logs by
 * construction: request headers that carry credentials, and any field named like a secret.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.dpop',
  'req.headers.cookie',
  'req.headers["oauth-client-attestation"]',
  'req.headers["oauth-client-attestation-pop"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.secret',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.client_secret',
  '*.client_assertion',
  '*.private_key',
  '*.privateKey',
  '*.masterKey',
  '*.apiToken',
];

export interface LoggerConfig {
  level: string;
  /** Where log lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

/** Creates the process logger (JSON lines, secrets redacted). */
export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    level: config.level,
    base: { service: 'warden' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return config.destination
    ? pino(options, config.destination as unknown as pino.DestinationStream)
    : pino(options);
}
