import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  exportLedger,
  parseNoteVerifier,
  parseTime,
  storedLedgerPublicKey,
  type VerifyReport,
  verifyLedger,
  verifyLedgerFile,
} from '../../audit/index.ts';
import { loadConfig } from '../../core/index.ts';
import { Store } from '../../store/index.ts';
import { CliError } from '../cli-error.ts';
import { ApiClient } from '../client.ts';
import { print } from '../output.ts';

type Event = Record<string, any> & { id: string; time: number; type: string };
type Page = { items: Event[]; next_cursor: string | null };

function timeOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const t = parseTime(value);
  if (t === undefined) throw new CliError(`${name}: give epoch milliseconds or an RFC 3339 date-time`);
  return t;
}

/** `--public-key` is a file holding the C2SP verifier key, or the key itself. */
function readPublicKey(value: string): string {
  const text = existsSync(value) ? readFileSync(value, 'utf8').trim() : value.trim();
  try {
    return parseNoteVerifier(text).text;
  } catch (e) {
    throw new CliError(`--public-key: ${(e as Error).message}`);
  }
}

async function openStore(): Promise<Store> {
  const config = loadConfig();
  return Store.open({ url: config.databaseUrl, dataDir: config.dataDir });
}

function line(e: Event): string {
  const actor = e.actor?.on_behalf_of ? `${e.actor.id} for ${e.actor.on_behalf_of.id}` : (e.actor?.id ?? '-');
  const resource = e.resource ? ` ${e.resource.type}:${e.resource.id ?? e.resource.name ?? ''}` : '';
  return `${new Date(e.time).toISOString()}  ${e.type.padEnd(22)} ${String(e.outcome).padEnd(7)} ${actor}  ${e.action}${resource}  [${e.partition}#${e.seq}]`;
}

function qs(params: Record<string, string | undefined>): string {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined) as [string, string][];
  return entries.length ? `?${new URLSearchParams(entries).toString()}` : '';
}

function report(result: VerifyReport, json: boolean | undefined): void {
  if (json) {
    print(result, { json: true });
  } else {
    for (const p of result.partitions) {
      process.stdout.write(
        `partition ${p.partition}: ${p.events} events (${p.first_seq ?? '-'}…${p.last_seq ?? '-'}), ${p.checkpoints} checkpoints verified, signed through ${p.signed_through}${p.pruned_seq ? `, events 1…${p.pruned_seq} removed by retention` : ''}\n`,
      );
    }
  }
  const bad = result.first_problem;
  if (bad) {
    throw new CliError(
      `verification FAILED at partition ${bad.partition} seq ${bad.seq}${bad.id ? ` (event ${bad.id})` : ''}: ${bad.problem}`,
      2,
    );
  }
  if (!json)
    process.stdout.write(`OK: ${result.events} events and ${result.checkpoints} checkpoints verified\n`);
}

