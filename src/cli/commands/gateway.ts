import type { Command } from 'commander';
import { ApiClient } from '../client.ts';
import { print, printRecord } from '../output.ts';
import { readJsonFile } from '../read-json.ts';

type Opts = Record<string, string | boolean | string[] | undefined> & { json?: boolean };

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `warden upstreams add|list|show|approve|remove`: the gateway's upstream MCP servers and HTTP APIs. */
export function gatewayCommand(program: Command): void {
  const api = () => ApiClient.fromEnv();
  const upstreams = program
    .command('upstreams')
    .description('upstream MCP servers and HTTP APIs behind the gateway');
  upstreams
    .command('list')
    .option('--json', 'machine-readable output')
    .action(async (o: Opts) => {
      const page = await api().request<{ items: Record<string, unknown>[] }>('GET', '/v1/gateway/upstreams');
      print(o.json ? page : page.items, o, ['name', 'kind', 'transport', 'status', 'url', 'credential']);
    });
  upstreams
    .command('add <name>')
    .description('register an upstream (pending until approved); its tools appear as <name>.<tool>')
    .option('--kind <kind>', 'mcp or http', 'mcp')
    .option('--url <url>', 'streamable HTTP endpoint (mcp) or base URL (http)')
    .option('--command <command>', 'stdio MCP server: the executable to start')
    .option('--arg <arg>', 'stdio MCP server: an argument (repeatable)', collect)
    .option('--credential <ref>', 'vault connection or credential injected into upstream calls')
    .option('--scope <scope>', 'scope a token must carry to reach this upstream (repeatable)', collect)
    .option('--routes <file>', 'http: JSON file with route rules [{method, path, endpoint}]')
    .option('--timeout-ms <ms>', 'per-call timeout')
    .option('--json')
    .action(async (name: string, o: Opts) => {
      const body: Record<string, unknown> = { name, kind: o.kind };
      if (o.url) body.url = o.url;
      if (o.command) {
        body.transport = 'stdio';
        body.command = { command: o.command, args: o.arg ?? [] };
      }
      if (o.credential) body.credential = o.credential;
      if (o.scope) body.scopes = o.scope;
      if (o.routes) body.routes = readJsonFile(String(o.routes));
      if (o.timeoutMs) body.timeout_ms = Number(o.timeoutMs);
      printRecord(await api().request('POST', '/v1/gateway/upstreams', body), o);
    });
  upstreams
    .command('show <ref>')
    .option('--json')
    .action(async (ref: string, o: Opts) =>
      printRecord(await api().request('GET', `/v1/gateway/upstreams/${encodeURIComponent(ref)}`), o),
    );
  upstreams
    .command('approve <ref>')
    .description(
      'approve an upstream and pin the definitions of the tools it offers now (also re-approves changes)',
    )
    .option('--json')
    .action(async (ref: string, o: Opts) =>
      printRecord(await api().request('POST', `/v1/gateway/upstreams/${encodeURIComponent(ref)}/approve`), o),
    );
  upstreams
    .command('remove <ref>')
    .option('--json')
    .action(async (ref: string, o: Opts) => {
      await api().request('DELETE', `/v1/gateway/upstreams/${encodeURIComponent(ref)}`);
      if (o.json) print({ removed: ref }, o);
      else process.stdout.write(`removed ${ref}\n`);
    });
}
