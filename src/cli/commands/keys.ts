import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { rewrapAuditKeys } from '../../audit/index.ts';
import { generateMasterKey, loadConfig, masterKeyFile, writeMasterKeyFile } from '../../core/index.ts';
import { rewrapExportSecrets } from '../../export/index.ts';
import { createWarden, rewrapCoreSecrets } from '../../http/index.ts';
import { rewrapTokenKeys } from '../../tokens/index.ts';
import { rewrapVaultSecrets } from '../../vault/index.ts';
import { CliError } from '../cli-error.ts';
import { print } from '../output.ts';

/**
 * `warden keys rotate-master`: re-wraps every data key under a new master key. With a key file,
 * a new key is generated and written first (old key kept until every value is re-wrapped, so a
 * crash midway loses nothing). With WARDEN_MASTER_KEY, set the new key there and the old one in
 * WARDEN_MASTER_KEY_PREVIOUS, run this, then drop the previous key.
 */
export function keysCommand(program: Command): void {
  const keys = program.command('keys').description('master key management');
  keys
    .command('rotate-master')
    .description(
      're-wrap every data key under a new master key (run on one node; others restart with the new key)',
    )
    .option('--json')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      let file: string | undefined;
      let oldLines: string[] = [];
      if (!config.masterKey) {
        file = masterKeyFile(config.dataDir);
        oldLines = readFileSync(file, 'utf8')
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith('#'));
        const { text } = generateMasterKey();
        writeMasterKeyFile(file, [text, ...oldLines]);
      } else if (config.masterKeyPrevious.length === 0) {
        throw new CliError(
          'set WARDEN_MASTER_KEY to the new key and WARDEN_MASTER_KEY_PREVIOUS to the old one',
        );
      }
      const warden = await createWarden(config);
      try {
        const core =
          (await rewrapCoreSecrets(warden.store, warden.keyring)) +
          (await rewrapTokenKeys(warden.store, warden.keyring));
        // The vault's sealed values (secret versions, cached tokens, pending connects), in one transaction.
        const vault = await warden.store.transaction((tx) => rewrapVaultSecrets(tx, warden.keyring));
        // The ledger's sealed Ed25519 signing key.
        const audit = await rewrapAuditKeys(warden.store.db, warden.keyring);
        const exported = await rewrapExportSecrets(warden.store.db, warden.keyring);
        const channels = await warden.approvals.channels.rewrap();
        const rewrapped = core + vault.rewrapped + audit + exported + channels;
        await warden.auditor.record({
          type: 'keys.master_rotated',
          actor: { type: 'system', id: 'cli' },
          action: 'keys.rotate-master',
          outcome: 'success',
          details: { master_kid: warden.keyring.current.kid, rewrapped },
        });
        if (file) writeMasterKeyFile(file, [readFileSync(file, 'utf8').split('\n')[0] as string]);
        const result = { master_kid: warden.keyring.current.kid, rewrapped, key_file: file ?? null };
        if (opts.json) print(result, opts);
        else
          process.stdout.write(
            `Re-wrapped ${rewrapped} sealed value(s) under master key ${result.master_kid}.\n${file ? `The new key is in ${file}; the old key was removed.\n` : 'Remove WARDEN_MASTER_KEY_PREVIOUS from every node now.\n'}`,
          );
      } finally {
        await warden.close();
      }
    });
}
