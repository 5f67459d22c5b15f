import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Throwaway CA and server certificate for 127.0.0.1 / localhost, made with the openssl CLI. */
export function makeTlsFiles(dir: string): {
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
  clientCert: string;
  clientKey: string;
} {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Warden Test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  run(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=localhost',
  );
  writeFileSync(
    join(dir, 'ext.cnf'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  );
  // A client certificate from the same CA, for mutual TLS.
  run(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'client.key',
    '-out',
    'client.csr',
    '-subj',
    '/CN=warden-exporter',
  );
  writeFileSync(join(dir, 'client.cnf'), 'extendedKeyUsage=clientAuth\n');
  run(
    'x509',
    '-req',
    '-in',
    'client.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'client.pem',
    '-days',
    '2',
    '-extfile',
    'client.cnf',
  );
  return {
    clientCert: readFileSync(join(dir, 'client.pem'), 'utf8'),
    clientKey: readFileSync(join(dir, 'client.key'), 'utf8'),
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
  };
}

/**
 * A real rsyslogd, run by the test as a child process with its own config: imtcp on a loopback
 * port (plain or TLS via gtls), writing every received message's raw text to `out.log`, one per
 * line, and rsyslog's own parse of the RFC 5424 header fields to `parsed.log`.
 */
export class Rsyslog {
  readonly dir: string;
  readonly port: number;
  readonly out: string;
  readonly parsed: string;
  /** The imudp port, when started with `udp`. */
  udpPort = 0;
  #child: ChildProcess | undefined;

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
    this.out = join(dir, 'out.log');
    this.parsed = join(dir, 'parsed.log');
  }

  static async start(
    dir: string,
    tls?: { caFile: string; certFile: string; keyFile: string },
    options: { parsedFields?: boolean; requireClientCert?: boolean; udp?: boolean } = {},
  ): Promise<Rsyslog> {
    const r = new Rsyslog(dir, await freePort());
    r.udpPort = options.udp ? await freePort() : 0;
    const globalTls = tls
      ? ` DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="${tls.caFile}" DefaultNetstreamDriverCertFile="${tls.certFile}" DefaultNetstreamDriverKeyFile="${tls.keyFile}"`
      : '';
    // x509/name with a permitted peer: rsyslog refuses clients without a valid certificate for it.
    const authMode = options.requireClientCert
      ? 'StreamDriver.Authmode="x509/name" PermittedPeer=["warden-exporter"]'
      : 'StreamDriver.Authmode="anon"';
    const moduleTls = tls ? ` StreamDriver.Name="gtls" StreamDriver.Mode="1" ${authMode}` : '';
    writeFileSync(
      join(dir, 'rsyslog.conf'),
      [
        `global(workDirectory="${dir}" maxMessageSize="256k"${globalTls})`,
        `module(load="imtcp"${moduleTls})`,
        `input(type="imtcp" port="${r.port}" address="127.0.0.1")`,
        options.udp
          ? `module(load="imudp")\ninput(type="imudp" port="${r.udpPort}" address="127.0.0.1")`
          : '',
        'template(name="raw" type="string" string="%rawmsg%\\n")',
        'template(name="fields" type="string" string="%hostname% %app-name% %procid% %msgid% %pri%\\n")',
        `action(type="omfile" file="${r.out}" template="raw")`,
        options.parsedFields === false ? '' : `action(type="omfile" file="${r.parsed}" template="fields")`,
        '',
      ].join('\n'),
    );
    await r.restart();
    return r;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Starts rsyslogd (again) on the same port and files; resolves once it accepts connections. */
  async restart(): Promise<void> {
    const child = spawn(
      '/usr/sbin/rsyslogd',
      ['-n', '-f', join(this.dir, 'rsyslog.conf'), '-i', join(this.dir, 'rsyslog.pid')],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += String(d);
    });
    this.#child = child;
    const until = Date.now() + 10_000;
    while (!(await canConnect(this.port))) {
      if (child.exitCode !== null || Date.now() > until) {
        throw new Error(`rsyslogd did not start: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops rsyslogd with SIGTERM and waits for it to exit (it flushes its queues first). */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    if (child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  }

  /** Every raw message rsyslog wrote so far. */
  messages(): string[] {
    if (!existsSync(this.out)) return [];
    return readFileSync(this.out, 'utf8').split('\n').filter(Boolean);
  }

  /** rsyslog's own parse of each message: hostname, app-name, procid, msgid, pri. */
  parsedFields(): string[][] {
    if (!existsSync(this.parsed)) return [];
    return readFileSync(this.parsed, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '));
  }
}

/** A parsed RFC 5424 message. */
export interface Syslog5424 {
  pri: number;
  version: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sd: Record<string, Record<string, string>>;
  msg: string;
  bom: boolean;
}

/** Parses an RFC 5424 message strictly (SD-PARAM escapes included); throws on anything malformed. */
export function parse5424(text: string): Syslog5424 {
  const head = /^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(text);
  if (!head) throw new Error(`not RFC 5424: ${text.slice(0, 80)}`);
  let i = head[0].length;
  const sd: Record<string, Record<string, string>> = {};
  if (text[i] === '-') {
    i++;
  } else {
    while (text[i] === '[') {
      i++;
      const idEnd = text.slice(i).search(/[ \]]/);
      const id = text.slice(i, i + idEnd);
      i += idEnd;
      const params: Record<string, string> = {};
      while (text[i] === ' ') {
        i++;
        const eq = text.indexOf('="', i);
        const name = text.slice(i, eq);
        i = eq + 2;
        let value = '';
        while (text[i] !== '"') {
          if (i >= text.length) throw new Error('unterminated SD-PARAM');
          if (text[i] === '\\' && ['"', '\\', ']'].includes(text[i + 1] as string)) {
            value += text[i + 1];
            i += 2;
          } else {
            if (text[i] === ']') throw new Error('unescaped ] in PARAM-VALUE');
            value += text[i];
            i++;
          }
        }
        i++;
        params[name] = value;
      }
      if (text[i] !== ']') throw new Error(`bad SD element at ${i}`);
      i++;
      sd[id] = params;
    }
  }
  let msg = text.slice(i);
  if (msg.startsWith(' ')) msg = msg.slice(1);
  const bom = msg.startsWith('\uFEFF');
  return {
    pri: Number(head[1]),
    version: Number(head[2]),
    timestamp: head[3] as string,
    hostname: head[4] as string,
    appName: head[5] as string,
    procId: head[6] as string,
    msgId: head[7] as string,
    sd,
    msg: bom ? msg.slice(1) : msg,
    bom,
  };
}
