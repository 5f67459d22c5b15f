import { randomBytes } from 'node:crypto';
import type { Clock, Keyring } from '../core/index.ts';
import type { Store } from '../store/index.ts';

/**
 * Returns the named 32-byte server secret shared by every node (e.g. the DPoP nonce secret),
 * creating it on first use. Stored sealed; the first node to insert wins, the others read its value.
 */
export async function sharedSecret(
  store: Store,
  keyring: Keyring,
  clock: Clock,
  name: string,
): Promise<Buffer> {
  const aad = `tokens.secret:${name}`;
  await store.db
    .insertInto('oauth_secrets')
    .values({ name, sealed: keyring.seal(randomBytes(32), aad), created_at: clock.now() })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = (await store.db
    .selectFrom('oauth_secrets')
    .select('sealed')
    .where('name', '=', name)
    .executeTakeFirstOrThrow()) as { sealed: string };
  return keyring.open(row.sealed, aad);
}
