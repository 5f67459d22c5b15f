import type { Command } from 'commander';
import { ApiClient } from '../client.ts';
import { print, printRecord } from '../output.ts';

const COLUMNS = ['id', 'status', 'agent', 'tool', 'binding_message', 'expires_at'];

type View = Record<string, unknown> & { agent: { name: string } };
const row = (v: View) => ({ ...v, agent: v.agent.name });

/** `warden approvals list|show|approve|deny`. */
export function approvalsCommand(program: Command): void {
  const api = () => ApiClient.fromEnv();
  const approvals = program.command('approvals').description('human approval of agent actions');

  approvals
    .command('list')
    .description('list approval requests, newest first')
    .option('--status <status>', 'pending, approved, denied, expired or consumed')
    .option('--agent <id>', 'only this agent (id)')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'machine-readable output')
    .action(async (opts: { status?: string; agent?: string; limit: string; json?: boolean }) => {
      const q = new URLSearchParams({ limit: opts.limit });
      if (opts.status) q.set('status', opts.status);
      if (opts.agent) q.set('agent_id', opts.agent);
      const { items } = await api().request<{ items: View[] }>('GET', `/v1/approvals?${q}`);
      print(opts.json ? items : items.map(row), opts, COLUMNS);
    });

  approvals
    .command('show <id>')
    .description('show a request: agent, user, intent, action, arguments, binding message, expiry')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const view = await api().request<View>('GET', `/v1/approvals/${encodeURIComponent(id)}`);
      printRecord(view, opts);
    });

  for (const decision of ['approve', 'deny'] as const) {
    approvals
      .command(`${decision} <id>`)
      .description(`${decision} a pending request`)
      .option('--comment <text>', 'why (recorded with the decision)')
      .option('--json', 'machine-readable output')
      .action(async (id: string, opts: { comment?: string; json?: boolean }) => {
        const view = await api().request<View>(
          'POST',
          `/v1/approvals/${encodeURIComponent(id)}/${decision}`,
          opts.comment ? { comment: opts.comment } : {},
        );
        if (opts.json) printRecord(view, opts);
        else process.stdout.write(`${view.id}: ${view.status}\n`);
      });
  }
}
