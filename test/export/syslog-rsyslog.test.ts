import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { type AuditEvent, readEvents } from '../../src/audit/index.ts';
import { Exporter, type ExporterOptionsInput } from '../../src/export/index.ts';
import { BACKENDS, tempDir } from '../support/databases.ts';
import { type Ledger, openLedger, toolCall, waitFor } from './support/ledger.ts';
import { makeTlsFiles, parse5424, Rsyslog, type Syslog5424 } from './support/rsyslog.ts';

const ADMIN = { type: 'user' as const, id: 'admin-1', role: 'admin' };
const FAST: ExporterOptionsInput = {
  pollIntervalMs: 20,
  backoffInitialMs: 50,
  backoffMaxMs: 400,
  syslogConfirmMs: 100,
};

async function exporterFor(ledger: Ledger, sink: Record<string, unknown>): Promise<Exporter> {
  const exporter = await Exporter.create(ledger, FAST);
  await exporter.createSink({ name: 'siem', type: 'syslog', ...sink }, ADMIN);
  await exporter.start();
  return exporter;
}

async function allEvents(ledger: Ledger): Promise<AuditEvent[]> {
  return readEvents(ledger.store.db, ledger.auditor.partition, 0, 1_000_000);
}

/** rsyslog's messages, parsed, de-duplicated by event id (first occurrence kept). */
function received(rsyslog: Rsyslog): { unique: Syslog5424[]; duplicates: number } {
  const seen = new Set<string>();
  const unique: Syslog5424[] = [];
  let duplicates = 0;
  for (const line of rsyslog.messages()) {
    const m = parse5424(line);
    const id = m.sd['warden@32473']?.id as string;
    if (seen.has(id)) duplicates++;
    else {
      seen.add(id);
      unique.push(m);
    }
  }
  return { unique, duplicates };
}

/** Every ledger event arrived, in ledger order, each message carrying exactly that event. */
function assertSameAsLedger(messages: Syslog5424[], events: AuditEvent[]): void {
  assert.equal(messages.length, events.length, 'one message per ledger event');
  messages.forEach((m, i) => {
    const e = events[i] as AuditEvent;
    const sd = m.sd['warden@32473'] as Record<string, string>;
    assert.equal(sd.id, e.id, `message ${i} is event ${e.seq}`);
    assert.equal(sd.seq, String(e.seq));
    assert.equal(sd.partition, e.partition);
    assert.equal(sd.type, e.type);
    assert.equal(m.msgId, e.type);
    assert.equal(m.timestamp, new Date(e.time).toISOString());
    const ocsf = JSON.parse(m.msg);
    assert.equal(ocsf.metadata.uid, e.id);
    assert.equal(ocsf.time, e.time);
    assert.deepEqual(ocsf.unmapped.warden.intent, e.intent);
  });
}

