import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { ApiClient } from '../client.ts';
import { print, printRecord } from '../output.ts';
import { readJsonFile } from '../read-json.ts';

type Opts = Record<string, string | boolean | undefined> & { json?: boolean };

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function version(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new CliError(`${value} is not a policy version number`);
  return n;
}

/** `--from`/`--to` as ISO timestamps; the default window is the last `--days` (7) days. */
function window(o: Opts): { from: string; to: string } {
  const to = o.to ? new Date(String(o.to)) : new Date();
  const from = o.from ? new Date(String(o.from)) : new Date(to.getTime() - Number(o.days ?? 7) * 86_400_000);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()))
    throw new CliError('--from/--to must be dates');
  return { from: from.toISOString(), to: to.toISOString() };
}

const windowOptions = (c: Command) =>
  c
    .option('--from <time>', 'window start (ISO 8601)')
    .option('--to <time>', 'window end (ISO 8601, default now)')
    .option('--days <n>', 'window length when --from is not given', '7');

/** `warden policy validate|push|list|show|activate|rollback|simulate|explain|effective`. */
export function policyCommand(program: Command): void {
  const api = () => ApiClient.fromEnv();
  const policy = program.command('policy').description('Cedar policy sets: versions, decisions, simulation');

  policy
    .command('validate <file>')
    .description('validate a Cedar policy file against the Warden schema (nothing is stored)')
    .option('--json')
    .action(async (file: string, o: Opts) => {
      const res = await api().request<Record<string, unknown>>('POST', '/v1/policies/validate', {
        policies: readText(file),
      });
      printRecord(res, o);
    });
  policy
    .command('push <file>')
    .description('store a Cedar policy file as a new version (validated; not active until activated)')
    .option('--description <text>')
    .option('--activate', 'activate the new version at once')
    .option('--json')
    .action(async (file: string, o: Opts) => {
      const pushed = await api().request<Record<string, unknown>>('POST', '/v1/policies', {
        policies: readText(file),
        ...(o.description ? { description: String(o.description) } : {}),
      });
      const { policies: _text, ...summary } = pushed;
      if (o.activate) {
        const activation = await api().request<Record<string, unknown>>(
          'POST',
          `/v1/policies/${pushed.version}/activate`,
        );
        printRecord({ ...summary, activated: true, previous_version: activation.previous_version }, o);
      } else printRecord(summary, o);
    });
  policy
    .command('list')
    .description('list versions (newest first) and the active one')
    .option('--json')
    .action(async (o: Opts) => {
      const res = await api().request<{ active_version: number | null; items: Record<string, unknown>[] }>(
        'GET',
        '/v1/policies',
      );
      if (o.json) print(res, o);
      else {
        print(
          res.items.map((v) => ({ ...v, active: v.version === res.active_version ? '*' : '' })),
          o,
          ['version', 'active', 'policy_count', 'description', 'created_by'],
        );
      }
    });
  policy
    .command('show <version>')
    .description('print a version (its Cedar text, or JSON with --json)')
    .option('--json')
    .action(async (v: string, o: Opts) => {
      const res = await api().request<{ policies: string }>('GET', `/v1/policies/${version(v)}`);
      if (o.json) print(res, o);
      else process.stdout.write(`${res.policies}\n`);
    });
  policy
    .command('activate <version>')
    .description('make a version active on every node')
    .option('--json')
    .action(async (v: string, o: Opts) =>
      printRecord(await api().request('POST', `/v1/policies/${version(v)}/activate`), o),
    );
  policy
    .command('rollback')
    .description('return to the previously active version (or --to <version>)')
    .option('--to <version>')
    .option('--json')
    .action(async (o: Opts) =>
      printRecord(
        await api().request(
          'POST',
          '/v1/policies/rollback',
          o.to ? { to_version: version(String(o.to)) } : {},
        ),
        o,
      ),
    );
  windowOptions(
    policy
      .command('simulate <version>')
      .description('replay recorded decisions against a version and show which outcomes would change'),
  )
    .option('--json')
    .action(async (v: string, o: Opts) => {
      const report = await api().request<{
        evaluated: number;
        unchanged: number;
        allowed_to_denied: Record<string, any>[];
        denied_to_allowed: Record<string, any>[];
        approval_changed: Record<string, any>[];
        failed: unknown[];
      }>('POST', `/v1/policies/${version(v)}/simulate`, window(o));
      if (o.json) {
        print(report, o);
        return;
      }
      process.stdout.write(
        `evaluated ${report.evaluated}, unchanged ${report.unchanged}, allowed→denied ${report.allowed_to_denied.length}, denied→allowed ${report.denied_to_allowed.length}, approval changed ${report.approval_changed.length}, failed ${report.failed.length}\n`,
      );
      const rows = [
        ...report.allowed_to_denied.map((c) => ({ change: 'allowed→denied', ...c })),
        ...report.denied_to_allowed.map((c) => ({ change: 'denied→allowed', ...c })),
        ...report.approval_changed.map((c) => ({ change: 'approval', ...c })),
      ].map((c: Record<string, any>) => ({
        change: c.change,
        time: new Date(c.time).toISOString(),
        principal: `${c.principal.type}::${c.principal.id}`,
        action: c.action,
        resource: `${c.resource.type}::${c.resource.id}`,
        policies: c.after.policies.join(','),
      }));
      if (rows.length) print(rows, o, ['change', 'time', 'principal', 'action', 'resource', 'policies']);
    });
  policy
    .command('explain <request-file>')
    .description('decide a JSON request against the active set and show the deciding policies')
    .option('--json')
    .action(async (file: string, o: Opts) => {
      const d = await api().request<Record<string, any>>('POST', '/v1/policies/explain', readJsonFile(file));
      if (o.json) print(d, o);
      else {
        printRecord(
          {
            decision: d.decision,
            approval_required: d.approval_required,
            reason: d.reason,
            policies: d.determining_policies.map((p: { id: string }) => p.id).join(', ') || '-',
            errors: d.errors.length ? d.errors : undefined,
            policy_version: d.policy_version,
          },
          o,
        );
      }
    });
  windowOptions(
    policy
      .command('effective <agent>')
      .description("an agent's granted permissions, with those unused in the window (removal candidates)"),
  )
    .option('--json')
    .action(async (agent: string, o: Opts) => {
      const w = window(o);
      const report = await api().request<{ grants: Record<string, unknown>[] }>(
        'GET',
        `/v1/policies/effective?${new URLSearchParams({ agent, ...w }).toString()}`,
      );
      if (o.json) print(report, o);
      else
        print(
          report.grants.map((g) => ({ ...g, unused: g.uses === 0 ? 'unused' : '' })),
          o,
          ['policy_id', 'actions', 'resource', 'uses', 'unused'],
        );
    });
}
