import type { Kysely } from 'kysely';

/** Reads a value from the store's `meta` table. */
export async function getMeta(db: Kysely<any>, key: string): Promise<string | undefined> {
  const row = await db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
  return row?.value as string | undefined;
}

/** Writes a value to the store's `meta` table (insert or replace). */
export async function setMeta(db: Kysely<any>, key: string, value: string, now = Date.now()): Promise<void> {
  await db
    .insertInto('meta')
    .values({ key, value, updated_at: now })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: now }))
    .execute();
}
