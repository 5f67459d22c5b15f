import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../support/databases.ts';
import { runWarden } from '../support/process.ts';
import { startTestServer } from '../support/server.ts';

describe('warden policy', () => {
  it('validates, pushes, activates, explains, simulates and rolls back from the command line', async () => {
    const s = await startTestServer('sqlite');
    const dir = tempDir();
    const env = { WARDEN_URL: s.url, WARDEN_TOKEN: s.adminToken, WARDEN_CLI_CONFIG_DIR: join(dir, 'cli') };
    const w = (args: string[]) => runWarden(args, env);

    writeFileSync(join(dir, 'bad.cedar'), 'permit (principal == Warden::Robot::"r", action, resource);');
    const bad = await w(['policy', 'validate', join(dir, 'bad.cedar')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /does not validate against the Warden schema \(ERR_POLICY_INVALID\)/);

    writeFileSync(
      join(dir, 'v1.cedar'),
      '@id("crm") permit (principal in Warden::Template::"t", action == Warden::Action::"call_tool", resource in Warden::Server::"crm");',
    );
    const pushed = await w(['policy', 'push', join(dir, 'v1.cedar'), '--activate', '--json']);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(JSON.parse(pushed.stdout).activated, true);
    assert.equal(
      (
        await s.call('POST', '/v1/policies', {
          policies: '@id("nothing") forbid (principal, action, resource);',
        })
      ).status,
      201,
    );
    await s.warden.policy.engine.reload();

    writeFileSync(
      join(dir, 'request.json'),
      JSON.stringify({
        principal: { type: 'Agent', id: 'a1', parents: [{ type: 'Template', id: 't' }] },
        action: 'call_tool',
        resource: { type: 'Tool', id: 'crm/lookup', parents: [{ type: 'Server', id: 'crm' }] },
      }),
    );
    const explained = await w(['policy', 'explain', join(dir, 'request.json')]);
    assert.equal(explained.code, 0, explained.stderr);
    assert.match(explained.stdout, /decision\s+permit/);
    assert.match(explained.stdout, /policies\s+crm/);

    // A recorded decision for the simulation to replay.
    const evaluated = await s.call('POST', '/access/v1/evaluation', {
      subject: { type: 'agent', id: 'a1', properties: { template: 't' } },
      action: { name: 'call_tool' },
      resource: { type: 'tool', id: 'crm/lookup', properties: { server: 'crm' } },
    });
    assert.equal(evaluated.body.decision, true);
    const sim = await w(['policy', 'simulate', '2', '--days', '1']);
    assert.equal(sim.code, 0, sim.stderr);
    assert.match(sim.stdout, /allowed→denied 1/);
    assert.match(sim.stdout, /Agent::a1\s+call_tool\s+Tool::crm\/lookup\s+nothing/);

    assert.equal((await s.call('POST', '/v1/policies/2/activate')).status, 200);
    const rolled = await w(['policy', 'rollback', '--json']);
    assert.equal(rolled.code, 0, rolled.stderr);
    assert.equal(JSON.parse(rolled.stdout).version, 1);
  });
});
