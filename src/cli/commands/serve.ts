import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import { loadConfig } from '../../core/index.ts';
import { bootstrapAdmin, buildServer, createWarden } from '../../http/index.ts';

/** `warden serve`: starts a node on the configured (default: embedded SQLite) database. */
export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('start Warden (first start creates the data directory, keys, database and an administrator)')
    .action(async () => {
      const started = performance.now();
      const config = loadConfig();
      const warden = await createWarden(config);
      const creds = await bootstrapAdmin(warden);
      const app = await buildServer(warden);
      await app.listen({ host: config.host, port: config.port });
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : config.port;
      await warden.auditor.record({
        type: 'system.started',
        actor: { type: 'system', id: warden.nodeId },
        action: 'serve',
        outcome: 'success',
        details: { database: warden.store.dialect, master_key: warden.keySource },
      });
      const url = config.publicUrl ?? `http://${config.host}:${port}`;
      const lines = [
        '',
        `Warden is ready at ${url} (${warden.store.dialect}, node ${warden.nodeId}) in ${Math.round(performance.now() - started)} ms`,
      ];
      if (warden.keySource === 'generated')
        lines.push(
          `Created a master key in ${config.dataDir}/master.key (keep it safe; back it up apart from the database).`,
        );
      if (creds) {
        lines.push(
          '',
          'First start: created the administrator "admin".',
          `  password:  ${creds.password}   (shown once)`,
          creds.tokenFromEnv
            ? '  API token: the value of WARDEN_ADMIN_TOKEN'
            : `  API token: ${creds.token}   (shown once)`,
          '',
          'Log in with the CLI:',
          `  export WARDEN_URL=${url}`,
          `  echo '${creds.tokenFromEnv ? '<WARDEN_ADMIN_TOKEN>' : creds.token}' | npx warden login --token-stdin`,
          '  npx warden agents list',
          'Or call the API:',
          `  curl -H 'Authorization: Bearer ${creds.tokenFromEnv ? '<WARDEN_ADMIN_TOKEN>' : creds.token}' ${url}/v1/agents`,
          `API reference: ${url}/openapi.json`,
        );
      } else {
        lines.push(
          'Log in with `npx warden login` and an API token (`warden tokens create` issues new ones).',
        );
      }
      // Started: the young generation may grow with the load again (held off by bin/warden.js).
      setFlagsFromString('--semi-space-growth-factor=2');
      // Listening for the stop signals before the banner says ready: a supervisor that stops the
      // node as soon as it reads the banner gets a clean shutdown, not the default signal death.
      const stopped = new Promise<void>((resolve) => {
        let stopping = false;
        const stop = async () => {
          if (stopping) return;
          stopping = true;
          await app.close();
          await warden.auditor
            .record({
              type: 'system.stopped',
              actor: { type: 'system', id: warden.nodeId },
              action: 'serve',
              outcome: 'success',
            })
            .catch(() => {});
          await warden.close();
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      process.stderr.write(`${lines.join('\n')}\n\n`);
      await stopped;
    });
}
