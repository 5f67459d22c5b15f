import { z } from 'zod';
import { actorOf } from '../../identity/index.ts';
import { type AnyRoute, defineRoute } from '../route.ts';
import type { Warden } from '../warden.ts';

const keySchema = z.object({
  kid: z.string(),
  alg: z.string(),
  created_at: z.string(),
  superseded_at: z.string().nullable(),
  publish_until: z.string().nullable(),
  active: z.boolean(),
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Admin API of the authorization server: its signing keys. */
export function oauthAdminRoutes(warden: Warden): AnyRoute[] {
  const list = async () => ({
    items: (await warden.tokens.keys.list()).map((k) => ({
      kid: k.kid,
      alg: k.alg,
      created_at: new Date(k.created_at).toISOString(),
      superseded_at: iso(k.superseded_at),
      publish_until: iso(k.publish_until),
      active: k.superseded_at === null,
    })),
  });
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/oauth/keys',
      tag: 'oauth',
      summary: 'List the access token signing keys (public facts only)',
      auth: ['admin', 'security_analyst'],
      response: { status: 200, schema: z.object({ items: z.array(keySchema) }) },
      handler: list,
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/oauth/keys/rotate',
      tag: 'oauth',
      summary: 'Make a new signing key active now; old keys stay published until their tokens expire',
      auth: ['admin'],
      response: { status: 200, schema: z.object({ kid: z.string(), items: z.array(keySchema) }) },
      handler: async ({ caller }) => {
        const kid = await warden.tokens.rotateKeys(actorOf(caller), caller.request);
        return { kid, ...(await list()) };
      },
    }),
  ];
}
