import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { ApiClient } from '../client.ts';
import { print, printRecord } from '../output.ts';

type Opts = Record<string, string | string[] | boolean | undefined> & { json?: boolean };
type Page = { items: Record<string, unknown>[]; next_cursor: string | null };
const COLUMNS = ['id', 'user_id', 'agent_id', 'scopes', 'source', 'expires_at', 'active'];
const UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };

/** `30d`, `12h`, `90m`, `3600` (seconds) → seconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (!m) throw new CliError(`--duration ${value}: use seconds or a number with s, m, h or d (e.g. 30d)`);
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `warden grants list|show|create|revoke`: what users let agents do on their behalf. */
export function grantsCommand(program: Command): void {
  const api = () => ApiClient.fromEnv();
  const grants = program
    .command('grants')
    .description('delegation grants: what a user lets an agent do on their behalf (token exchange)');
  grants
    .command('list')
    .description('list active grants (admins: everyone’s; --mine: your own)')
    .option('--mine', 'only the grants you gave')
    .option('--user <id>', 'admins: grants of this user (id)')
    .option('--agent <id>', 'grants to this agent (id)')
    .option('--all', 'include revoked and expired grants')
    .option('--limit <n>', 'page size (1-200)')
    .option('--cursor <cursor>', 'next page cursor')
    .option('--json', 'machine-readable output')
    .action(async (o: Opts) => {
      const params = new URLSearchParams();
      if (o.user && !o.mine) params.set('user_id', String(o.user));
      if (o.agent) params.set('agent_id', String(o.agent));
      if (o.all) params.set('include_inactive', 'true');
      if (o.limit) params.set('limit', String(o.limit));
      if (o.cursor) params.set('cursor', String(o.cursor));
      const query = params.size > 0 ? `?${params.toString()}` : '';
      const page = await api().request<Page>('GET', `${o.mine ? '/v1/me/grants' : '/v1/grants'}${query}`);
      if (o.json) print(page, o);
      else {
        print(
          page.items.map((g) => ({ ...g, scopes: (g.scopes as string[]).join(' ') })),
          o,
          COLUMNS,
        );
        if (page.next_cursor) process.stderr.write(`more: --cursor ${page.next_cursor}\n`);
      }
    });
  grants
    .command('show <id>')
    .description('admins: show one grant, active or not')
    .option('--json')
    .action(async (id: string, o: Opts) =>
      printRecord(await api().request('GET', `/v1/grants/${encodeURIComponent(id)}`), o),
    );
  grants
    .command('create')
    .description('admins: let an agent act for a user within the given scopes (source "api")')
    .requiredOption('--user <ref>', 'user id or username')
    .requiredOption('--agent <ref>', 'agent id or name')
    .requiredOption('--scope <scope>', 'a scope to delegate (repeat; within the agent template)', collect)
    .requiredOption('--purpose <text>', 'what the agent does for the user (shown to the user)')
    .option('--resource <url>', 'a resource the agent may act on (repeat; default any)', collect)
    .option('--duration <duration>', 'how long the grant lasts: seconds, or 30d, 12h, 90m', '30d')
    .option('--json')
    .action(async (o: Opts) => {
      const body = {
        user: o.user,
        agent: o.agent,
        scopes: o.scope,
        resources: o.resource ?? [],
        purpose: o.purpose,
        duration_seconds: parseDuration(String(o.duration)),
      };
      printRecord(await api().request('POST', '/v1/grants', body), o);
    });
  grants
    .command('revoke <id>')
    .description('revoke a grant and every token issued under it, on every node at once')
    .option('--reason <text>', 'why (recorded in the audit ledger)')
    .option('--mine', 'revoke one of your own grants (no admin role needed)')
    .option('--json')
    .action(async (id: string, o: Opts) => {
      const path = `${o.mine ? '/v1/me/grants' : '/v1/grants'}/${encodeURIComponent(id)}/revoke`;
      const res = await api().request<{ grant: Record<string, unknown>; revoked_tokens: number }>(
        'POST',
        path,
        o.reason ? { reason: o.reason } : {},
      );
      if (o.json) print(res, o);
      else {
        printRecord(res.grant, o);
        process.stdout.write(`Revoked ${res.revoked_tokens} access token(s) issued under it.\n`);
      }
    });
}
