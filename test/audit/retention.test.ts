import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  exportLedger,
  inclusionProof,
  readEvents,
  verifyInclusionProof,
  verifyLedger,
  verifyLedgerFile,
} from '../../src/audit/index.ts';
import { ManualClock } from '../../src/core/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { openLedger, toolCall } from './ledger-fixture.ts';

const DAY = 86_400_000;

for (const backend of BACKENDS) {
  describe(`audit retention on ${backend}`, () => {
    it('removes old events after a signed checkpoint and an audit.retention event; verify still passes', async () => {
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      const { store, auditor, dataDir } = await openLedger(backend, { clock });
      const key = auditor.verifier!.text;
      try {
        for (let i = 0; i < 13; i++) await auditor.record(toolCall(i));
        clock.advance(40 * DAY);
        for (let i = 13; i < 20; i++) await auditor.record(toolCall(i));
        const result = await auditor.applyRetention({ maxAgeMs: 30 * DAY });
        assert.equal(result.removed, 13);
        assert.equal(result.pruned_seq, 13);
        assert.equal(result.checkpoint?.size, 20, 'a checkpoint covering the removed events came first');
        const left = await readEvents(store.db, 'node-a', 0, 100);
        assert.equal(left[0]?.seq, 14);
        const retention = left.at(-1)!;
        assert.equal(retention.type, 'audit.retention');
        assert.equal(retention.details?.pruned_to_seq, 13);
        // Nothing more to remove: a second run is a no-op.
        assert.equal((await auditor.applyRetention({ maxAgeMs: 30 * DAY })).removed, 0);
        for (let i = 20; i < 25; i++) await auditor.record(toolCall(i));
        await auditor.close();
        const report = await verifyLedger(store.db, key);
        assert.equal(report.ok, true, JSON.stringify(report.first_problem));
        assert.deepEqual(
          [report.events, report.partitions[0]?.pruned_seq, report.partitions[0]?.signed_through],
          [13, 13, 26],
        );
        const file = join(dataDir, 'after-retention.jsonl');
        await exportLedger(store.db, file);
        assert.equal((await verifyLedgerFile(file, key)).ok, true);
        // Proofs still work for the remaining events, against trees that include the removed ones.
        const proof = await inclusionProof(store.db, left[0]!.id);
        assert.equal(verifyInclusionProof(proof, key), true);
      } finally {
        await store.close();
      }
    });

    it('catches events removed behind the retention job’s back', async () => {
      const clock = new ManualClock(Date.UTC(2026, 0, 1));
      const { store, auditor } = await openLedger(backend, { clock });
      const key = auditor.verifier!.text;
      try {
        for (let i = 0; i < 10; i++) await auditor.record(toolCall(i));
        clock.advance(40 * DAY);
        await auditor.applyRetention({ maxAgeMs: 30 * DAY });
        for (let i = 10; i < 15; i++) await auditor.record(toolCall(i));
        await auditor.close();
        // Someone deletes more than retention did and moves the recorded start forward.
        await store.db.deleteFrom('audit_events').where('seq', '<=', 12).execute();
        await store.db.updateTable('audit_partitions').set({ pruned_seq: 12 }).execute();
        const report = await verifyLedger(store.db, key);
        assert.equal(report.ok, false);
        assert.equal(report.first_problem?.seq, 13);
      } finally {
        await store.close();
      }
    });
  });
}
