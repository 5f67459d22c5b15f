import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { describe, it } from 'node:test';
import { readEvents } from '../../src/audit/index.ts';
import { Exporter, type ExporterOptionsInput } from '../../src/export/index.ts';
import { BACKENDS } from '../support/databases.ts';
import { type Ledger, openLedger, toolCall, waitFor } from './support/ledger.ts';
import { httpReceiver, type Received } from './support/receivers.ts';

const ADMIN = { type: 'user' as const, id: 'admin-1', role: 'admin' };
const FAST: ExporterOptionsInput = {
  pollIntervalMs: 20,
  backoffInitialMs: 30,
  backoffMaxMs: 200,
  failingAfter: 2,
};

/** Asserts a secret appears nowhere: not in any stored sink row, the API views, or a log line. */
async function assertSecretHidden(ledger: Ledger, exporter: Exporter, secret: string): Promise<void> {
  const rows = await ledger.store.db.selectFrom('export_sinks').selectAll().execute();
  assert.ok(rows.length > 0);
  assert.ok(!JSON.stringify(rows).includes(secret), 'no plaintext secret in the database');
  assert.ok(rows.every((r) => r.secrets_sealed === null || String(r.secrets_sealed).startsWith('wdn1.')));
  assert.ok(!JSON.stringify(await exporter.listSinks()).includes(secret), 'not returned by list');
  assert.ok(!JSON.stringify(await exporter.status()).includes(secret), 'not in status');
  assert.ok(!ledger.logLines.join('').includes(secret), 'not in any log line');
  const events = await readEvents(ledger.store.db, ledger.auditor.partition, 0, 100_000);
  assert.ok(!JSON.stringify(events).includes(secret), 'not in the audit events');
}

/** Verifies a webhook request the way a receiver should: HMAC over "<timestamp>.<body>", fresh timestamp. */
function verifyWebhook(req: Received, key: string, now = Date.now()): boolean {
  const ts = Number(req.headers['warden-timestamp']);
  const sig = String(req.headers['warden-signature'] ?? '');
  if (!Number.isInteger(ts) || Math.abs(now / 1000 - ts) > 300) return false;
  const expected = `v1=${createHmac('sha256', key).update(`${ts}.`).update(req.body).digest('hex')}`;
  return sig.length === expected.length && timingSafeEqual(Buffer.from(sig), Buffer.from(expected));
}

for (const backend of BACKENDS) {
  describe(`HTTP sinks (${backend})`, () => {
    it('posts to Splunk HEC with the token, retries a 503 with backoff, and reports degraded then healthy', async () => {
      const ledger = await openLedger(backend);
      const token = 'f3a1c5d2-hec-token-0123456789abcdef';
      let refusals = 3;
      const hec = await httpReceiver((req) => {
        if (req.method !== 'POST' || req.path !== '/services/collector/event') return { status: 404 };
        if (req.headers.authorization !== `Splunk ${token}`)
          return { status: 401, body: { text: 'Invalid token', code: 4 } };
        if (refusals-- > 0) return { status: 503, body: { text: 'Server is busy', code: 9 } };
        return { status: 200, body: { text: 'Success', code: 0 } };
      });
      for (let i = 0; i < 30; i++) await ledger.auditor.record(toolCall(i));
      const exporter = await Exporter.create(ledger, FAST);
      await exporter.createSink(
        { name: 'splunk', type: 'splunk_hec', url: hec.url, token, index: 'warden', batchSize: 10 },
        ADMIN,
      );
      await exporter.start();
      const healthSeen = new Set<string>();
      await waitFor(
        async () => {
          const s = (await exporter.status('splunk'))[0]!;
          healthSeen.add(s.health);
          return s.lag.events === 0;
        },
        15_000,
        'HEC delivery',
      );
      const status = (await exporter.status('splunk'))[0]!;
      await exporter.stop();
      assert.ok(healthSeen.has('degraded') || healthSeen.has('failing'));
      assert.equal(status.health, 'healthy');
      assert.equal(status.lastErrorCode, 'HTTP_503');
      const accepted = hec.requests.filter((r) => r.headers.authorization === `Splunk ${token}`).slice(3);
      const payloads = accepted.flatMap((r) =>
        r.body
          .toString('utf8')
          .split('\n')
          .map((l) => JSON.parse(l)),
      );
      const events = await readEvents(ledger.store.db, 'node-a', 0, 1000);
      assert.deepEqual(
        payloads.map((p) => p.event.metadata.uid),
        events.map((e) => e.id),
      );
      assert.equal(payloads[0].index, 'warden');
      assert.equal(payloads[0].sourcetype, '_json');
      assert.equal(payloads[0].time, events[0]!.time / 1000);
      assert.equal(payloads[0].event.class_uid, 6003);
      await assertSecretHidden(ledger, exporter, token);
    });

    it('signs webhook batches with HMAC-SHA256 over timestamp and body; a wrong key fails visibly', async () => {
      const ledger = await openLedger(backend);
      const key = 'k'.repeat(16) + 'webhook-hmac-key-0123456789';
      const hook = await httpReceiver((req) => ({ status: verifyWebhook(req, key) ? 204 : 401 }));
      for (let i = 0; i < 12; i++) await ledger.auditor.record(toolCall(i));
      const exporter = await Exporter.create(ledger, FAST);
      await exporter.createSink(
        { name: 'hook', type: 'webhook', url: `${hook.url}/in`, hmacKey: 'x'.repeat(40), format: 'ecs' },
        ADMIN,
      );
      await exporter.start();
      await waitFor(async () => (await exporter.status('hook'))[0]?.health === 'failing', 10_000, 'failing');
      assert.equal((await exporter.status('hook'))[0]?.lastErrorCode, 'HTTP_401');
      // Fix the key through the API: the loop restarts with it and delivers everything.
      await exporter.updateSink('hook', { hmacKey: key }, ADMIN);
      await waitFor(async () => (await exporter.status('hook'))[0]?.lag.events === 0, 10_000, 'delivery');
      await exporter.stop();
      const good = hook.requests.filter((r) => verifyWebhook(r, key));
      assert.ok(good.length > 0);
      for (const r of good) {
        assert.equal(r.headers['content-type'], 'application/json');
        assert.match(String(r.headers['warden-signature']), /^v1=[0-9a-f]{64}$/);
      }
      const ids = good.flatMap((r) => JSON.parse(r.body.toString('utf8')).events.map((e: any) => e.event.id));
      const events = await readEvents(ledger.store.db, 'node-a', 0, 1000);
      assert.deepEqual(
        [...new Set(ids)],
        events.map((e) => e.id),
      );
      // A tampered body no longer verifies.
      const tampered = { ...good[0]!, body: Buffer.concat([good[0]!.body, Buffer.from(' ')]) };
      assert.equal(verifyWebhook(tampered, key), false);
      await assertSecretHidden(ledger, exporter, key);
      await assertSecretHidden(ledger, exporter, 'x'.repeat(40));
    });
  });
}
