import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Exporter } from '../../src/export/index.ts';
import { BACKENDS, tempDir } from '../support/databases.ts';
import { openLedger, waitFor } from './support/ledger.ts';
import { Rsyslog } from './support/rsyslog.ts';

const ADMIN = { type: 'user' as const, id: 'admin-1', role: 'admin' };

const SECRETS = {
  password: 'hunter2-correct-horse',
  jwt: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudC0xIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ',
  bearer: 'Bearer abcdefghijklmnop1234567890',
  apiKey: 'sk-live-ABCDEFGHIJKLMNOPQRSTUVWX',
  github: 'ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  pem: '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----',
  clientSecret: 'client-secret-value-9f8e7d6c',
};

for (const backend of BACKENDS) {
  describe(`redaction in exports (${backend})`, () => {
    it('exports no secret fed into events, in any format or sink', async () => {
      const ledger = await openLedger(backend);
      const dir = tempDir();
      const rsyslog = await Rsyslog.start(tempDir());
      try {
        await ledger.auditor.record({
          type: 'token.refused',
          actor: { type: 'agent', id: 'agent-1', on_behalf_of: { type: 'user', id: 'u-1' } },
          action: 'token',
          outcome: 'failure',
          error_code: 'ERR_INVALID_CLIENT',
          intent: { text: `use ${SECRETS.bearer} and ${SECRETS.jwt}` },
          request: { user_agent: `curl ${SECRETS.github}` },
          details: {
            password: SECRETS.password,
            client_secret: SECRETS.clientSecret,
            nested: { api_key: SECRETS.apiKey, note: `key ${SECRETS.apiKey}`, pem: SECRETS.pem },
            assertion: SECRETS.jwt,
          },
        });
        await ledger.auditor.record({
          type: 'vault.credential_used',
          actor: { type: 'agent', id: 'agent-1' },
          action: 'vault.use',
          resource: { type: 'credential', id: 'c-1', name: `github ${SECRETS.github}` },
          outcome: 'success',
          details: { token: SECRETS.github, headers: { authorization: SECRETS.bearer } },
        });
        const exporter = await Exporter.create(ledger, { pollIntervalMs: 20 });
        for (const format of ['ocsf', 'cef', 'ecs', 'json'] as const) {
          await exporter.createSink(
            { name: `file-${format}`, type: 'file', path: join(dir, `${format}.jsonl`), format },
            ADMIN,
          );
          await exporter.createSink(
            { name: `syslog-${format}`, type: 'syslog', host: '127.0.0.1', port: rsyslog.port, format },
            ADMIN,
          );
        }
        await exporter.start();
        await waitFor(
          async () => (await exporter.status()).every((s) => s.lag.events === 0),
          15_000,
          'exports',
        );
        await exporter.stop();
        // 2 events + 8 sink_changed events, in 4 files and 4 syslog streams.
        await waitFor(() => rsyslog.messages().length >= 40, 5000, 'rsyslog');
        const outputs = ['ocsf', 'cef', 'ecs', 'json'].map((f) => join(dir, `${f}.jsonl`));
        const lines = [
          ...outputs.flatMap((f) =>
            existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [],
          ),
          ...rsyslog.messages(),
        ];
        assert.ok(lines.length >= 80, `${lines.length} lines exported`);
        const all = lines.join('\n');
        for (const [name, secret] of Object.entries(SECRETS)) {
          for (const piece of secret.split('\n')) {
            if (piece.startsWith('-----')) continue;
            assert.ok(!all.includes(piece), `${name} leaked into an export`);
          }
        }
        assert.ok(all.includes('[redacted]'), 'the redaction marker is visible instead');
      } finally {
        await rsyslog.stop();
      }
    });
  });
}