for (const backend of BACKENDS) {
  describe(`syslog export to a real rsyslog (${backend})`, () => {
    it('delivers every ledger event over TCP, in order, one RFC 5424 message each, and resumes after a restart', async () => {
      const ledger = await openLedger(backend);
      const rsyslog = await Rsyslog.start(tempDir());
      try {
        for (let i = 0; i < 40; i++) await ledger.auditor.record(toolCall(i));
        let exporter = await exporterFor(ledger, {
          host: '127.0.0.1',
          port: rsyslog.port,
          hostname: 'warden-test',
        });
        // A brand-new agent nobody configured anything for is covered too.
        await ledger.auditor.record(toolCall(99, 'agent-brand-new'));
        await waitFor(
          async () => (await exporter.status('siem'))[0]?.lag.events === 0,
          15_000,
          'export to catch up',
        );
        let events = await allEvents(ledger);
        await waitFor(() => rsyslog.messages().length >= events.length, 5000, 'rsyslog to write');
        assertSameAsLedger(received(rsyslog).unique, events);
        assert.ok(received(rsyslog).unique.some((m) => m.sd['warden@32473']?.agent === 'agent-brand-new'));
        // rsyslog's own RFC 5424 parser agrees on the header fields.
        const fields = rsyslog.parsedFields();
        assert.deepEqual(fields[0]?.slice(0, 2), ['warden-test', 'warden']);
        assert.deepEqual(
          fields.map((f) => f[3]),
          events.map((e) => e.type),
        );
        const status = (await exporter.status('siem'))[0]!;
        assert.equal(status.health, 'healthy');
        assert.equal(status.lag.seconds, 0);

        // Stop the exporter, record more while it is down, recreate it: it resumes from its cursor.
        await exporter.stop();
        for (let i = 100; i < 130; i++) await ledger.auditor.record(toolCall(i));
        exporter = await Exporter.create(ledger, FAST);
        const behind = (await exporter.status('siem'))[0]!;
        assert.equal(behind.lag.events, 30);
        assert.ok(behind.lag.seconds >= 0);
        await exporter.start();
        await waitFor(async () => (await exporter.status('siem'))[0]?.lag.events === 0, 15_000, 'resume');
        await exporter.stop();
        events = await allEvents(ledger);
        await waitFor(() => rsyslog.messages().length >= events.length, 5000, 'rsyslog to write');
        const { unique, duplicates } = received(rsyslog);
        assertSameAsLedger(unique, events);
        assert.equal(duplicates, 0, 'a clean stop commits the cursor: nothing is sent twice');
      } finally {
        await rsyslog.stop();
      }
    });

    it('delivers over TLS (RFC 5425) to rsyslog with a throwaway CA', async () => {
      const ledger = await openLedger(backend);
      const dir = tempDir();
      const tls = makeTlsFiles(dir);
      const rsyslog = await Rsyslog.start(dir, tls);
      try {
        for (let i = 0; i < 25; i++) await ledger.auditor.record(toolCall(i));
        const exporter = await exporterFor(ledger, {
          transport: 'tls',
          host: '127.0.0.1',
          port: rsyslog.port,
          tls: { ca: tls.ca, serverName: 'localhost' },
        });
        await waitFor(async () => (await exporter.status('siem'))[0]?.lag.events === 0, 15_000, 'TLS export');
        await exporter.stop();
        const events = await allEvents(ledger);
        await waitFor(() => rsyslog.messages().length >= events.length, 5000, 'rsyslog to write');
        assertSameAsLedger(received(rsyslog).unique, events);
      } finally {
        await rsyslog.stop();
      }
    });

    it('authenticates with a client certificate when rsyslog requires one; the client key is sealed', async () => {
      const ledger = await openLedger(backend);
      const dir = tempDir();
      const tls = makeTlsFiles(dir);
      const rsyslog = await Rsyslog.start(dir, tls, { requireClientCert: true });
      try {
        for (let i = 0; i < 5; i++) await ledger.auditor.record(toolCall(i));
        const exporter = await exporterFor(ledger, {
          transport: 'tls',
          host: '127.0.0.1',
          port: rsyslog.port,
          tls: { ca: tls.ca, serverName: 'localhost', clientCert: tls.clientCert, clientKey: tls.clientKey },
        });
        await waitFor(
          async () => (await exporter.status('siem'))[0]?.lag.events === 0,
          15_000,
          'mTLS export',
        );
        const view = await exporter.getSink('siem');
        await exporter.stop();
        const events = await allEvents(ledger);
        await waitFor(() => rsyslog.messages().length >= events.length, 5000, 'rsyslog to write');
        assertSameAsLedger(received(rsyslog).unique, events);
        // Without a client certificate the same rsyslog refuses the connection.
        const refused = await new Promise<string>((resolve) => {
          const s = tlsConnect({
            host: '127.0.0.1',
            port: rsyslog.port,
            ca: tls.ca,
            servername: 'localhost',
          });
          s.on('secureConnect', () => s.write('5 <14>1'));
          s.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? 'error'));
          s.on('close', () => resolve('closed'));
        });
        assert.ok(['ECONNRESET', 'closed', 'EPIPE'].includes(refused), refused);
        const keyBody = tls.clientKey.split('\n')[1] as string;
        assert.deepEqual(view.secretsSet, ['tls.clientKey']);
        assert.ok(!JSON.stringify(view).includes(keyBody));
        const rows = await ledger.store.db.selectFrom('export_sinks').selectAll().execute();
        assert.ok(!JSON.stringify(rows).includes(keyBody), 'the client key is not stored in plaintext');
        assert.ok(!ledger.logLines.join('').includes(keyBody));
      } finally {
        await rsyslog.stop();
      }
    });

    it('sends over UDP (best effort) to rsyslog imudp', async () => {
      const ledger = await openLedger(backend);
      const rsyslog = await Rsyslog.start(tempDir(), undefined, { udp: true });
      try {
        for (let i = 0; i < 10; i++) await ledger.auditor.record(toolCall(i));
        const exporter = await exporterFor(ledger, {
          transport: 'udp',
          host: '127.0.0.1',
          port: rsyslog.udpPort,
        });
        await waitFor(async () => (await exporter.status('siem'))[0]?.lag.events === 0, 15_000, 'UDP export');
        await exporter.stop();
        const events = await allEvents(ledger);
        await waitFor(() => rsyslog.messages().length >= events.length, 5000, 'rsyslog to write');
        assertSameAsLedger(received(rsyslog).unique, events);
      } finally {
        await rsyslog.stop();
      }
    });

    it('refuses a TLS receiver whose certificate it cannot verify, and reports it as failing', async () => {
      const ledger = await openLedger(backend);
      const dir = tempDir();
      const rsyslog = await Rsyslog.start(dir, makeTlsFiles(dir));
      const otherCa = makeTlsFiles(tempDir()).ca;
      try {
        await ledger.auditor.record(toolCall(1));
        const exporter = await exporterFor(ledger, {
          transport: 'tls',
          host: '127.0.0.1',
          port: rsyslog.port,
          tls: { ca: otherCa, serverName: 'localhost' },
        });
        await waitFor(
          async () => (await exporter.status('siem'))[0]?.health === 'failing',
          10_000,
          'failing',
        );
        const status = (await exporter.status('siem'))[0]!;
        assert.match(status.lastErrorCode ?? '', /^[A-Z_]+$/);
        assert.ok(status.lag.events >= 1);
        await exporter.stop();
        assert.equal(rsyslog.messages().length, 0);
      } finally {
        await rsyslog.stop();
      }
    });

    it('loses nothing and keeps order when rsyslog is down for a while under load', async () => {
      const ledger = await openLedger(backend);
      const rsyslog = await Rsyslog.start(tempDir());
      try {
        const exporter = await exporterFor(ledger, { host: '127.0.0.1', port: rsyslog.port });
        let stop = false;
        let n = 0;
        const load = (async () => {
          while (!stop) {
            await ledger.auditor.record(toolCall(n++, `agent-${n % 5}`));
            if (n % 20 === 0) await new Promise((r) => setTimeout(r, 10));
          }
        })();
        await waitFor(() => rsyslog.messages().length > 50, 10_000, 'traffic before the outage');
        await rsyslog.stop();
        const healthDuringOutage = new Set<string>();
        const outageEnds = Date.now() + 1500;
        while (Date.now() < outageEnds) {
          const s = (await exporter.status('siem'))[0]!;
          healthDuringOutage.add(s.health);
          await new Promise((r) => setTimeout(r, 100));
        }
        const failed = (await exporter.status('siem'))[0]!;
        await rsyslog.restart();
        await new Promise((r) => setTimeout(r, 500));
        stop = true;
        await load;
        await waitFor(async () => (await exporter.status('siem'))[0]?.lag.events === 0, 20_000, 'recovery');
        await exporter.stop();
        const events = await allEvents(ledger);
        await waitFor(() => received(rsyslog).unique.length >= events.length, 5000, 'rsyslog to write');
        assertSameAsLedger(received(rsyslog).unique, events);
        assert.ok(healthDuringOutage.has('degraded') || healthDuringOutage.has('failing'));
        assert.equal(failed.lastErrorCode, 'ECONNREFUSED');
        assert.ok(n > 100, `load kept coming (${n} events)`);
        assert.equal((await exporter.status('siem'))[0]?.lag.events, 0);
      } finally {
        await rsyslog.stop();
      }
    });
  });
}
