import type { Kysely } from 'kysely';
import type { Keyring } from '../core/index.ts';

/** Every sealed column the vault owns, with the columns that identify its row. */
const SEALED_COLUMNS = [
  { table: 'vault_secret_versions', keys: ['secret_id', 'version'] },
  { table: 'vault_token_cache', keys: ['account_id'] },
  { table: 'vault_pending_connects', keys: ['state_hash'] },
] as const;

/**
 * Re-wraps every sealed value in the vault's tables under the keyring's current master key. Only
 * data keys are re-wrapped; ciphertexts and their contexts are unchanged, so every value still
 * opens in its own row. Pass a transaction (`store.transaction`) so the rotation is all or
 * nothing; `warden keys rotate-master` runs it together with the other parts' re-wraps.
 * @returns how many values were examined and how many were re-wrapped.
 * @throws SealError if a value is sealed under a key the keyring does not hold (nothing is written
 *   when run in a transaction).
 */
export async function rewrapVaultSecrets(
  tx: Kysely<any>,
  keyring: Keyring,
): Promise<{ examined: number; rewrapped: number }> {
  let examined = 0;
  let rewrapped = 0;
  for (const { table, keys } of SEALED_COLUMNS) {
    const rows = await tx
      .selectFrom(table)
      .select([...keys, 'sealed'])
      .execute();
    for (const row of rows) {
      examined++;
      const sealed = row.sealed as string;
      const next = keyring.rewrap(sealed);
      if (next === sealed) continue;
      let q = tx.updateTable(table).set({ sealed: next });
      for (const key of keys) q = q.where(key, '=', row[key]);
      // Only if unchanged since read: a concurrent refresh wrote its value under the current key.
      await q.where('sealed', '=', sealed).execute();
      rewrapped++;
    }
  }
  return { examined, rewrapped };
}
