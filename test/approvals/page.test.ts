import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { startTestServer } from '../support/server.ts';
import { seedWorld } from './harness.ts';

const server = await startTestServer('sqlite');
const w = await seedWorld(server.warden.identity, server.warden.approvals);
const browser: Browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
after(() => browser.close());

const XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
let n = 0;
const payment = () => ({
  agent_id: w.agentId,
  user_id: w.alice.id,
  intent: 'pay the <b>supplier</b>',
  tool: 'payments.send',
  arguments: { amount: 1200, memo: XSS, ref: `R${++n}` },
  binding_message: `Pay 1200 EUR (${n})`,
});

async function signIn(username: string, password: string) {
  const context = await browser.newContext();
  const page = await context.newPage();
  return { context, page, username, password };
}

describe('approval page in a real headless Chromium', () => {
  it('signs in, shows the call escaped, approves; the grant becomes consumable once', async () => {
    const { request } = await server.warden.approvals.request(payment());
    const { context, page } = await signIn('bob', 'bob-password-123');
    try {
      const first = await page.goto(`${server.url}/approvals/${request.id}`);
      assert.equal(first?.status(), 200);
      assert.equal(first?.headers()['content-security-policy']?.includes("default-src 'none'"), true);
      await page.fill('#username', 'bob');
      await page.fill('#password', 'wrong-password-123');
      await page.click('#sign-in');
      assert.match((await page.textContent('[role=alert]')) ?? '', /Wrong username or password/);
      await page.fill('#username', 'bob');
      await page.fill('#password', 'bob-password-123');
      await page.click('#sign-in');
      await page.waitForSelector('#arguments');
      assert.equal(new URL(page.url()).pathname, `/approvals/${request.id}`);

      assert.equal(await page.textContent('#binding-message'), 'Pay 1200 EUR (1)');
      assert.equal(await page.textContent('#tool'), 'payments.send');
      assert.equal(await page.textContent('#intent'), 'pay the <b>supplier</b>');
      assert.equal(await page.textContent('#status'), 'pending');
      assert.match((await page.textContent('#on-behalf-of')) ?? '', /^alice \(/);
      const args = JSON.parse((await page.textContent('#arguments')) ?? '');
      assert.equal(args.memo, XSS, 'the attacker-controlled argument is shown as text');
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned),
        undefined,
      );
      assert.equal(await page.locator('script').count(), 0);
      assert.equal(await page.locator('#arguments img').count(), 0);
      assert.ok((await page.content()).includes('&lt;script&gt;window.__pwned'));
      assert.ok(((await page.textContent('body')) ?? '').includes(request.expires_at));

      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === 'warden_approval_session');
      assert.ok(session);
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, 'Lax');
      assert.equal(session.path, '/approvals');
      assert.ok(session.expires > Date.now() / 1000 && session.expires <= Date.now() / 1000 + 901);

      await page.fill('#comment', 'checked with finance');
      await page.click('#approve');
      await page.waitForSelector('#message');
      assert.equal(await page.textContent('#message'), 'You approved this request.');
      assert.equal(await page.textContent('#status'), 'approved');
      assert.equal(await page.locator('#approve').count(), 0);

      const call = {
        agentId: w.agentId,
        userId: w.alice.id,
        tool: 'payments.send',
        arguments: request.arguments,
      };
      assert.equal((await server.warden.approvals.consume(request.id, call)).status, 'consumed');
      await assert.rejects(server.warden.approvals.consume(request.id, call), /already used/);
      const view = await server.warden.approvals.get(request.id);
      assert.equal(view.decided_by?.id, w.approver.id);
      assert.equal(view.decision_comment, 'checked with finance');

      // Deny from the inbox.
      const { request: other } = await server.warden.approvals.request(payment());
      await page.goto(`${server.url}/approvals`);
      await page.click(`a[href="/approvals/${other.id}"]`);
      await page.click('#deny');
      await page.waitForSelector('#message');
      assert.equal(await page.textContent('#status'), 'denied');
    } finally {
      await context.close();
    }
  });

  it('offers no decision to the agent owner under a group rule (separation of duties)', async () => {
    const { request } = await server.warden.approvals.request(payment());
    const { context, page } = await signIn('olivia', 'olivia-password-123');
    try {
      await page.goto(`${server.url}/approvals/${request.id}`);
      await page.fill('#username', 'olivia');
      await page.fill('#password', 'olivia-password-123');
      await page.click('#sign-in');
      await page.waitForSelector('#arguments');
      assert.equal(await page.locator('#approve').count(), 0);
      assert.match((await page.textContent('body')) ?? '', /separation of duties/);
    } finally {
      await context.close();
    }
  });

  it('refuses a decision without the CSRF token, with a forged one or a tampered session, and decides nothing', async () => {
    const { request } = await server.warden.approvals.request(payment());
    const { context, page } = await signIn('bob', 'bob-password-123');
    try {
      await page.goto(`${server.url}/approvals/${request.id}`);
      await page.fill('#username', 'bob');
      await page.fill('#password', 'bob-password-123');
      await page.click('#sign-in');
      await page.waitForSelector('#approve');
      const cookie = (await context.cookies()).find((c) => c.name === 'warden_approval_session');
      assert.ok(cookie);
      const post = (body: string) =>
        fetch(`${server.url}/approvals/${request.id}/decision`, {
          method: 'POST',
          redirect: 'manual',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            cookie: `warden_approval_session=${cookie.value}`,
          },
          body,
        });
      const none = await post('decision=approve');
      assert.equal(none.status, 403);
      assert.match(await none.text(), /CSRF/);
      const forged = await post('decision=approve&csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      assert.equal(forged.status, 403);
      // A tampered session cookie is no session at all: the sign-in form comes back.
      const tampered = await fetch(`${server.url}/approvals/${request.id}/decision`, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          cookie: `warden_approval_session=${cookie.value.slice(0, -4)}AAAA`,
        },
        body: 'decision=approve&csrf=x',
      });
      assert.equal(tampered.status, 401);
      assert.equal((await server.warden.approvals.get(request.id)).status, 'pending');
      // The real form (with its token) still works.
      await page.click('#approve');
      await page.waitForSelector('#message');
      assert.equal((await server.warden.approvals.get(request.id)).status, 'approved');
    } finally {
      await context.close();
    }
  });
});
