import { Command, CommanderError } from 'commander';
import { WardenError } from '../core/index.ts';
import { CliError } from './cli-error.ts';
import { approvalsCommand } from './commands/approvals.ts';
import { auditCommand } from './commands/audit.ts';
import { gatewayCommand } from './commands/gateway.ts';
import { grantsCommand } from './commands/grants.ts';
import { keysCommand } from './commands/keys.ts';
import { loginCommand } from './commands/login.ts';
import { migrateCommand } from './commands/migrate.ts';
import { oauthCommand } from './commands/oauth.ts';
import { policyCommand } from './commands/policy.ts';
import { registryCommands } from './commands/registry.ts';
import { serveCommand } from './commands/serve.ts';
import { sinksCommand } from './commands/sinks.ts';
import { vaultCommands } from './commands/vault.ts';

export { CliError } from './cli-error.ts';

/** Builds the `warden` command tree. */
export function buildProgram(): Command {
  const program = new Command('warden')
    .description('Warden: identity, access and audit control plane for AI agents')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError();
  serveCommand(program);
  migrateCommand(program);
  loginCommand(program);
  registryCommands(program);
  keysCommand(program);
  auditCommand(program);
  sinksCommand(program);
  oauthCommand(program);
  grantsCommand(program);
  gatewayCommand(program);
  policyCommand(program);
  vaultCommands(program);
  approvalsCommand(program);
  return program;
}

/** Runs the CLI; returns the process exit code. Errors become one clear line on stderr. */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof CliError) {
      process.stderr.write(`warden: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof WardenError) {
      process.stderr.write(`warden: ${e.message} (${e.code})\n`);
      return 1;
    }
    process.stderr.write(`warden: unexpected error: ${(e as Error).message}\n`);
    return 70;
  }
}
