import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../support/process.ts';

describe('npm run demo', () => {
  it('tells the whole story: allowed, denied by template and by policy, kill switch, verified ledger, OCSF at the SIEM', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'examples', 'demo.ts')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0, out);
    assert.match(out, /tickets\.create → \{"id":"T-\d+"/);
    assert.match(out, /tickets\.slow → refused: denied: tickets\.slow is not among the tools/);
    assert.match(out, /amount 50000 → refused: denied: forbidden by policy refund-limit/);
    const killed = /refused (\d+) ms after the suspension/.exec(out);
    assert.ok(killed && Number(killed[1]) < 1000, 'the suspension takes effect within a second');
    assert.match(out, /signed checkpoint\(s\): chain, Merkle roots and signatures check out/);
    const events = Number(/(\d+) events in \d+ partition/.exec(out)?.[1]);
    const received = Number(/(\d+) syslog messages received/.exec(out)?.[1]);
    assert.equal(received, events, 'every ledger event reached the SIEM');
    assert.match(out, /class 6003 \(API Activity\) type_uid 600399 api\.operation=tools\/call/);
  });
});
