import { open, readdir, stat } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import type { createEngine } from '@secretlint/node';
import { InvalidRequestError } from '../core/index.ts';

/** One hard-coded credential found by {@link scanForSecrets}. Never carries the secret itself. */
export interface ScanFinding {
  /** Path relative to the scanned root (the file name itself when a file was scanned). */
  file: string;
  line: number;
  column: number;
  /** The secretlint rule that matched, e.g. `@secretlint/secretlint-rule-github`. */
  rule: string;
  /** The rule's message id, e.g. `GITHUB_TOKEN`. */
  messageId: string;
  /** secretlint's message, with the secret masked. */
  message: string;
  /** A vault name suggested for the secret. */
  suggestedName: string;
  /** The command that stores the secret in the vault instead (value from a file, never argv). */
  command: string;
}

export interface ScanResult {
  root: string;
  filesScanned: number;
  findings: ScanFinding[];
}

export interface ScanOptions {
  /** Directory names never descended into (in addition to `.git`, `node_modules`, `.tools`). */
  excludeDirs?: string[];
  /** Files larger than this are skipped (default 1 MiB). */
  maxFileBytes?: number;
}

const DEFAULT_EXCLUDES = ['.git', 'node_modules', '.tools', '.hg', '.svn'];
const BATCH = 200;

type Engine = Awaited<ReturnType<typeof createEngine>>;
let enginePromise: Promise<Engine> | undefined;

function engine(): Promise<Engine> {
  // Loaded on first use: the engine and its rules take about half a second to import.
  enginePromise ??= import('@secretlint/node').then(({ createEngine }) =>
    createEngine({
      color: false,
      formatter: 'json',
      // secretlint masks the matched values in its messages; the scan must never print a secret.
      maskSecrets: true,
      configFileJSON: { rules: [{ id: '@secretlint/secretlint-rule-preset-recommend' }] },
    }),
  );
  return enginePromise;
}

async function isText(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(8192);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return !buffer.subarray(0, bytesRead).includes(0);
  } finally {
    await handle.close();
  }
}

async function collect(root: string, options: Required<ScanOptions>): Promise<string[]> {
  const excluded = new Set([...DEFAULT_EXCLUDES, ...options.excludeDirs]);
  const files: string[] = [];
  const visit = async (path: string): Promise<void> => {
    const info = await stat(path);
    if (info.isDirectory()) {
      const entries = await readdir(path, { withFileTypes: true });
      entries.sort((a, b) => a.name.localeCompare(b.name));
      for (const entry of entries) {
        if (entry.isSymbolicLink()) continue;
        if (entry.isDirectory() && excluded.has(entry.name)) continue;
        if (entry.isDirectory() || entry.isFile()) await visit(join(path, entry.name));
      }
    } else if (info.isFile() && info.size > 0 && info.size <= options.maxFileBytes && (await isText(path))) {
      files.push(path);
    }
  };
  await visit(root);
  return files;
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
}

function shellQuote(text: string): string {
  return /^[A-Za-z0-9._/-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

interface SecretlintMessage {
  ruleId: string;
  messageId: string;
  message: string;
  loc: { start: { line: number; column: number } };
}

/**
 * Finds hard-coded credentials under `path` (a file or a directory) with secretlint's engine and
 * its recommended rule preset, and says, for each, the vault command that replaces it.
 * @throws InvalidRequestError when the path does not exist.
 */
export async function scanForSecrets(path: string, options: ScanOptions = {}): Promise<ScanResult> {
  const root = resolve(path);
  const opts: Required<ScanOptions> = {
    excludeDirs: options.excludeDirs ?? [],
    maxFileBytes: options.maxFileBytes ?? 1024 * 1024,
  };
  let rootInfo: Awaited<ReturnType<typeof stat>>;
  try {
    rootInfo = await stat(root);
  } catch {
    throw new InvalidRequestError(`cannot read ${path}`, { code: 'ERR_SCAN_PATH' });
  }
  const files = await collect(root, opts);
  const base = rootInfo.isDirectory() ? root : resolve(root, '..');
  const findings: ScanFinding[] = [];
  const lint = await engine();
  for (let i = 0; i < files.length; i += BATCH) {
    const { output } = await lint.executeOnFiles({ filePathList: files.slice(i, i + BATCH) });
    // `sourceContent` in secretlint's JSON holds the file itself; only the messages are kept.
    const results = JSON.parse(output) as { filePath: string; messages: SecretlintMessage[] }[];
    for (const result of results) {
      const file = relative(base, result.filePath) || basename(result.filePath);
      for (const m of result.messages) {
        const kind = slug(m.ruleId.replace(/^@secretlint\/secretlint-rule-/, '')) || 'secret';
        const suggestedName = `${kind}-${slug(basename(file))}`.slice(0, 100);
        findings.push({
          file,
          line: m.loc.start.line,
          column: m.loc.start.column + 1,
          rule: m.ruleId,
          messageId: m.messageId,
          message: m.message,
          suggestedName,
          command: `warden secrets put ${suggestedName} --from-file ${shellQuote(`${suggestedName}.secret`)}`,
        });
      }
    }
  }
  findings.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
  return { root, filesScanned: files.length, findings };
}
