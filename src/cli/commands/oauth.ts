import type { Command } from 'commander';
import { ApiClient } from '../client.ts';
import { print } from '../output.ts';

type KeyList = { kid?: string; items: Record<string, unknown>[] };
const COLUMNS = ['kid', 'alg', 'active', 'created_at', 'superseded_at', 'publish_until'];

/** `warden oauth keys list|rotate`: the authorization server's signing keys. */
export function oauthCommand(program: Command): void {
  const oauth = program.command('oauth').description('the OAuth authorization server for agents');
  const keys = oauth.command('keys').description('access token signing keys');
  keys
    .command('list')
    .description('list signing keys (public facts only)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const res = await ApiClient.fromEnv().request<KeyList>('GET', '/v1/oauth/keys');
      print(opts.json ? res : res.items, opts, COLUMNS);
    });
  keys
    .command('rotate')
    .description('make a new signing key active now; old keys stay published until their tokens expire')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const res = await ApiClient.fromEnv().request<KeyList>('POST', '/v1/oauth/keys/rotate');
      if (opts.json) print(res, opts);
      else {
        process.stdout.write(`New signing key ${res.kid} is active.\n`);
        print(res.items, opts, COLUMNS);
      }
    });
}
