import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { browserLogin } from '../browser-login.ts';
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
    .option(
      '--browser',
      'sign in through your browser (authorization code + PKCE on a loopback redirect) for a short-lived token',
    )
    .option(
      '--role <role>',
      'with --username or --browser: the role the token carries (default: your first role)',
    )
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        url?: string;
        tokenStdin?: boolean;
        json?: boolean;
        username?: string;
        role?: string;
        browser?: boolean;
      }) => {
        const url = opts.url ?? process.env.WARDEN_URL ?? 'http://127.0.0.1:8420';
        let token = process.env.WARDEN_TOKEN;
        if (opts.browser) {
          const accessToken = await browserLogin(url, (authUrl) => {
            process.stderr.write(`Open this URL in your browser to sign in:\n\n  ${authUrl.href}\n\n`);
            if (process.stderr.isTTY) openInBrowser(authUrl.href);
          });
          const issued = await new ApiClient(url, undefined).request<{ token: string }>(
            'POST',
            '/v1/login/console',
            { access_token: accessToken, ...(opts.role ? { role: opts.role } : {}) },
            { anonymous: true },
          );
          token = issued.token;
        } else if (opts.username) {
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

/** Best effort: hands the URL to the desktop's browser; the printed URL is the fallback. */
function openInBrowser(url: string): void {
  const command =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no browser launcher: the person opens the printed URL
  }
}
