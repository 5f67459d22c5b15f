import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Auditor, readEvents } from '../../src/audit/index.ts';
import { Exporter } from '../../src/export/index.ts';
import { BACKENDS, tempDir } from '../support/databases.ts';
import { openLedger, toolCall, waitFor } from './support/ledger.ts';

const ADMIN = { type: 'user' as const, id: 'admin-1', role: 'admin' };

for (const backend of BACKENDS) {
  describe(`exporters on several nodes (${backend})`, () => {
    it('lets one node at a time run a sink; another takes over from the cursor when it stops', async () => {
      const ledger = await openLedger(backend);
      const nodeB = await Auditor.open({ ...ledger, partition: 'node-b', failMode: 'closed' });
      const path = join(tempDir(), 'out.jsonl');
      const options = { pollIntervalMs: 20, leaseMs: 600 };
      const a = await Exporter.create(ledger, options);
      await a.createSink({ name: 'file', type: 'file', path, format: 'json', batchSize: 5 }, ADMIN);
      const b = await Exporter.create({ ...ledger, auditor: nodeB }, options);
      await a.start();
      await b.start();
      for (let i = 0; i < 20; i++) {
        await ledger.auditor.record(toolCall(i));
        await nodeB.record(toolCall(i, 'agent-b'));
      }
      await waitFor(async () => (await a.status('file'))[0]?.lag.events === 0, 15_000, 'delivery');
      const [sa] = await a.status('file');
      const [sb] = await b.status('file');
      assert.ok(sa?.running && sb?.running, 'both nodes have a loop for the sink');
      assert.equal(Number(sa?.active) + Number(sb?.active), 1, 'exactly one node delivers');

      const leader = sa?.active ? a : b;
      const follower = sa?.active ? b : a;
      await leader.stop();
      for (let i = 20; i < 30; i++) await ledger.auditor.record(toolCall(i));
      await waitFor(async () => (await follower.status('file'))[0]?.lag.events === 0, 15_000, 'takeover');
      assert.equal((await follower.status('file'))[0]?.active, true);
      await follower.stop();

      const ids = readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).id);
      const events = [
        ...(await readEvents(ledger.store.db, 'node-a', 0, 1000)),
        ...(await readEvents(ledger.store.db, 'node-b', 0, 1000)),
      ];
      assert.equal(new Set(ids).size, events.length, 'every event of both partitions delivered');
      assert.equal(ids.length, events.length, 'and none twice');
      for (const partition of ['node-a', 'node-b']) {
        const seqs = readFileSync(path, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
          .filter((e) => e.partition === partition)
          .map((e) => e.seq);
        assert.deepEqual(
          seqs,
          [...seqs].sort((x, y) => x - y),
          `order holds in ${partition}`,
        );
      }
    });
  });
}
