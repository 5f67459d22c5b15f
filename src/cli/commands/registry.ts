import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { CliError } from '../cli-error.ts';
import { ApiClient } from '../client.ts';
import { print, printRecord } from '../output.ts';
import { readJsonFile } from '../read-json.ts';

type Opts = Record<string, string | boolean | undefined> & { json?: boolean };
type Page = { items: Record<string, unknown>[]; next_cursor: string | null };

function qs(params: Record<string, unknown>): string {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== false) as [
    string,
    string,
  ][];
  return entries.length ? `?${new URLSearchParams(entries).toString()}` : '';
}

async function listAll(
  api: ApiClient,
  path: string,
  opts: Opts,
  filters: Record<string, unknown>,
  columns: string[],
) {
  const page = await api.request<Page>(
    'GET',
    `${path}${qs({ limit: opts.limit, cursor: opts.cursor, ...filters })}`,
  );
  if (opts.json) print(page, opts);
  else {
    print(page.items, opts, columns);
    if (page.next_cursor) process.stderr.write(`more: --cursor ${page.next_cursor}\n`);
  }
}

const listOptions = (c: Command) =>
  c
    .option('--limit <n>', 'page size (1-200)')
    .option('--cursor <cursor>', 'next page cursor')
    .option('--json', 'machine-readable output');

