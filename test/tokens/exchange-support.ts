import type * as oauth from 'oauth4webapi';
import type { TestServer } from '../support/server.ts';
import { clientAssertion, dpopKeys, dpopProof, postForm, type TestAgent } from './support.ts';

export const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const AT_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';

/**
 * An RFC 8693 token exchange by hand (private_key_jwt assertion, DPoP proof, nonce retry), so
 * attack tests can send any parameter. Returns the final response.
 */
export async function exchangeToken(
  server: TestServer,
  agent: TestAgent,
  params: Record<string, string>,
  options: { keys?: oauth.CryptoKeyPair; dpop?: boolean } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const tokenUrl = `${server.url}/token`;
  const keys = options.keys ?? (await dpopKeys());
  const send = async (nonce: string | undefined) =>
    postForm(
      tokenUrl,
      {
        grant_type: EXCHANGE,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await clientAssertion(agent, server.url),
        ...params,
      },
      options.dpop === false
        ? {}
        : { dpop: await dpopProof(keys, { htm: 'POST', htu: tokenUrl, ...(nonce ? { nonce } : {}) }) },
    );
  let res = await send(undefined);
  if (res.status === 400 && res.body?.error === 'use_dpop_nonce') {
    res = await send(res.headers.get('dpop-nonce') ?? undefined);
  }
  return res;
}
