import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as client from 'openid-client';
import { startTestServer } from '../support/server.ts';
import { formField, JarBrowser } from './browser-jar.ts';
import {
  AGENT_CALLBACK,
  agentConfig,
  authorizationRequest,
  createPerson,
  registerDelegatingAgent,
} from './code-flow-support.ts';
import { freePort, GATEWAY, startTokenServer } from './support.ts';

describe('authorization_code across two nodes on one PostgreSQL database', () => {
  it('continues a flow on another node, exchanges the code there once, and refuses its replay on the first', async () => {
    const nodeA = await startTokenServer('postgres');
    const nodeB = await startTestServer('postgres', {
      databaseUrl: nodeA.warden.config.databaseUrl as string,
      dataDir: nodeA.dataDir,
      env: {
        WARDEN_NODE_ID: 'node-b',
        WARDEN_PORT: String(await freePort()),
        WARDEN_PUBLIC_URL: nodeA.url,
        WARDEN_TOKENS_RESOURCES: GATEWAY,
      },
    });
    const frank = await createPerson(nodeA, 'frank');
    const agent = await registerDelegatingAgent(nodeA, { allowed: true });
    const onA = await agentConfig(nodeA, agent);
    // Node B is behind the same issuer name; the test reaches it on its own port.
    const toB = (url: string) => url.replace(nodeA.url, nodeB.url);

    const req = await authorizationRequest(onA, {
      redirect_uri: AGENT_CALLBACK,
      scope: 'tickets.read',
      resource: GATEWAY,
      purpose: 'across nodes',
    });
    const browser = new JarBrowser(AGENT_CALLBACK);
    const login = await browser.go(req.url.href); // node A starts the interaction
    assert.equal(login.status, 200);
    const afterLogin = await browser.post(toB(`${login.url}/login`), [
      ['csrf', formField(login.body, 'csrf')],
      ['username', 'frank'],
      ['password', frank.password],
    ]); // node B signs the person in; the redirects lead back to the issuer (node A)
    assert.equal(afterLogin.status, 200, afterLogin.body);
    const landing = await browser.post(toB(`${afterLogin.url}/consent`), [
      ['csrf', formField(afterLogin.body, 'csrf')],
      ['decision', 'approve'],
      ['scope', 'tickets.read'],
      ['duration', '3600'],
    ]);
    assert.ok(landing.url.startsWith(AGENT_CALLBACK), landing.body);

    // The agent reaches node B's token endpoint for the exchange.
    const bConfig = new client.Configuration(
      {
        issuer: nodeA.url,
        token_endpoint: toB(String(onA.serverMetadata().token_endpoint)),
        authorization_response_iss_parameter_supported: true,
      },
      agent.id,
      undefined,
      client.PrivateKeyJwt({
        key: agent.privateKey.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']),
        kid: agent.kid,
      }),
    );
    client.allowInsecureRequests(bConfig);
    const tokens = await client.authorizationCodeGrant(bConfig, new URL(landing.url), {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
    });
    const claims = decodeJwt(tokens.access_token) as Record<string, any>;
    assert.deepEqual(claims.act, { sub: agent.id });
    await assert.rejects(
      client.authorizationCodeGrant(onA, new URL(landing.url), {
        pkceCodeVerifier: req.verifier,
        expectedState: req.state,
      }),
      (e: { error?: string }) => e.error === 'invalid_grant',
    );
    assert.equal((await nodeA.warden.tokens.introspect(tokens.access_token)).active, false);
    assert.equal((await nodeB.warden.tokens.introspect(tokens.access_token)).active, false);
  });
});
