import type { AuditEvent } from '../../audit/index.ts';
import type { FormattedEvent } from '../formats/format.ts';

/** One event on its way out: the ledger event and its rendering in the sink's format. */
export interface OutboundEvent {
  event: AuditEvent;
  formatted: FormattedEvent;
}

/**
 * A sink's connection to its receiver. `send` resolves when the batch was handed over: for HTTP,
 * Kafka and files that means acknowledged (or fsynced); for syslog over TCP/TLS, which has no
 * acknowledgement, it means written to the socket, and the exporter counts the batch as delivered
 * only after `confirmDelayMs` without the connection failing (`generation` unchanged).
 */
export interface SinkTransport {
  readonly confirmDelayMs: number;
  /** Increases whenever the connection is lost; a batch sent under an older generation is resent. */
  readonly generation: number;
  send(batch: OutboundEvent[]): Promise<void>;
  close(): Promise<void>;
}

/** A delivery failure with a stable code (never a secret, never the receiver's free text). */
export class SinkError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SinkError';
    this.code = code;
  }
}

/** The stable error code of a failure: ours, Node's (`ECONNREFUSED`, `ERR_TLS_…`), or a generic one. */
export function errorCodeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,63}$/.test(code)) return code;
  if (error && typeof error === 'object' && (error as Error).name === 'KafkaJSNumberOfRetriesExceeded') {
    return 'KAFKA_RETRIES_EXCEEDED';
  }
  if (error && typeof error === 'object' && /^KafkaJS/.test((error as Error).name)) {
    return (error as Error).name.replace(/^KafkaJS/, 'KAFKA_').toUpperCase();
  }
  return 'ERR_SINK';
}
