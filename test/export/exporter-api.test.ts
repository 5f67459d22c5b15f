import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AuditEvent, readEvents } from '../../src/audit/index.ts';
import {
  ConfigError,
  ConflictError,
  InvalidRequestError,
  loadConfig,
  NotFoundError,
  SealError,
} from '../../src/core/index.ts';
import { Exporter } from '../../src/export/index.ts';
import { BACKENDS, tempDir } from '../support/databases.ts';
import { type Ledger, openLedger, toolCall } from './support/ledger.ts';

const ADMIN = { type: 'user' as const, id: 'admin-1', role: 'admin' };
const TOKEN = 'hec-token-6c0ffee0-0000-4000-8000-000000000001';

async function sinkEvents(ledger: Ledger): Promise<AuditEvent[]> {
  return (await readEvents(ledger.store.db, 'node-a', 0, 10_000)).filter(
    (e) => e.type === 'export.sink_changed',
  );
}

function hecSink(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'splunk', type: 'splunk_hec', url: 'https://splunk.example:8088', token: TOKEN, ...extra };
}

for (const backend of BACKENDS) {
  describe(`sink management API (${backend})`, () => {
    it('creates, lists, updates and deletes sinks, each change an export.sink_changed event', async () => {
      const ledger = await openLedger(backend);
      const exporter = await Exporter.create(ledger);
      const created = await exporter.createSink(hecSink({ index: 'main' }), ADMIN);
      assert.equal(created.name, 'splunk');
      assert.equal(created.format, 'ocsf');
      assert.deepEqual(created.secretsSet, ['token']);
      assert.equal(created.config.token, undefined);
      assert.equal(created.source, 'api');

      const updated = await exporter.updateSink('splunk', { format: 'cef', enabled: false }, ADMIN);
      assert.equal(updated.format, 'cef');
      assert.equal(updated.enabled, false);
      assert.deepEqual(updated.secretsSet, ['token'], 'an omitted secret keeps its value');
      assert.equal(updated.version, 2);
      assert.equal((await exporter.status('splunk'))[0]?.health, 'disabled');

      assert.deepEqual(
        (await exporter.listSinks()).map((s) => s.name),
        ['splunk'],
      );
      await exporter.deleteSink('splunk', ADMIN);
      assert.deepEqual(await exporter.listSinks(), []);
      await assert.rejects(exporter.getSink('splunk'), NotFoundError);
      await assert.rejects(exporter.deleteSink('splunk', ADMIN), NotFoundError);

      const events = await sinkEvents(ledger);
      assert.deepEqual(
        events.map((e) => e.details?.operation),
        ['create', 'update', 'delete'],
      );
      for (const e of events) {
        assert.deepEqual(e.actor, ADMIN);
        assert.equal(e.resource?.type, 'export_sink');
        assert.equal(e.resource?.name, 'splunk');
        assert.equal(e.resource?.id, created.id);
      }
      assert.deepEqual(events[1]?.details?.changed_fields, ['format', 'enabled']);
      assert.ok(!JSON.stringify(events).includes(TOKEN));
    });

    it('refuses a bad definition with field-level reasons, echoes no value, and changes nothing', async () => {
      const ledger = await openLedger(backend);
      const exporter = await Exporter.create(ledger);
      const error = await exporter
        .createSink(
          { name: 'Bad Name', type: 'splunk_hec', url: 'ftp://x', token: TOKEN, extra: TOKEN },
          ADMIN,
        )
        .catch((e) => e);
      assert.ok(error instanceof InvalidRequestError);
      assert.equal(error.code, 'ERR_INVALID_SINK');
      const names = (error.invalidParams ?? []).map((p) => p.name).sort();
      assert.deepEqual(names, ['body', 'body.name', 'body.url']);
      assert.ok(!JSON.stringify({ m: error.message, p: error.invalidParams }).includes(TOKEN));
      await assert.rejects(
        exporter.createSink({ name: 'x', type: 'carrier-pigeon' }, ADMIN),
        InvalidRequestError,
      );
      await assert.rejects(
        exporter.createSink({ name: 'x', type: 'syslog', host: 'h', port: 70_000 }, ADMIN),
        InvalidRequestError,
      );
      assert.deepEqual(await exporter.listSinks(), []);
      assert.deepEqual(await sinkEvents(ledger), []);

      await exporter.createSink(hecSink(), ADMIN);
      await assert.rejects(exporter.createSink(hecSink(), ADMIN), ConflictError);
      await assert.rejects(exporter.updateSink('splunk', { type: 'webhook' }, ADMIN), InvalidRequestError);
      await assert.rejects(exporter.updateSink('splunk', { url: 'nope' }, ADMIN), InvalidRequestError);
      assert.equal((await exporter.getSink('splunk')).version, 1);
      assert.equal((await sinkEvents(ledger)).length, 1);
    });

    it('seals secrets bound to their sink: a sealed value moved to another sink does not open', async () => {
      const ledger = await openLedger(backend);
      const exporter = await Exporter.create(ledger);
      await exporter.createSink(hecSink(), ADMIN);
      await exporter.createSink(hecSink({ name: 'other', token: 'another-token-value' }), ADMIN);
      const rows = await ledger.store.db
        .selectFrom('export_sinks')
        .select(['name', 'secrets_sealed'])
        .execute();
      const sealed = rows.find((r) => r.name === 'splunk')?.secrets_sealed as string;
      assert.match(sealed, /^wdn1\./);
      await ledger.store.db
        .updateTable('export_sinks')
        .set({ secrets_sealed: sealed })
        .where('name', '=', 'other')
        .execute();
      await assert.rejects(exporter.getSink('other'), SealError);
    });

    it('starts a sink created with startAt=now at the ledger head', async () => {
      const ledger = await openLedger(backend);
      for (let i = 0; i < 5; i++) await ledger.auditor.record(toolCall(i));
      const exporter = await Exporter.create(ledger);
      await exporter.createSink(
        { name: 'f', type: 'file', path: `${tempDir()}/x.jsonl`, startAt: 'now' },
        ADMIN,
      );
      await exporter.createSink({ name: 'g', type: 'file', path: `${tempDir()}/y.jsonl` }, ADMIN);
      const [f, g] = await exporter.status();
      // f starts after the 5 events (only its own and g's sink_changed events are behind it).
      assert.equal(f?.lag.events, 2);
      assert.equal(g?.lag.events, 7);
    });

    it('applies sinks from the config file at start: created once, updated when changed', async () => {
      const ledger = await openLedger(backend);
      const path = `${tempDir()}/c.jsonl`;
      const config = loadConfig({}, { export: { sinks: [{ name: 'cfg', type: 'file', path }] } });
      await Exporter.create(ledger, config.export);
      await Exporter.create(ledger, config.export);
      let events = await sinkEvents(ledger);
      assert.equal(events.length, 1);
      assert.deepEqual(events[0]?.actor, { type: 'system', id: 'config' });
      assert.equal((await (await Exporter.create(ledger)).getSink('cfg')).source, 'config');
      await Exporter.create(ledger, { sinks: [{ name: 'cfg', type: 'file', path, format: 'ecs' }] });
      // A sink with a secret is also applied only once (the stored and configured forms compare equal).
      const hook = {
        name: 'cfg-hook',
        type: 'webhook',
        url: 'https://siem.example/in',
        hmacKey: 'h'.repeat(40),
      };
      await Exporter.create(ledger, { sinks: [hook] });
      await Exporter.create(ledger, { sinks: [hook] });
      assert.equal((await sinkEvents(ledger)).filter((e) => e.resource?.name === 'cfg-hook').length, 1);
      events = (await sinkEvents(ledger)).filter((e) => e.resource?.name === 'cfg');
      assert.deepEqual(
        events.map((e) => e.details?.operation),
        ['create', 'update'],
      );
      await assert.rejects(
        Exporter.create(ledger, {
          sinks: [{ name: 'cfg2', type: 'webhook', url: 'http://x', hmacKey: 'short-secret' }],
        }),
        (e: unknown) =>
          e instanceof ConfigError && /hmacKey/.test(e.message) && !e.message.includes('short-secret'),
      );
      await assert.rejects(Exporter.create(ledger, { pollIntervalMs: 1 }), ConfigError);
    });
  });
}
