import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type Keyring, NotFoundError } from '../core/index.ts';
import { type NoteVerifier, noteVerifier, parseNoteVerifier, rawEd25519 } from './signed-note.ts';

/** The note key name the ledger signs checkpoints under. */
export const LEDGER_KEY_NAME = 'warden.audit';

/** The ledger's Ed25519 signing key. */
export interface LedgerKey {
  verifier: NoteVerifier;
  privateKey: KeyObject;
}

const sealContext = (purpose: string) => `audit.ledger_key:${purpose}`;

/**
 * Loads the ledger signing key, generating it on first start. The private key is stored sealed
 * under the master keyring (bound to its row), the public key in the clear. Nodes starting at the
 * same time on one database converge on one key: the first insert wins, the others read it.
 */
export async function loadOrCreateLedgerKey(
  db: Kysely<any>,
  keyring: Keyring,
  now: number,
  purpose = 'ledger',
): Promise<LedgerKey> {
  let row = await db.selectFrom('audit_keys').selectAll().where('purpose', '=', purpose).executeTakeFirst();
  if (!row) {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    try {
      await db
        .insertInto('audit_keys')
        .values({
          purpose,
          name: LEDGER_KEY_NAME,
          public_key: noteVerifier(LEDGER_KEY_NAME, publicKey).text,
          private_key_sealed: keyring.seal(der, sealContext(purpose)),
          created_at: now,
        })
        .onConflict((oc) => oc.column('purpose').doNothing())
        .execute();
    } finally {
      der.fill(0);
    }
    row = await db
      .selectFrom('audit_keys')
      .selectAll()
      .where('purpose', '=', purpose)
      .executeTakeFirstOrThrow();
  }
  const verifier = parseNoteVerifier(row.public_key as string);
  const der = keyring.open(row.private_key_sealed as string, sealContext(purpose));
  try {
    const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    if (!rawEd25519(createPublicKey(privateKey)).equals(rawEd25519(verifier.publicKey))) {
      throw new Error('the stored ledger public key does not match its private key');
    }
    return { verifier, privateKey };
  } finally {
    der.fill(0);
  }
}

/**
 * The ledger public key as stored (a C2SP verifier key). For display and the public-key API only:
 * an offline verifier must get the key from a trusted copy, not from the database it checks.
 */
export async function storedLedgerPublicKey(db: Kysely<any>, purpose = 'ledger'): Promise<string> {
  const row = await db
    .selectFrom('audit_keys')
    .select('public_key')
    .where('purpose', '=', purpose)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('the ledger has no signing key yet', { code: 'ERR_AUDIT_NO_KEY' });
  return row.public_key as string;
}

/** Re-wraps the sealed ledger private key(s) under the keyring's current master key. */
export async function rewrapAuditKeys(db: Kysely<any>, keyring: Keyring): Promise<number> {
  const rows = await db.selectFrom('audit_keys').select(['purpose', 'private_key_sealed']).execute();
  let n = 0;
  for (const r of rows) {
    const rewrapped = keyring.rewrap(r.private_key_sealed as string);
    if (rewrapped === r.private_key_sealed) continue;
    await db
      .updateTable('audit_keys')
      .set({ private_key_sealed: rewrapped })
      .where('purpose', '=', r.purpose as string)
      .execute();
    n++;
  }
  return n;
}
