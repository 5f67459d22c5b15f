import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { ApiClient } from '../client.ts';
import { print, printRecord } from '../output.ts';
import { readJsonFile } from '../read-json.ts';
import { readStdin } from '../stdin.ts';

type Opts = {
  json?: boolean;
  file?: string;
  stdin?: boolean;
  enable?: boolean;
  disable?: boolean;
  format?: string;
};

/** The definition from `--file` or `--stdin` (secrets come this way, never through argv). */
async function definitionFrom(o: Opts): Promise<Record<string, unknown>> {
  if (o.file && o.stdin) throw new CliError('give the definition with --file or --stdin, not both');
  let value: unknown;
  if (o.file) value = readJsonFile(o.file);
  else if (o.stdin) {
    try {
      value = JSON.parse(await readStdin());
    } catch (e) {
      throw new CliError(`standard input is not valid JSON: ${(e as Error).message}`);
    }
  } else value = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError('the sink definition must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/** `warden sinks list|show|create|update|delete|status`: SIEM export sinks over the admin API. */
export function sinksCommand(program: Command): void {
  const api = () => ApiClient.fromEnv();
  const path = (name: string) => `/v1/export/sinks/${encodeURIComponent(name)}`;
  const sinks = program
    .command('sinks')
    .description('SIEM export sinks (syslog, kafka, splunk_hec, webhook, file)');

  sinks
    .command('list')
    .description('list sinks (secrets are never shown)')
    .option('--json', 'machine-readable output')
    .action(async (o: Opts) => {
      const { items } = await api().request<{ items: Record<string, unknown>[] }>('GET', '/v1/export/sinks');
      print(o.json ? { items } : items, o, ['name', 'type', 'format', 'enabled', 'source', 'version']);
    });

  sinks
    .command('show <name>')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: Opts) => printRecord(await api().request('GET', path(name)), o));

  sinks
    .command('create <name>')
    .description('create a sink from a JSON definition: {"type":"syslog","host":…,"port":…}')
    .option('--file <file>', 'JSON file with the definition (may hold secrets: keep it private)')
    .option('--stdin', 'read the JSON definition from standard input')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: Opts) => {
      const def = await definitionFrom(o);
      if (!o.file && !o.stdin) throw new CliError('give the definition with --file <file> or --stdin');
      printRecord(await api().request('POST', '/v1/export/sinks', { ...def, name }), o);
    });

  sinks
    .command('update <name>')
    .description('change a sink: fields from --file/--stdin, or --enable/--disable/--format')
    .option('--file <file>', 'JSON file with the fields to change')
    .option('--stdin', 'read the JSON fields from standard input')
    .option('--enable')
    .option('--disable')
    .option('--format <format>', 'ocsf | cef | ecs | json')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: Opts) => {
      if (o.enable && o.disable) throw new CliError('--enable and --disable exclude each other');
      const patch = await definitionFrom(o);
      if (o.enable) patch.enabled = true;
      if (o.disable) patch.enabled = false;
      if (o.format) patch.format = o.format;
      if (Object.keys(patch).length === 0) throw new CliError('nothing to change');
      printRecord(await api().request('PATCH', path(name), patch), o);
    });

  sinks
    .command('delete <name>')
    .description('delete a sink and its cursors')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: Opts) => {
      await api().request('DELETE', path(name));
      if (o.json) print({ deleted: name }, o);
      else process.stdout.write(`Deleted sink ${name}.\n`);
    });

  sinks
    .command('status [name]')
    .description('health and lag (events and seconds behind the ledger head) of every sink or one')
    .option('--json', 'machine-readable output')
    .action(async (name: string | undefined, o: Opts) => {
      const items = name
        ? [await api().request<Record<string, unknown>>('GET', `${path(name)}/status`)]
        : (await api().request<{ items: Record<string, unknown>[] }>('GET', '/v1/export/status')).items;
      const rows = items.map((s) => ({
        ...s,
        lag_events: (s.lag as { events: number }).events,
        lag_seconds: (s.lag as { seconds: number }).seconds.toFixed(1),
      }));
      print(o.json ? { items } : rows, o, [
        'name',
        'type',
        'health',
        'last_error_code',
        'lag_events',
        'lag_seconds',
        'delivered',
      ]);
    });
}
