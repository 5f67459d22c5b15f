import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { readEvents } from '../../src/audit/index.ts';
import { ManualClock } from '../../src/core/index.ts';
import { tempDir } from '../support/databases.ts';
import { startTokenServer } from './support.ts';

const run = promisify(execFile);

describe('signing key administration', async () => {
  const server = await startTokenServer('sqlite');

  it('rotates through the admin API, audits it, and refuses non-admins', async () => {
    const before = await server.call('GET', '/v1/oauth/keys');
    assert.equal(before.status, 200);
    assert.equal(before.body.items.length, 1);
    assert.equal(before.body.items[0].active, true);
    assert.equal(JSON.stringify(before.body).includes('"d"'), false, 'no private key material');
    const rotated = await server.call('POST', '/v1/oauth/keys/rotate');
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal(rotated.body.items[0].kid, rotated.body.kid);
    assert.equal(rotated.body.items[1].active, false);
    assert.ok(rotated.body.items[1].publish_until);
    const events = await readEvents(server.warden.store.db, server.warden.nodeId, 0, 1000);
    const event = events.find((e) => e.type === 'token.signing_key_rotated');
    assert.equal(event?.resource?.id, rotated.body.kid);
    assert.equal(event?.actor.type, 'user');
    assert.equal((await server.call('POST', '/v1/oauth/keys/rotate', undefined, null)).status, 401);
  });

  it('rotates and lists from the CLI', async () => {
    const env = {
      ...process.env,
      WARDEN_URL: server.url,
      WARDEN_TOKEN: server.adminToken,
      WARDEN_CLI_CONFIG_DIR: tempDir(),
    };
    const rotated = await run(process.execPath, ['bin/warden.js', 'oauth', 'keys', 'rotate', '--json'], {
      env,
    });
    const { kid } = JSON.parse(rotated.stdout) as { kid: string };
    const listed = await run(process.execPath, ['bin/warden.js', 'oauth', 'keys', 'list'], { env });
    assert.match(listed.stdout, /^KID\s+ALG\s+ACTIVE/);
    assert.ok(listed.stdout.includes(kid));
    const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string }[] };
    assert.equal(jwks.keys[0]?.kid, kid, 'the new key is published first');
  });
});

describe('scheduled signing key rotation', async () => {
  const clock = new ManualClock(Date.now());
  const server = await startTokenServer('sqlite', { WARDEN_TOKENS_KEY_ROTATION_SECONDS: '3600' }, clock);

  it('rotates only once the active key is older than the interval, and audits it', async () => {
    const [first] = server.warden.tokens.publishedKids;
    assert.equal(await server.warden.tokens.rotateKeysIfDue(), undefined);
    clock.advance(3600_000 + 1);
    const kid = await server.warden.tokens.rotateKeysIfDue();
    assert.equal(typeof kid, 'string');
    assert.deepEqual(server.warden.tokens.publishedKids, [kid, first]);
    assert.equal(await server.warden.tokens.rotateKeysIfDue(), undefined, 'not due again');
    const events = await readEvents(server.warden.store.db, server.warden.nodeId, 0, 1000);
    const event = events.find((e) => e.type === 'token.signing_key_rotated');
    assert.equal(event?.action, 'oauth.keys.scheduled_rotation');
    assert.equal(event?.actor.type, 'system');
  });
});
