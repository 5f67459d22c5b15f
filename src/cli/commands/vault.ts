import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { scanForSecrets } from '../../vault/index.ts';
import { CliError } from '../cli-error.ts';
import { ApiClient } from '../client.ts';
import { print, printRecord } from '../output.ts';
import { readStdin } from '../stdin.ts';

type RuleOpts = { agent?: string[]; template?: string[]; onBehalfOf?: string };

const CONNECTION_COLUMNS = ['name', 'issuer', 'clientId', 'scopes', 'clientSecretVersion', 'id'];
const CREDENTIAL_COLUMNS = ['name', 'kind', 'headerName', 'ownerUserId', 'secretVersion', 'id'];
const ACCOUNT_COLUMNS = ['id', 'userId', 'status', 'scope', 'refreshTokenVersion', 'brokenReason'];

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const ruleOptions = (c: Command) =>
  c
    .option('--agent <id>', 'an agent allowed to use it (repeatable)', collect)
    .option('--template <id>', 'an agent template whose agents may use it (repeatable)', collect)
    .option('--on-behalf-of <who>', 'self (its owner only), any, or user:<id>', 'self');

function accessRule(opts: RuleOpts): Record<string, unknown> {
  const who = opts.onBehalfOf ?? 'self';
  let onBehalfOf: unknown;
  if (who === 'self' || who === 'any') onBehalfOf = who;
  else if (who.startsWith('user:') && who.length > 5) onBehalfOf = { userId: who.slice(5) };
  else throw new CliError('--on-behalf-of must be self, any or user:<id>');
  return { agents: opts.agent ?? [], templates: opts.template ?? [], onBehalfOf };
}

/**
 * Reads a secret from a file or from stdin, never from argv (argv is visible to every user of the
 * machine and lands in shell history). One trailing line break is dropped.
 */
async function readSecret(file: string | undefined, what: string): Promise<string> {
  let text: string;
  if (file) {
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  } else {
    if (process.stdin.isTTY) throw new CliError(`pipe the ${what} on stdin, or give --from-file`);
    text = await readStdin();
  }
  const value = text.replace(/\r?\n$/, '');
  if (!value) throw new CliError(`the ${what} is empty`);
  return value;
}

