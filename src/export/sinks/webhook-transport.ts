import { createHmac } from 'node:crypto';
import type { Clock } from '../../core/index.ts';
import type { WebhookSinkDefinition } from '../sink-definition.ts';
import { postBody } from './http-post.ts';
import type { OutboundEvent, SinkTransport } from './transport.ts';

/** Header carrying the Unix time (seconds) the request was signed at. */
export const WEBHOOK_TIMESTAMP_HEADER = 'warden-timestamp';
/** Header carrying `v1=<hex HMAC-SHA256(key, "<timestamp>.<body>")>`. */
export const WEBHOOK_SIGNATURE_HEADER = 'warden-signature';

/** The signature value for a body sent at `timestamp` (Unix seconds). */
export function webhookSignature(key: string, timestamp: number, body: Buffer | string): string {
  return `v1=${createHmac('sha256', key).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/**
 * A generic webhook: each batch is POSTed as `{"events":[…]}` (application/json). The receiver
 * verifies `Warden-Signature` = `v1=` HMAC-SHA256 over `"<Warden-Timestamp>.<raw body>"` and
 * rejects timestamps too far from its clock (replay); event ids de-duplicate resends.
 */
export class WebhookTransport implements SinkTransport {
  readonly confirmDelayMs = 0;
  readonly generation = 0;
  readonly #def: WebhookSinkDefinition;
  readonly #clock: Clock;

  constructor(def: WebhookSinkDefinition, clock: Clock) {
    this.#def = def;
    this.#clock = clock;
  }

  async send(batch: OutboundEvent[]): Promise<void> {
    const events = batch.map(({ formatted }) => formatted.json ?? formatted.text);
    const body = Buffer.from(JSON.stringify({ events }), 'utf8');
    const timestamp = Math.floor(this.#clock.now() / 1000);
    await postBody(
      new URL(this.#def.url),
      body,
      {
        'content-type': 'application/json',
        [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
        [WEBHOOK_SIGNATURE_HEADER]: webhookSignature(this.#def.hmacKey, timestamp, body),
      },
      { ca: this.#def.ca, timeoutMs: this.#def.timeoutMs },
    );
  }

  async close(): Promise<void> {}
}
