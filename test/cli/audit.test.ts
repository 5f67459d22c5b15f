import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../support/databases.ts';
import { runWarden, startServe } from '../support/process.ts';

describe('warden audit', () => {
  it('searches over the API, verifies the database and an exported file offline, and names a tampered event', async () => {
    const dataDir = tempDir();
    const server = await startServe({ WARDEN_DATA_DIR: dataDir });
    const token = /API token: (wdn_\S+)/.exec(server.output())?.[1] as string;
    const api = { WARDEN_URL: server.url, WARDEN_TOKEN: token, WARDEN_CLI_CONFIG_DIR: dataDir };
    const search = await runWarden(['audit', 'search', '--type', 'user.created', '--json'], api);
    assert.equal(search.code, 0, search.stderr);
    assert.equal(JSON.parse(search.stdout).items.length, 1);
    const tail = await runWarden(['audit', 'tail', '-n', '5'], api);
    assert.equal(tail.code, 0, tail.stderr);
    assert.match(tail.stdout, /system\.started/);
    const key = (await (
      await fetch(`${server.url}/v1/audit/public-key`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { public_key: string };
    // A clean stop writes a signed checkpoint covering the whole chain.
    await server.stop();

    const offline = { WARDEN_DATA_DIR: dataDir, WARDEN_LOG_LEVEL: 'silent' };
    const live = await runWarden(['audit', 'verify', '--public-key', key.public_key, '--json'], offline);
    assert.equal(live.code, 0, live.stderr);
    const report = JSON.parse(live.stdout);
    assert.equal(report.ok, true);
    assert.ok(report.events >= 3 && report.checkpoints >= 1);

    const file = join(dataDir, 'ledger.jsonl');
    const exported = await runWarden(['audit', 'export', '--file', file], offline);
    assert.equal(exported.code, 0, exported.stderr);
    const keyFile = join(dataDir, 'ledger.pub');
    writeFileSync(keyFile, `${key.public_key}\n`);
    const ok = await runWarden(['audit', 'verify', '--file', file, '--public-key', keyFile], {});
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^OK: \d+ events/m);

    const lines = readFileSync(file, 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes('"type":"user.created"'));
    const { id, seq } = JSON.parse(lines[at] as string).event;
    lines[at] = (lines[at] as string).replace('"outcome":"success"', '"outcome":"failure"');
    writeFileSync(file, lines.join('\n'));
    const bad = await runWarden(['audit', 'verify', '--file', file, '--public-key', keyFile], {});
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, new RegExp(`seq ${seq} \\(event ${id}\\)`));
    const nokey = await runWarden(['audit', 'verify', '--file', file], {});
    assert.equal(nokey.code, 1);
    assert.match(nokey.stderr, /--public-key/);
  });
});
