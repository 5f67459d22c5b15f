import type { Kysely } from 'kysely';

/**
 * A named lock shared by every node on one database: a row in `vault_leases` with a holder and an
 * expiry. Taking it is one atomic upsert that only overwrites an expired lease, so at most one
 * holder has it at a time; a holder that dies loses it when it expires.
 */
export async function tryAcquireLease(
  db: Kysely<any>,
  name: string,
  holder: string,
  now: number,
  ttlMs: number,
): Promise<boolean> {
  const expiresAt = now + ttlMs;
  await db
    .insertInto('vault_leases')
    .values({ name, holder, expires_at: expiresAt })
    .onConflict((oc) =>
      oc
        .column('name')
        .doUpdateSet({ holder, expires_at: expiresAt })
        .where('vault_leases.expires_at', '<=', now),
    )
    .execute();
  const row = await db
    .selectFrom('vault_leases')
    .select('holder')
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.holder === holder;
}

/** Gives a lease back, if this holder still has it. */
export async function releaseLease(db: Kysely<any>, name: string, holder: string): Promise<void> {
  await db.deleteFrom('vault_leases').where('name', '=', name).where('holder', '=', holder).execute();
}
