import type { Producer } from 'kafkajs';
import type { KafkaSinkDefinition } from '../sink-definition.ts';
import type { OutboundEvent, SinkTransport } from './transport.ts';

/**
 * Kafka through kafkajs with an idempotent producer (acks=all, one request in flight, so retries
 * neither duplicate nor reorder). The message key is the agent id (else the ledger partition), so
 * one agent's events land in one Kafka partition, in order. The event id travels as a header for
 * de-duplication.
 */
export class KafkaTransport implements SinkTransport {
  readonly confirmDelayMs = 0;
  readonly generation = 0;
  readonly #def: KafkaSinkDefinition;
  #producer: Producer | undefined;

  constructor(def: KafkaSinkDefinition) {
    this.#def = def;
  }

  async #connected(): Promise<Producer> {
    if (this.#producer) return this.#producer;
    // kafkajs is loaded on first use, so nodes without a Kafka sink never pay for it.
    const { Kafka, logLevel } = await import('kafkajs');
    const def = this.#def;
    const kafka = new Kafka({
      clientId: def.clientId,
      brokers: def.brokers,
      ssl: def.ssl ? (def.ca ? { ca: [def.ca] } : true) : false,
      logLevel: logLevel.NOTHING,
      retry: { retries: 3 },
    });
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    this.#producer = producer;
    return producer;
  }

  /** The Kafka message key of an event: its agent, so per-agent order holds. */
  static keyOf(item: OutboundEvent): string {
    const e = item.event;
    if (e.actor.type === 'agent') return e.actor.id;
    if (e.resource?.type === 'agent' && e.resource.id) return e.resource.id;
    return `partition:${e.partition}`;
  }

  async send(batch: OutboundEvent[]): Promise<void> {
    const producer = await this.#connected();
    try {
      await producer.send({
        topic: this.#def.topic,
        acks: -1,
        messages: batch.map((item) => ({
          key: KafkaTransport.keyOf(item),
          value: item.formatted.text,
          timestamp: String(item.event.time),
          headers: { 'warden-event-id': item.event.id, 'warden-format': this.#def.format },
        })),
      });
    } catch (e) {
      this.#producer = undefined;
      await producer.disconnect().catch(() => {});
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.#producer?.disconnect();
    this.#producer = undefined;
  }
}
