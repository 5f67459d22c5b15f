import type { Kysely } from 'kysely';
import { InternalError, type Keyring } from '../core/index.ts';

/** The context a secret version is sealed for: it opens only in its own row. */
export function secretContext(secretId: string, version: number): string {
  return `vault.secret:${secretId}:${version}`;
}

/**
 * Writes a new version of a secret (version 1 when it is new) and returns its number. Older
 * versions stay in the table; only the version the owning row points at is ever used.
 */
export async function writeSecretVersion(
  tx: Kysely<any>,
  keyring: Keyring,
  secretId: string,
  plaintext: string,
  now: number,
): Promise<number> {
  const row = await tx
    .selectFrom('vault_secret_versions')
    .select((eb) => eb.fn.max('version').as('max'))
    .where('secret_id', '=', secretId)
    .executeTakeFirst();
  const version = Number(row?.max ?? 0) + 1;
  await tx
    .insertInto('vault_secret_versions')
    .values({
      secret_id: secretId,
      version,
      sealed: keyring.seal(plaintext, secretContext(secretId, version)),
      created_at: now,
    })
    .execute();
  return version;
}

/** Opens one version of a secret. @throws SealError when the stored value was altered or moved. */
export async function readSecretVersion(
  db: Kysely<any>,
  keyring: Keyring,
  secretId: string,
  version: number,
): Promise<string> {
  const row = await db
    .selectFrom('vault_secret_versions')
    .select('sealed')
    .where('secret_id', '=', secretId)
    .where('version', '=', version)
    .executeTakeFirst();
  if (!row) throw new InternalError(`secret ${secretId} has no version ${version}`);
  return keyring.openText(row.sealed as string, secretContext(secretId, version));
}

/** Deletes every version of a secret. */
export async function deleteSecret(tx: Kysely<any>, secretId: string): Promise<void> {
  await tx.deleteFrom('vault_secret_versions').where('secret_id', '=', secretId).execute();
}