/** `warden audit verify|export|tail|search`. */
export function auditCommand(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit ledger');

  audit
    .command('verify')
    .description(
      'check hash chain, sequence, Merkle roots and checkpoint signatures of the database (or of an exported --file, offline); names the first bad event',
    )
    .option('--file <path>', 'an exported ledger file (JSON Lines) instead of the database')
    .option('--public-key <key-or-file>', 'the trusted ledger verifier key (required with --file)')
    .option('--from <time>', 'report only problems at or after this time (epoch ms or RFC 3339)')
    .option('--to <time>', 'report only problems at or before this time')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: { file?: string; publicKey?: string; from?: string; to?: string; json?: boolean }) => {
        const range = { from: timeOption(opts.from, '--from'), to: timeOption(opts.to, '--to') };
        if (opts.file) {
          if (!opts.publicKey)
            throw new CliError(
              '--file needs --public-key: a file can only be trusted against a key you hold',
            );
          if (!existsSync(opts.file)) throw new CliError(`--file: ${opts.file} does not exist`);
          report(await verifyLedgerFile(opts.file, readPublicKey(opts.publicKey), range), opts.json);
          return;
        }
        const store = await openStore();
        try {
          let key: string;
          if (opts.publicKey) key = readPublicKey(opts.publicKey);
          else {
            key = await storedLedgerPublicKey(store.db);
            process.stderr.write(
              'warning: using the public key stored in the database being checked; pass --public-key with a trusted copy\n',
            );
          }
          report(await verifyLedger(store.db, key, range), opts.json);
        } finally {
          await store.close();
        }
      },
    );

  audit
    .command('export')
    .description(
      'write the ledger (events, checkpoints, retention state) to a JSON Lines file for offline verify',
    )
    .requiredOption('--file <path>', 'where to write')
    .option('--json', 'machine-readable output')
    .action(async (opts: { file: string; json?: boolean }) => {
      if (existsSync(opts.file)) throw new CliError(`${opts.file} exists; refusing to overwrite`);
      const store = await openStore();
      try {
        const publicKey = await storedLedgerPublicKey(store.db).catch(() => undefined);
        const events = await exportLedger(store.db, opts.file, { publicKey });
        if (opts.json) print({ file: opts.file, events, public_key: publicKey ?? null }, opts);
        else
          process.stdout.write(
            `Exported ${events} events to ${opts.file}\nPublic key: ${publicKey ?? '-'}\n`,
          );
      } finally {
        await store.close();
      }
    });

  const filters = (c: Command) =>
    c
      .option('--actor <id>', 'actor id')
      .option('--agent <id>', 'agent id')
      .option('--user <id>', 'user id (also agents acting for this user)')
      .option('--type <type>', 'event type, e.g. tool.call')
      .option('--outcome <outcome>', 'success, failure or denied')
      .option('--from <time>', 'at or after (epoch ms or RFC 3339)')
      .option('--to <time>', 'at or before (epoch ms or RFC 3339)')
      .option('--json', 'machine-readable output');
  type FilterOpts = Record<string, string | undefined> & { json?: boolean };
  const filterParams = (o: FilterOpts) => ({
    actor_id: o.actor,
    agent_id: o.agent,
    user_id: o.user,
    type: o.type,
    outcome: o.outcome,
    from: o.from,
    to: o.to,
  });

  filters(
    audit
      .command('search')
      .description('search events over the API, newest first')
      .option('--limit <n>', 'page size (1-1000)', '50')
      .option('--cursor <cursor>', 'next page cursor'),
  ).action(async (opts: FilterOpts) => {
    const page = await ApiClient.fromEnv().request<Page>(
      'GET',
      `/v1/audit/events${qs({ ...filterParams(opts), limit: opts.limit, cursor: opts.cursor })}`,
    );
    if (opts.json) print(page, opts);
    else {
      for (const e of page.items) process.stdout.write(`${line(e)}\n`);
      if (page.next_cursor) process.stderr.write(`more: --cursor ${page.next_cursor}\n`);
    }
  });

  filters(
    audit
      .command('tail')
      .description('show the latest events, oldest first; --follow keeps printing new ones')
      .option('-n, --lines <n>', 'how many recent events', '20')
      .option('--follow', 'poll for new events until interrupted')
      .option('--interval <ms>', 'poll interval with --follow', '1000'),
  ).action(async (opts: FilterOpts & { follow?: boolean }) => {
    const api = ApiClient.fromEnv();
    const show = (events: Event[]) => {
      for (const e of events) process.stdout.write(opts.json ? `${JSON.stringify(e)}\n` : `${line(e)}\n`);
    };
    const first = await api.request<Page>(
      'GET',
      `/v1/audit/events${qs({ ...filterParams(opts), limit: opts.lines })}`,
    );
    show([...first.items].reverse());
    let last = first.items[0]?.id ?? '';
    const interval = Math.max(100, Number(opts.interval) || 1000);
    while (opts.follow) {
      await new Promise((r) => setTimeout(r, interval));
      const page = await api.request<Page>(
        'GET',
        `/v1/audit/events${qs({ ...filterParams(opts), limit: '1000' })}`,
      );
      const fresh = page.items.filter((e) => e.id > last);
      show(fresh.reverse());
      if (fresh.length) last = fresh.at(-1)?.id ?? last;
    }
  });
}
