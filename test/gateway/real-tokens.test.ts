import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { connectThroughGateway } from '../../examples/agent.ts';
import { startTicketsServer } from '../../examples/tickets-server.ts';
import { ScriptedDecider, StaticCredentials, startGatewayNode } from './support.ts';

describe('gateway with Warden-issued tokens', () => {
  it('accepts a DPoP-bound token from the token service, and refuses it on every call once revoked', async () => {
    const upstream = await startTicketsServer();
    after(() => upstream.close());
    const node = await startGatewayNode('sqlite', {
      decider: new ScriptedDecider(),
      credentials: new StaticCredentials({}),
    });
    assert.equal(
      (await node.call('POST', '/v1/gateway/upstreams', { name: 'tickets', url: upstream.url })).status,
      201,
    );
    assert.equal((await node.call('POST', '/v1/gateway/upstreams/tickets/approve')).status, 200);
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const pub = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(pub);
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256' };
    const providerKey = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
    assert.equal(
      (
        await node.call('POST', '/v1/providers', {
          name: 'acme',
          contact: 'sec@acme.test',
          jwks: { keys: [{ ...providerKey, kid: 'p1', alg: 'ES256', use: 'sig' }] },
        })
      ).status,
      201,
    );
    assert.equal(
      (
        await node.call('POST', '/v1/templates', {
          name: 'desk',
          spec: { description: 'desk', allowed_tools: ['tickets.*'], allowed_scopes: ['tickets:read'] },
        })
      ).status,
      201,
    );
    const agent = await node.call('POST', '/v1/agents', {
      name: 'desk-bot',
      provider: 'acme',
      template: 'desk',
      purpose: 'answers tickets',
      jwks: { keys: [{ ...pub, kid, alg: 'ES256', use: 'sig' }] },
    });
    assert.equal(agent.status, 201, JSON.stringify(agent.body));

    const { client, token } = await connectThroughGateway(
      node.url,
      { id: agent.body.id, privateJwk },
      { scope: 'tickets:read' },
    );
    after(() => client.close());
    const r = await client.callTool({ name: 'tickets.search', arguments: { query: 'printer' } });
    assert.match((r.content as { text: string }[])[0]?.text ?? '', /Printer on fire/);
    const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
    assert.equal(claims.aud, node.mcpUrl);
    assert.ok(claims.cnf?.jkt, 'the token is DPoP-bound');

    // RFC 7009 revocation by the agent itself (private_key_jwt).
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(agent.body.id)
      .setSubject(agent.body.id)
      .setAudience(node.url)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(await importJWK(privateJwk, 'ES256'));
    const revoked = await fetch(`${node.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }).toString(),
    });
    assert.equal(revoked.status, 200, await revoked.text());
    const t0 = performance.now();
    for (;;) {
      try {
        await client.callTool({ name: 'tickets.search', arguments: { query: 'printer' } });
      } catch (e) {
        assert.match((e as Error).message, /401|revoked/);
        break;
      }
      assert.ok(performance.now() - t0 < 1000, 'the revoked token is refused within a second');
      await new Promise((res) => setTimeout(res, 20));
    }
    const refusals = await node.warden.store.db
      .selectFrom('audit_events')
      .select('body')
      .where('type', '=', 'auth.request_refused')
      .execute();
    assert.ok(refusals.some((e) => JSON.parse(e.body as string).error_code === 'ERR_TOKEN_REVOKED'));
  });
});