/** Generates an agent key pair locally; only the public key ever leaves this machine. */
async function generateAgentKey(alg: string, keyFile: string): Promise<Record<string, unknown>> {
  if (existsSync(keyFile))
    throw new CliError(`${keyFile} already exists; refusing to overwrite a private key`);
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const priv = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  writeFileSync(keyFile, `${JSON.stringify(priv, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return { ...pub, kid, alg, use: 'sig' };
}

/** `warden providers|templates|agents|users|tokens …`: the registry over the admin API. */
export function registryCommands(program: Command): void {
  const api = () => ApiClient.fromEnv();

  // ---- providers ----
  const providers = program
    .command('providers')
    .description('agent providers (vendors and teams that build agents)');
  listOptions(
    providers.command('list').description('list providers').option('--status <status>', 'trusted|distrusted'),
  ).action((o: Opts) =>
    listAll(api(), '/v1/providers', o, { status: o.status }, ['id', 'name', 'status', 'contact']),
  );
  providers
    .command('create <name>')
    .description('register a provider with the public keys it signs attestations with')
    .requiredOption('--contact <contact>', 'who to call about this provider')
    .requiredOption('--jwks <file>', 'JSON file with the provider public JWKS')
    .option('--display-name <text>')
    .option('--json')
    .action(async (name: string, o: Opts) => {
      const body = {
        name,
        contact: o.contact,
        display_name: o.displayName,
        jwks: readJsonFile(String(o.jwks)),
      };
      printRecord(await api().request('POST', '/v1/providers', body), o);
    });
  providers
    .command('show <ref>')
    .option('--json')
    .action(async (ref: string, o: Opts) =>
      printRecord(await api().request('GET', `/v1/providers/${encodeURIComponent(ref)}`), o),
    );
  for (const move of ['distrust', 'trust'] as const) {
    providers
      .command(`${move} <ref>`)
      .description(
        move === 'distrust'
          ? 'distrust a provider: suspends all its agents at once'
          : 'trust a provider again',
      )
      .requiredOption('--reason <text>', 'why (recorded in the audit ledger)')
      .option('--json')
      .action(async (ref: string, o: Opts) =>
        printRecord(
          await api().request('POST', `/v1/providers/${encodeURIComponent(ref)}/${move}`, {
            reason: o.reason,
          }),
          o,
        ),
      );
  }

  // ---- templates ----
  const templates = program.command('templates').description('reviewed, versioned agent templates');
  listOptions(templates.command('list')).action((o: Opts) =>
    listAll(api(), '/v1/templates', o, {}, ['id', 'name', 'latest_version']),
  );
  templates
    .command('create <name>')
    .description('create a template from a JSON spec file')
    .requiredOption(
      '--spec <file>',
      'JSON file: description, allowed_scopes, allowed_tools, token_lifetime, …',
    )
    .option('--json')
    .action(async (name: string, o: Opts) =>
      printRecord(
        await api().request('POST', '/v1/templates', { name, spec: readJsonFile(String(o.spec)) }),
        o,
      ),
    );
  templates
    .command('update <ref>')
    .description('create the next version of a template (agents keep theirs until moved)')
    .requiredOption('--spec <file>', 'JSON spec file')
    .option('--json')
    .action(async (ref: string, o: Opts) =>
      printRecord(
        await api().request('POST', `/v1/templates/${encodeURIComponent(ref)}/versions`, {
          spec: readJsonFile(String(o.spec)),
        }),
        o,
      ),
    );
  templates
    .command('show <ref>')
    .option('--json')
    .action(async (ref: string, o: Opts) =>
      printRecord(await api().request('GET', `/v1/templates/${encodeURIComponent(ref)}`), o),
    );

  // ---- agents ----
  const agents = program.command('agents').description('registered agents and their lifecycle');
  listOptions(
    agents
      .command('list')
      .option('--status <status>', 'active|suspended|retired')
      .option('--provider-id <id>')
      .option('--template-id <id>')
      .option('--owner-id <id>'),
  ).action((o: Opts) =>
    listAll(
      api(),
      '/v1/agents',
      o,
      { status: o.status, provider_id: o.providerId, template_id: o.templateId, owner_id: o.ownerId },
      ['id', 'name', 'status', 'template_version', 'risk_tier', 'last_seen_at'],
    ),
  );
  agents
    .command('create <name>')
    .description(
      'register an agent: generates its key pair here, sends only the public key, writes the private key (0600)',
    )
    .requiredOption('--provider <ref>', 'provider id or name')
    .requiredOption('--template <ref>', 'template id or name')
    .requiredOption('--purpose <text>', 'what the agent is for')
    .option('--owner <ref>', 'accountable person (default: you)')
    .option('--template-version <n>')
    .option('--alg <alg>', 'key algorithm: ES256 (default), EdDSA, PS256', 'ES256')
    .option('--key-file <file>', 'where to write the private key (default ./<name>.key.json)')
    .option('--json')
    .action(async (name: string, o: Opts) => {
      const keyFile = resolve(String(o.keyFile ?? `${name}.key.json`));
      const jwk = await generateAgentKey(String(o.alg), keyFile);
      const body = {
        name,
        provider: o.provider,
        template: o.template,
        template_version: o.templateVersion === undefined ? undefined : Number(o.templateVersion),
        owner: o.owner,
        purpose: o.purpose,
        jwks: { keys: [jwk] },
      };
      let agent: Record<string, unknown>;
      try {
        agent = await api().request('POST', '/v1/agents', body);
      } catch (e) {
        const { rmSync } = await import('node:fs');
        rmSync(keyFile, { force: true });
        throw e;
      }
      printRecord({ ...agent, private_key_file: keyFile }, o);
    });
  agents
    .command('show <ref>')
    .option('--json')
    .action(async (ref: string, o: Opts) =>
      printRecord(await api().request('GET', `/v1/agents/${encodeURIComponent(ref)}`), o),
    );
  agents
    .command('instances <ref>')
    .description('attested instances of an agent: image digest, model and version each last attested')
    .option('--json')
    .action(async (ref: string, o: Opts) => {
      const page = await api().request<{ items: unknown[] }>(
        'GET',
        `/v1/agents/${encodeURIComponent(ref)}/instances`,
      );
      print(o.json ? page : page.items, o, [
        'instance_id',
        'image_digest',
        'model',
        'software_version',
        'provider_kid',
        'last_attested_at',
      ]);
    });
  for (const move of ['suspend', 'resume', 'retire'] as const) {
    agents
      .command(`${move} <ref>`)
      .description(move === 'retire' ? 'retire an agent (final)' : `${move} an agent`)
      .requiredOption('--reason <text>', 'why (recorded in the audit ledger)')
      .option('--json')
      .action(async (ref: string, o: Opts) =>
        printRecord(
          await api().request('POST', `/v1/agents/${encodeURIComponent(ref)}/${move}`, { reason: o.reason }),
          o,
        ),
      );
  }
  agents
    .command('rotate-key <ref>')
    .description('generate a new key pair for an agent and replace its registered public key')
    .option('--alg <alg>', 'key algorithm', 'ES256')
    .requiredOption('--key-file <file>', 'where to write the new private key')
    .option('--json')
    .action(async (ref: string, o: Opts) => {
      const jwk = await generateAgentKey(String(o.alg), resolve(String(o.keyFile)));
      printRecord(
        await api().request('PATCH', `/v1/agents/${encodeURIComponent(ref)}`, { jwks: { keys: [jwk] } }),
        o,
      );
    });

  // ---- users ----
  const users = program.command('users').description('people: local accounts and roles');
  listOptions(users.command('list').option('--role <role>')).action((o: Opts) =>
    listAll(api(), '/v1/users', o, { role: o.role }, ['id', 'username', 'roles', 'status']),
  );
  users
    .command('create <username>')
    .option('--role <role...>', 'roles: admin, security_analyst, auditor, approver, agent_owner')
    .option('--email <email>')
    .option('--display-name <text>')
    .option('--password-stdin', 'read a password from standard input')
    .option('--json')
    .action(async (username: string, o: Opts & { role?: string[] }) => {
      const password = o.passwordStdin ? (await (await import('../stdin.ts')).readStdin()).trim() : undefined;
      const body = { username, roles: o.role ?? [], email: o.email, display_name: o.displayName, password };
      printRecord(await api().request('POST', '/v1/users', body), o);
    });
  users
    .command('show <ref>')
    .option('--json')
    .action(async (ref: string, o: Opts) =>
      printRecord(await api().request('GET', `/v1/users/${encodeURIComponent(ref)}`), o),
    );
  users
    .command('update <ref>')
    .option('--role <role...>', 'replace the roles')
    .option('--status <status>', 'active|disabled')
    .option('--json')
    .action(async (ref: string, o: Opts & { role?: string[] }) =>
      printRecord(
        await api().request('PATCH', `/v1/users/${encodeURIComponent(ref)}`, {
          roles: o.role,
          status: o.status,
        }),
        o,
      ),
    );

  // ---- API tokens ----
  const tokens = program.command('tokens').description('admin API tokens');
  tokens
    .command('create <name>')
    .description('issue an API token; printed once')
    .requiredOption('--role <role>', 'the role the token carries (one you hold)')
    .option('--expires-in <seconds>', 'lifetime in seconds', String(30 * 24 * 3600))
    .option('--user <id>', 'admins: issue for another user (id)')
    .option('--json')
    .action(async (name: string, o: Opts) =>
      printRecord(
        await api().request('POST', '/v1/tokens', {
          name,
          role: o.role,
          expires_in: Number(o.expiresIn),
          user_id: o.user,
        }),
        o,
      ),
    );
  listOptions(tokens.command('list')).action((o: Opts) =>
    listAll(api(), '/v1/tokens', o, {}, ['id', 'name', 'role', 'expires_at', 'revoked_at', 'last_used_at']),
  );
  tokens
    .command('revoke <id>')
    .option('--json')
    .action(async (id: string, o: Opts) =>
      printRecord(await api().request('DELETE', `/v1/tokens/${encodeURIComponent(id)}`), o),
    );
}
