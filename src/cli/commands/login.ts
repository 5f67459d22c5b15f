import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { ApiClient, saveCredentials } from '../client.ts';
import { readStdin } from '../stdin.ts';

/** `warden login`: checks an API token against the server and saves it (mode 0600). */
export function loginCommand(program: Command): void {
  program
    .command('login')
    .description(
      'save the server URL and an API token for later commands (token read from stdin, never argv)',
    )
    .option('--url <url>', 'Warden URL (default: WARDEN_URL or http://127.0.0.1:8420)')
    .option('--token-stdin', 'read the API token from standard input')
    .option(
      '--username <name>',
      'sign in with a password instead (read from standard input) for a short-lived token',
    )
    .option('--role <role>', 'with --username: the role the token carries (default: your first role)')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        url?: string;
        tokenStdin?: boolean;
        json?: boolean;
        username?: string;
        role?: string;
      }) => {
        const url = opts.url ?? process.env.WARDEN_URL ?? 'http://127.0.0.1:8420';
        let token = process.env.WARDEN_TOKEN;
        if (opts.username) {
          if (process.stdin.isTTY) process.stderr.write('Password: ');
          const password = (await readStdin()).replace(/\r?\n$/, '');
          const issued = await new ApiClient(url, undefined).request<{ token: string }>(
            'POST',
            '/v1/login',
            { username: opts.username, password, role: opts.role },
            { anonymous: true },
          );
          token = issued.token;
        } else if (opts.tokenStdin || !token) {
          if (process.stdin.isTTY && !opts.tokenStdin) process.stderr.write('API token: ');
          token = (await readStdin()).trim();
        }
        if (!token) throw new CliError('no token given: pipe it to `warden login --token-stdin`');
        const me = await new ApiClient(url, token).request<{ user: { username: string }; role: string }>(
          'GET',
          '/v1/me',
        );
        const file = saveCredentials({ url, token });
        if (opts.json)
          process.stdout.write(
            `${JSON.stringify({ url, username: me.user.username, role: me.role, saved: file })}\n`,
          );
        else
          process.stdout.write(`Logged in to ${url} as ${me.user.username} (${me.role}); saved to ${file}\n`);
      },
    );
}
