import type { SplunkHecSinkDefinition } from '../sink-definition.ts';
import { postBody } from './http-post.ts';
import type { OutboundEvent, SinkTransport } from './transport.ts';

/**
 * Splunk HTTP Event Collector: batches are POSTed to `<url>/services/collector/event` as
 * concatenated event objects (`{"time","host","source","sourcetype","index","event"}`) with
 * `Authorization: Splunk <token>`. A 2xx answer acknowledges the batch.
 */
export class SplunkHecTransport implements SinkTransport {
  readonly confirmDelayMs = 0;
  readonly generation = 0;
  readonly #def: SplunkHecSinkDefinition;
  readonly #endpoint: URL;

  constructor(def: SplunkHecSinkDefinition) {
    this.#def = def;
    this.#endpoint = new URL('services/collector/event', def.url.endsWith('/') ? def.url : `${def.url}/`);
  }

  async send(batch: OutboundEvent[]): Promise<void> {
    const sourcetype = this.#def.sourcetype ?? (this.#def.format === 'cef' ? 'cef' : '_json');
    const body = batch
      .map(({ event, formatted }) =>
        JSON.stringify({
          time: event.time / 1000,
          host: event.request?.node ?? event.partition,
          source: this.#def.source,
          sourcetype,
          index: this.#def.index,
          event: formatted.json ?? formatted.text,
        }),
      )
      .join('\n');
    await postBody(
      this.#endpoint,
      Buffer.from(body, 'utf8'),
      { 'content-type': 'application/json', authorization: `Splunk ${this.#def.token}` },
      { ca: this.#def.ca, timeoutMs: this.#def.timeoutMs },
    );
  }

  async close(): Promise<void> {}
}
