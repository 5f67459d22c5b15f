import type { Command } from 'commander';
import { loadConfig } from '../../core/index.ts';
import { allMigrations, createWarden } from '../../http/index.ts';
import { Store } from '../../store/index.ts';
import { print } from '../output.ts';

/** `warden migrate`: brings the configured database's schema up to date. */
export function migrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply database migrations (also done automatically at start)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      const store = await Store.open({ url: config.databaseUrl, dataDir: config.dataDir });
      let applied: string[];
      try {
        applied = await store.migrate(allMigrations);
      } finally {
        await store.close();
      }
      // Opening the node checks the master key against the migrated database.
      const warden = await createWarden(config, { migrate: false });
      await warden.close();
      if (opts.json) print({ database: store.dialect, applied }, opts);
      else
        process.stdout.write(
          applied.length
            ? `Applied ${applied.length} migration(s):\n  ${applied.join('\n  ')}\n`
            : 'The database is up to date.\n',
        );
    });
}
