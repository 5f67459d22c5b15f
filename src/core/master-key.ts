import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WardenConfig } from './config.ts';
import { generateMasterKey, Keyring, parseMasterKey } from './envelope.ts';
import { ConfigError } from './errors.ts';

/** Where the master keyring came from. */
export type MasterKeySource = 'env' | 'file' | 'generated';

export interface LoadedKeyring {
  keyring: Keyring;
  source: MasterKeySource;
  /** The key file, when the key lives in one. */
  file?: string;
}

/** The path of the master key file in a data directory. */
export function masterKeyFile(dataDir: string): string {
  return join(dataDir, 'master.key');
}

/**
 * Writes a keyring file: one key per line, current first, mode 0600. Written to a temporary name
 * and renamed, so a crash never leaves a half-written key file.
 */
export function writeMasterKeyFile(file: string, keys: string[]): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${keys.join('\n')}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/**
 * Loads the master keyring: from `WARDEN_MASTER_KEY` (+ `WARDEN_MASTER_KEY_PREVIOUS`) when set,
 * else from `<dataDir>/master.key`, which is created with a new random key on first start.
 * @throws ConfigError when a key is malformed or the key file is readable by others.
 */
export function loadKeyring(config: WardenConfig): LoadedKeyring {
  if (config.masterKey) {
    const current = parseMasterKey(config.masterKey, 'masterKey (WARDEN_MASTER_KEY)');
    const previous = config.masterKeyPrevious.map((k, i) =>
      parseMasterKey(k, `masterKeyPrevious[${i}] (WARDEN_MASTER_KEY_PREVIOUS)`),
    );
    return { keyring: new Keyring(current, previous), source: 'env' };
  }
  const file = masterKeyFile(config.dataDir);
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    const { text } = generateMasterKey();
    writeMasterKeyFile(file, [text]);
    return { keyring: new Keyring(parseMasterKey(text, file)), source: 'generated', file };
  }
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new ConfigError(
      `${file}: master key file is accessible to other users (mode ${mode.toString(8)}); run chmod 600 on it`,
    );
  }
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (lines.length === 0) throw new ConfigError(`${file}: master key file is empty`);
  const [first, ...rest] = lines.map((l, i) => parseMasterKey(l, `${file} line ${i + 1}`));
  return { keyring: new Keyring(first as NonNullable<typeof first>, rest), source: 'file', file };
}
