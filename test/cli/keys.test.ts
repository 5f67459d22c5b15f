import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../support/databases.ts';
import { runWarden, startServe } from '../support/process.ts';

describe('warden keys rotate-master', () => {
  it('replaces the master key file and re-wraps sealed values; the node starts with the new key', async () => {
    const dataDir = tempDir();
    const first = await startServe({ WARDEN_DATA_DIR: dataDir });
    const token = /API token: (wdn_\S+)/.exec(first.output())?.[1] as string;
    await first.stop();
    const before = readFileSync(join(dataDir, 'master.key'), 'utf8').trim();
    const res = await runWarden(['keys', 'rotate-master', '--json'], {
      WARDEN_DATA_DIR: dataDir,
      WARDEN_LOG_LEVEL: 'silent',
    });
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.ok(out.rewrapped >= 1);
    const after = readFileSync(join(dataDir, 'master.key'), 'utf8').trim();
    assert.notEqual(after, before);
    assert.equal(after.split('\n').length, 1, 'the old key is gone from the file');
    const again = await startServe({ WARDEN_DATA_DIR: dataDir });
    const me = await fetch(`${again.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200);
  });
});
