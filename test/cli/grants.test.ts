import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../support/databases.ts';
import { runWarden } from '../support/process.ts';
import { startTestServer } from '../support/server.ts';
import { registerAgent } from '../tokens/support.ts';

describe('warden grants', () => {
  it('creates, lists and revokes delegation grants, for admins and for the user themself', async () => {
    const s = await startTestServer('sqlite');
    const agent = await registerAgent(s, { scopes: ['tickets.read', 'tickets.write'] });
    const alice = await s.call('POST', '/v1/users', { username: 'alice', roles: ['approver'] });
    const aliceToken = (
      await s.call('POST', '/v1/tokens', { name: 'cli', role: 'approver', user_id: alice.body.id })
    ).body.token as string;
    const dir = tempDir();
    const admin = (args: string[]) =>
      runWarden(args, {
        WARDEN_URL: s.url,
        WARDEN_TOKEN: s.adminToken,
        WARDEN_CLI_CONFIG_DIR: join(dir, 'a'),
      });
    const asAlice = (args: string[]) =>
      runWarden(args, { WARDEN_URL: s.url, WARDEN_TOKEN: aliceToken, WARDEN_CLI_CONFIG_DIR: join(dir, 'b') });

    const created = await admin([
      'grants',
      'create',
      '--user',
      'alice',
      '--agent',
      agent.name,
      '--scope',
      'tickets.read',
      '--scope',
      'tickets.write',
      '--purpose',
      'triage my tickets',
      '--duration',
      '2h',
      '--json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const grant = JSON.parse(created.stdout);
    assert.deepEqual(grant.scopes, ['tickets.read', 'tickets.write']);
    assert.equal(grant.user_id, alice.body.id);
    const hours = (Date.parse(grant.expires_at) - Date.parse(grant.created_at)) / 3_600_000;
    assert.ok(Math.abs(hours - 2) < 0.01);

    const beyond = await admin([
      'grants',
      'create',
      '--user',
      'alice',
      '--agent',
      agent.name,
      '--scope',
      'payroll.write',
      '--purpose',
      'x',
    ]);
    assert.notEqual(beyond.code, 0);
    assert.match(beyond.stderr, /ERR_SCOPE_NOT_ALLOWED/);
    const badDuration = await admin([
      'grants',
      'create',
      '--user',
      'alice',
      '--agent',
      agent.name,
      '--scope',
      'tickets.read',
      '--purpose',
      'x',
      '--duration',
      'soon',
    ]);
    assert.notEqual(badDuration.code, 0);
    assert.match(badDuration.stderr, /--duration/);

    const table = await admin(['grants', 'list', '--user', alice.body.id]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /ID\s+USER_ID\s+AGENT_ID\s+SCOPES/);
    assert.match(table.stdout, new RegExp(`${grant.id}.*tickets\\.read tickets\\.write`));

    const mine = await asAlice(['grants', 'list', '--mine', '--json']);
    assert.equal(mine.code, 0, mine.stderr);
    assert.deepEqual(
      JSON.parse(mine.stdout).items.map((g: { id: string }) => g.id),
      [grant.id],
    );
    assert.notEqual((await asAlice(['grants', 'list'])).code, 0, 'not an admin');

    const revoked = await asAlice(['grants', 'revoke', grant.id, '--mine', '--reason', 'done']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /Revoked 0 access token\(s\)/);
    assert.match(revoked.stdout, /revoke_reason\s+done/);
    const after = await admin(['grants', 'list', '--user', alice.body.id, '--all', '--json']);
    assert.equal(JSON.parse(after.stdout).items[0].active, false);
    const shown = await admin(['grants', 'show', grant.id]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /active\s+false/);
    assert.match(shown.stdout, /purpose\s+triage my tickets/);
    const again = await admin(['grants', 'revoke', grant.id, '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).revoked_tokens, 0);
  });
});