/** `warden secrets …`, `warden connections …` and `warden scan PATH`. */
export function vaultCommands(program: Command): void {
  const api = () => ApiClient.fromEnv();

  // ---- secrets (service credentials) ----
  const secrets = program.command('secrets').description('service credentials in the vault (write-only)');
  ruleOptions(
    secrets
      .command('put <name>')
      .description('store a credential, or a new version of it; the value comes from --from-file or stdin')
      .option('--kind <kind>', 'api_key, bearer or basic', 'api_key')
      .option('--header <name>', 'header an api_key is sent in', 'x-api-key')
      .option('--username <name>', 'user name, for basic')
      .option('--owner <userId>', 'the user it belongs to (for --on-behalf-of self)')
      .option('--from-file <file>', 'read the value (the password, for basic) from this file'),
  )
    .option('--json', 'machine-readable output')
    .action(
      async (
        name: string,
        opts: RuleOpts & {
          kind: string;
          header: string;
          username?: string;
          owner?: string;
          fromFile?: string;
          json?: boolean;
        },
      ) => {
        if (!['api_key', 'bearer', 'basic'].includes(opts.kind)) {
          throw new CliError('--kind must be api_key, bearer or basic');
        }
        if (opts.kind === 'basic' && !opts.username) throw new CliError('--username is required for basic');
        const secret = await readSecret(opts.fromFile, opts.kind === 'basic' ? 'password' : 'secret');
        const body: Record<string, unknown> = {
          kind: opts.kind,
          name,
          accessRule: accessRule(opts),
          ...(opts.owner ? { ownerUserId: opts.owner } : {}),
          ...(opts.kind === 'basic'
            ? { username: opts.username, password: secret }
            : { value: secret, ...(opts.kind === 'api_key' ? { headerName: opts.header } : {}) }),
        };
        printRecord(await api().request('POST', '/v1/vault/credentials', body), opts);
      },
    );
  secrets
    .command('list')
    .description('list credentials (metadata only)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { items } = await api().request<{ items: unknown[] }>('GET', '/v1/vault/credentials');
      print(items, opts, CREDENTIAL_COLUMNS);
    });
  secrets
    .command('delete <name>')
    .description('delete a credential and every version of it')
    .action(async (name: string) => {
      await api().request('DELETE', `/v1/vault/credentials/${encodeURIComponent(name)}`);
    });

  // ---- connections ----
  const connections = program
    .command('connections')
    .description('upstream OAuth connections and connected accounts');
  ruleOptions(
    connections
      .command('add <name>')
      .description('add a connection; the client secret comes from --client-secret-file or stdin')
      .option('--issuer <url>', 'issuer (endpoints are discovered: RFC 8414 / OpenID discovery)')
      .option('--authorization-endpoint <url>', 'explicit authorization endpoint')
      .option('--token-endpoint <url>', 'explicit token endpoint')
      .requiredOption('--client-id <id>', 'the client id Warden has at the upstream')
      .option('--client-secret-file <file>', 'read the client secret from this file')
      .option('--auth-method <method>', 'client_secret_basic or client_secret_post', 'client_secret_basic')
      .option('--scope <scope>', 'a scope to request (repeatable)', collect)
      .option(
        '--allow-exchange',
        'let agents obtain the upstream token itself (exchange mode; off by default)',
      ),
  )
    .option('--json', 'machine-readable output')
    .action(
      async (
        name: string,
        opts: RuleOpts & {
          issuer?: string;
          authorizationEndpoint?: string;
          tokenEndpoint?: string;
          clientId: string;
          clientSecretFile?: string;
          authMethod: string;
          scope?: string[];
          allowExchange?: boolean;
          json?: boolean;
        },
      ) => {
        const clientSecret = await readSecret(opts.clientSecretFile, 'client secret');
        const body = {
          name,
          ...(opts.issuer ? { issuer: opts.issuer } : {}),
          ...(opts.authorizationEndpoint ? { authorizationEndpoint: opts.authorizationEndpoint } : {}),
          ...(opts.tokenEndpoint ? { tokenEndpoint: opts.tokenEndpoint } : {}),
          clientId: opts.clientId,
          clientSecret,
          clientAuthMethod: opts.authMethod,
          scopes: opts.scope ?? [],
          accessRule: accessRule(opts),
          allowExchange: opts.allowExchange === true,
        };
        printRecord(await api().request('POST', '/v1/vault/connections', body), opts);
      },
    );
  connections
    .command('list')
    .description('list connections')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { items } = await api().request<{ items: unknown[] }>('GET', '/v1/vault/connections');
      print(items, opts, CONNECTION_COLUMNS);
    });
  connections
    .command('show <ref>')
    .description('show a connection (id or name)')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean }) => {
      printRecord(await api().request('GET', `/v1/vault/connections/${encodeURIComponent(ref)}`), opts);
    });
  connections
    .command('delete <ref>')
    .description('delete a connection with its connected accounts')
    .action(async (ref: string) => {
      await api().request('DELETE', `/v1/vault/connections/${encodeURIComponent(ref)}`);
    });
  connections
    .command('accounts <ref>')
    .description('list the connected accounts of a connection')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const { items } = await api().request<{ items: unknown[] }>(
        'GET',
        `/v1/vault/connections/${encodeURIComponent(ref)}/accounts`,
      );
      print(items, opts, ACCOUNT_COLUMNS);
    });
  connections
    .command('connect <name>')
    .description('connect your own account: prints the URL to open in a browser')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const started = await api().request<{ authorizationUrl: string; redirectUri: string }>(
        'POST',
        `/v1/vault/connect/${encodeURIComponent(name)}/start`,
      );
      if (opts.json) print(started, opts);
      else process.stdout.write(`Open this URL to connect your account:\n${started.authorizationUrl}\n`);
    });

  // ---- scan ----
  program
    .command('scan <path>')
    .description('find hard-coded credentials (secretlint rules); exits 1 when any is found')
    .option('--json', 'machine-readable output')
    .action(async (path: string, opts: { json?: boolean }) => {
      const result = await scanForSecrets(path);
      if (opts.json) print(result, opts);
      else {
        for (const f of result.findings) {
          process.stdout.write(`${f.file}:${f.line}:${f.column}  ${f.messageId}  (${f.rule})\n`);
          process.stdout.write(`  store it in the vault instead: ${f.command}\n`);
          process.stdout.write(
            '  (put the value in that file outside version control, then delete the file)\n',
          );
        }
        process.stdout.write(
          `${result.findings.length} hard-coded credential(s) in ${result.filesScanned} file(s) scanned\n`,
        );
      }
      if (result.findings.length > 0) {
        throw new CliError(`${result.findings.length} hard-coded credential(s) found`, 1);
      }
    });
}
