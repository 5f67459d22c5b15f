import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { readEvents } from '../../src/audit/index.ts';
import { Exporter } from '../../src/export/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { openLedger, toolCall, waitFor } from './support/ledger.ts';

/**
 * Runs against a real Kafka broker only: set WARDEN_TEST_KAFKA_BROKERS=host:port[,host:port] (the
 * broker must allow topic creation by the admin API). Without it the test is skipped: no broker can
 * be installed on this machine, and a fake broker would prove nothing.
 */
const BROKERS =
  process.env.WARDEN_TEST_KAFKA_BROKERS?.split(',')
    .map((b) => b.trim())
    .filter(Boolean) ?? [];
const SKIP = BROKERS.length
  ? false
  : 'WARDEN_TEST_KAFKA_BROKERS is not set: no Kafka broker to test against (see src/export/README.md)';

for (const backend of BACKENDS) {
  describe(`Kafka sink against a real broker (${backend})`, () => {
    it('reports a Kafka sink whose brokers do not answer as failing, with a stable code, and keeps its cursor', async () => {
      const ledger = await openLedger(backend);
      await ledger.auditor.record(toolCall(1));
      const exporter = await Exporter.create(ledger, {
        pollIntervalMs: 20,
        backoffInitialMs: 20,
        failingAfter: 1,
      });
      // Port 1 on loopback: nothing listens there, so every connection is refused.
      await exporter.createSink(
        { name: 'kafka', type: 'kafka', brokers: ['127.0.0.1:1'], topic: 'audit' },
        {
          type: 'system',
          id: 'test',
        },
      );
      await exporter.start();
      await waitFor(async () => (await exporter.status('kafka'))[0]?.health === 'failing', 20_000, 'failing');
      const status = (await exporter.status('kafka'))[0]!;
      await exporter.stop();
      assert.match(status.lastErrorCode ?? '', /^KAFKA_[A-Z_]+$/);
      assert.equal(status.lag.events, 2);
    });

    it('publishes every event keyed by agent id, in order per agent, with an idempotent producer', {
      skip: SKIP,
    }, async () => {
      const ledger = await openLedger(backend);
      const kafka = new Kafka({ clientId: 'warden-test', brokers: BROKERS, logLevel: logLevel.NOTHING });
      const topic = `warden-test-${process.pid}-${Date.now()}`;
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({
        topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
        waitForLeaders: true,
      });
      try {
        const agents = ['agent-a', 'agent-b', 'agent-c', 'agent-d'];
        for (let i = 0; i < 60; i++) await ledger.auditor.record(toolCall(i, agents[i % agents.length]));
        // startAt=now: what is in the ledger before the sink exists is not sent (its own creation event is).
        const skipped = (await readEvents(ledger.store.db, 'node-a', 0, 10_000)).length;
        const exporter = await Exporter.create(ledger, { pollIntervalMs: 20 });
        await exporter.createSink(
          { name: 'kafka', type: 'kafka', brokers: BROKERS, topic, format: 'json', startAt: 'now' },
          { type: 'system', id: 'test' },
        );
        for (let i = 60; i < 120; i++) await ledger.auditor.record(toolCall(i, agents[i % agents.length]));
        await exporter.start();
        await waitFor(
          async () => (await exporter.status('kafka'))[0]?.lag.events === 0,
          30_000,
          'Kafka delivery',
        );
        await exporter.stop();
        const expected = (await readEvents(ledger.store.db, 'node-a', 0, 10_000)).slice(skipped);

        const consumer = kafka.consumer({ groupId: `${topic}-reader` });
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        const got: { key: string; id: string; seq: number; header: string }[] = [];
        await consumer.run({
          eachMessage: async ({ message }) => {
            const event = JSON.parse(String(message.value));
            got.push({
              key: String(message.key),
              id: event.id,
              seq: event.seq,
              header: String(message.headers?.['warden-event-id']),
            });
          },
        });
        await waitFor(() => new Set(got.map((g) => g.id)).size >= expected.length, 30_000, 'consumer');
        await consumer.disconnect();
        assert.deepEqual(new Set(got.map((g) => g.id)), new Set(expected.map((e) => e.id)));
        for (const g of got) assert.equal(g.header, g.id);
        for (const agent of agents) {
          const seqs = got.filter((g) => g.key === agent).map((g) => g.seq);
          assert.ok(seqs.length > 0);
          assert.deepEqual(
            seqs,
            [...seqs].sort((a, b) => a - b),
            `order holds for ${agent}`,
          );
        }
      } finally {
        await admin.deleteTopics({ topics: [topic] }).catch(() => {});
        await admin.disconnect();
      }
    });
  });
}
