import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as client from 'openid-client';
import pg from 'pg';
import { PG_ADMIN_URL, tempDir } from '../support/databases.ts';
import { startTestServer } from '../support/server.ts';
import { formField, JarBrowser } from './browser-jar.ts';
import {
  AGENT_CALLBACK,
  agentConfig,
  authorizationRequest,
  createPerson,
  registerDelegatingAgent,
} from './code-flow-support.ts';
import { freePort, GATEWAY } from './support.ts';

describe('authorization_code across two nodes on one PostgreSQL database', () => {
  it('continues a flow on another node, exchanges the code there once, and refuses its replay on the first', async () => {
    // The database is created here and its drop registered last: hooks run in order, and a drop
    // (WITH FORCE) before both nodes are closed would cut their connections from under them.
    const name = `warden_test_${process.pid}_nodes_${Math.random().toString(36).slice(2, 8)}`;
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const databaseUrl = Object.assign(new URL(PG_ADMIN_URL), { pathname: `/${name}` }).toString();
    const dataDir = tempDir();
    const portA = await freePort();
    const nodeA = await startTestServer('postgres', {
      databaseUrl,
      dataDir,
      env: {
        WARDEN_PORT: String(portA),
        WARDEN_PUBLIC_URL: `http://127.0.0.1:${portA}`,
        WARDEN_TOKENS_RESOURCES: GATEWAY,
      },
    });
    const nodeB = await startTestServer('postgres', {
      databaseUrl,
      dataDir,
      env: {
        WARDEN_NODE_ID: 'node-b',
        WARDEN_PORT: String(await freePort()),
        WARDEN_PUBLIC_URL: nodeA.url,
        WARDEN_TOKENS_RESOURCES: GATEWAY,
      },
    });
    after(async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
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
