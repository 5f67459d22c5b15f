import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after } from 'node:test';

export const ROOT = join(import.meta.dirname, '..', '..');
export const WARDEN_BIN = join(ROOT, 'bin', 'warden.js');

/** A free loopback TCP port. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

/** Runs `warden <args>` to completion. */
export async function runWarden(
  args: string[],
  env: Record<string, string | undefined>,
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [WARDEN_BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin.end(input ?? '');
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}

/** A `warden serve` child process, stopped when the test file ends. */
export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** Everything it wrote to stderr so far (the first-start banner). */
  output(): string;
  stop(): Promise<number | null>;
}

/** Starts `warden serve` and waits until it reports ready (or exits). */
export async function startServe(env: Record<string, string | undefined>): Promise<ServeProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [WARDEN_BIN, 'serve'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      WARDEN_PORT: String(port),
      WARDEN_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.stdout.resume();
  const stop = async () => {
    // A child ended by a signal has exitCode null and signalCode set: waiting for 'exit' again
    // would hang (it can happen when SIGTERM lands before serve has installed its handler).
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    return code;
  };
  after(stop);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`warden serve did not become ready:\n${err}`)), 20_000);
    const check = () => {
      if (/Warden is ready/.test(err) && /\n\n$/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`warden serve exited with ${code}:\n${err}`), { output: err, code }));
    });
  });
  return { child, url: `http://127.0.0.1:${port}`, output: () => err, stop };
}
