import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { type Browser, type BrowserContext, chromium } from 'playwright-core';
import {
  AGENT_CALLBACK,
  agentConfig,
  authorizationRequest,
  CONSOLE_CALLBACK,
  consoleConfig,
  createPerson,
  registerDelegatingAgent,
} from './code-flow-support.ts';
import { GATEWAY, startTokenServer } from './support.ts';

const insecure = { [oauth.allowInsecureRequests]: true } as const;
const server = await startTokenServer('sqlite');
const carol = await createPerson(server, 'carol');
const owner = await createPerson(server, 'olga');
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

/**
 * A browser context whose requests to the client's callback are answered by the test (nothing
 * listens there): the promise resolves with the URL the authorization server sent the browser to.
 */
async function withCallback(prefix: string): Promise<{ context: BrowserContext; callback: Promise<URL> }> {
  const context = await browser.newContext();
  let resolve!: (u: URL) => void;
  const callback = new Promise<URL>((r) => {
    resolve = r;
  });
  await context.route(`${prefix}**`, async (route) => {
    resolve(new URL(route.request().url()));
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'signed in' });
  });
  return { context, callback };
}

describe('sign-in and consent pages in a real headless Chromium', () => {
  it('signs a person in for the console: openid-client + PKCE S256 → a user JWT oauth4webapi accepts', async () => {
    const config = await consoleConfig(server);
    const { url, verifier, state } = await authorizationRequest(config, {
      redirect_uri: CONSOLE_CALLBACK,
      scope: 'openid profile email',
      resource: server.url,
    });
    const { context, callback } = await withCallback(CONSOLE_CALLBACK);
    try {
      const page = await context.newPage();
      const first = await page.goto(url.href);
      assert.equal(first?.status(), 200);
      const csp = first?.headers()['content-security-policy'] ?? '';
      assert.ok(csp.includes("default-src 'none'") && !csp.includes('script-src'), csp);
      assert.equal(await page.locator('script').count(), 0);
      assert.match((await page.textContent('#client-name')) ?? '', /Warden console/);
      await page.fill('#username', 'carol');
      await page.fill('#password', 'not-her-password');
      await page.click('#sign-in');
      assert.match((await page.textContent('[role=alert]')) ?? '', /Wrong username or password/);
      await page.fill('#username', 'carol');
      await page.fill('#password', carol.password);
      await page.click('#sign-in');
      const landed = await callback;
      const csrfCookie = (await context.cookies()).find((c) => c.name === 'warden_interaction_csrf');
      assert.equal(csrfCookie, undefined, 'the CSRF cookie is cleared after sign-in');

      const tokens = await client.authorizationCodeGrant(config, landed, {
        pkceCodeVerifier: verifier,
        expectedState: state,
      });
      assert.equal(tokens.token_type.toLowerCase(), 'bearer');
      const issuer = new URL(server.url);
      const as = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
      );
      const claims = await oauth.validateJwtAccessToken(
        as,
        new Request(`${server.url}/v1/agents`, {
          headers: { authorization: `Bearer ${tokens.access_token}` },
        }),
        server.url,
        insecure,
      );
      assert.equal(claims.sub, carol.id);
      assert.equal(claims.client_id, 'warden-console');
      const id = tokens.claims();
      assert.equal(id?.sub, carol.id);
      assert.equal(id?.preferred_username, 'carol');
      assert.equal(id?.email, 'carol@example.test');
    } finally {
      await context.close();
    }
  });

  it('shows who asks on the consent screen and issues a DPoP-bound delegated token for the duration chosen', async () => {
    const agent = await registerDelegatingAgent(server, { allowed: true, requireDpop: true });
    await server.call('PATCH', `/v1/agents/${agent.id}`, { owner: owner.id });
    const config = await agentConfig(server, agent);
    const { url, verifier, state } = await authorizationRequest(config, {
      redirect_uri: AGENT_CALLBACK,
      scope: 'tickets.read tickets.write admin.everything',
      resource: GATEWAY,
      purpose: 'close <b>stale</b> tickets',
    });
    const { context, callback } = await withCallback(AGENT_CALLBACK);
    try {
      const page = await context.newPage();
      await page.goto(url.href);
      await page.fill('#username', 'carol');
      await page.fill('#password', carol.password);
      await page.click('#sign-in');
      await page.waitForSelector('#approve', { timeout: 10_000 }).catch(async (e) => {
        throw e;
      });
      assert.equal(await page.textContent('#agent-name'), agent.name);
      assert.equal(await page.textContent('#agent-owner'), 'Olga Example');
      assert.equal(await page.textContent('#agent-provider'), 'Acme Agents');
      assert.match((await page.textContent('#agent-template')) ?? '', /^deleg-tpl-\d+ v1$/);
      assert.equal(await page.textContent('#purpose'), 'close <b>stale</b> tickets', 'shown as text');
      assert.equal(await page.textContent('#resource'), GATEWAY);
      const offered = await page
        .locator('input[name=scope]')
        .evaluateAll((els) => els.map((e) => (e as unknown as { value: string }).value));
      assert.deepEqual(offered, ['tickets.read', 'tickets.write']);
      assert.match((await page.textContent('#refused-scopes')) ?? '', /admin\.everything/);
      assert.equal(await page.locator('script').count(), 0);
      // Grant less than asked, for a day.
      await page.uncheck('#scope-1');
      await page.selectOption('#duration', '86400');
      const before = Date.now();
      await page.click('#approve');
      const landed = await callback;
      // The browser lands on the callback before the test navigates again (else that navigation
      // interrupts this one).
      await page.waitForURL(`${AGENT_CALLBACK}**`);

      const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
      const tokens = await client.authorizationCodeGrant(
        config,
        landed,
        { pkceCodeVerifier: verifier, expectedState: state },
        undefined,
        { DPoP },
      );
      assert.equal(tokens.token_type.toLowerCase(), 'dpop');
      const claims = decodeJwt(tokens.access_token) as Record<string, any>;
      assert.equal(claims.sub, carol.id);
      assert.deepEqual(claims.act, { sub: agent.id });
      assert.equal(claims.scope, 'tickets.read');
      assert.ok(claims.cnf?.jkt);
      const grant = await server.warden.tokens.grants.find(claims.grant_id);
      assert.equal(grant?.source, 'consent');
      assert.equal(grant?.purpose, 'close <b>stale</b> tickets');
      assert.deepEqual(grant?.scopes, ['tickets.read']);
      assert.ok(Math.abs((grant?.expiresAt ?? 0) - (before + 86_400_000)) < 60_000);

      // Signed in already: the next request goes straight to a fresh consent.
      const again = await authorizationRequest(config, {
        redirect_uri: AGENT_CALLBACK,
        scope: 'tickets.write',
        resource: GATEWAY,
        purpose: 'one more thing',
      });
      await page.goto(again.url.href);
      await page.waitForSelector('#approve');
      assert.equal(await page.locator('#password').count(), 0);
      assert.equal(await page.textContent('#signed-in-as'), 'carol');
      await page.click('#deny');
    } finally {
      await context.close();
    }
  });
});
