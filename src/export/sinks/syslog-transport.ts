import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import type { SyslogSinkDefinition } from '../sink-definition.ts';
import { octetFrameText, SyslogFormatter } from '../syslog-message.ts';
import { type OutboundEvent, SinkError, type SinkTransport } from './transport.ts';

const CONNECT_TIMEOUT_MS = 5000;

/**
 * Syslog over TCP (RFC 6587 octet counting), TLS (RFC 5425) or UDP (RFC 5426, best effort). TCP and
 * TLS give no acknowledgement, so a batch counts as delivered only once the connection has stayed up
 * `confirmDelayMs` after it was written; a reset in that window makes the exporter resend.
 */
export class SyslogTransport implements SinkTransport {
  readonly confirmDelayMs: number;
  #generation = 0;
  readonly #def: SyslogSinkDefinition;
  readonly #formatter: SyslogFormatter;
  readonly #clientKey: string | undefined;
  #socket: Socket | undefined;
  #connecting: Promise<Socket> | undefined;
  #udp: UdpSocket | undefined;
  #lastError: SinkError | undefined;

  constructor(def: SyslogSinkDefinition, confirmDelayMs: number) {
    this.#def = def;
    this.#clientKey = def.tls?.clientKey;
    this.confirmDelayMs = def.transport === 'udp' ? 0 : confirmDelayMs;
    this.#formatter = new SyslogFormatter({
      facility: def.facility,
      hostname: def.hostname ?? osHostname(),
      appName: def.appName,
      procId: String(process.pid),
      enterpriseNumber: def.enterpriseNumber,
    });
  }

  get generation(): number {
    return this.#generation;
  }

  /** The RFC 5424 message for one event (exposed for tests and the benchmark). */
  message(item: OutboundEvent): string {
    return this.#formatter.format(item.event, item.formatted.text);
  }

  async send(batch: OutboundEvent[]): Promise<void> {
    if (this.#def.transport === 'udp') return this.#sendUdp(batch);
    const socket = await this.#connected();
    let text = '';
    for (const item of batch) text += octetFrameText(this.message(item));
    const frames = Buffer.from(text, 'utf8');
    await new Promise<void>((resolve, reject) => {
      socket.write(frames, (err) => {
        if (err) reject(this.#lost(socket, err));
        else resolve();
      });
    });
    if (this.#socket !== socket)
      throw this.#lastError ?? new SinkError('ECONNRESET', 'syslog connection lost');
  }

  async #sendUdp(batch: OutboundEvent[]): Promise<void> {
    if (!this.#udp) {
      this.#udp = createSocket(this.#def.host.includes(':') ? 'udp6' : 'udp4');
      this.#udp.on('error', () => {});
    }
    const udp = this.#udp;
    for (const item of batch) {
      const datagram = Buffer.from(this.message(item), 'utf8');
      await new Promise<void>((resolve, reject) =>
        udp.send(datagram, this.#def.port, this.#def.host, (err) =>
          err
            ? reject(new SinkError((err as NodeJS.ErrnoException).code ?? 'ERR_UDP', 'udp send failed'))
            : resolve(),
        ),
      );
    }
  }

  #lost(socket: Socket, err: Error | undefined): SinkError {
    const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'ECONNRESET';
    const error = new SinkError(code, `syslog connection to ${this.#def.host}:${this.#def.port} lost`);
    if (this.#socket === socket) {
      this.#socket = undefined;
      this.#generation++;
      this.#lastError = error;
    }
    socket.destroy();
    return error;
  }

  #connected(): Promise<Socket> {
    if (this.#socket && !this.#socket.destroyed) return Promise.resolve(this.#socket);
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  #connect(): Promise<Socket> {
    const { host, port } = this.#def;
    return new Promise<Socket>((resolve, reject) => {
      let socket: Socket;
      const ready = 'secureConnect';
      if (this.#def.transport === 'tls') {
        const tls = this.#def.tls;
        socket = tlsConnect({
          host,
          port,
          servername: tls?.serverName ?? (/^[\d.:]+$/.test(host) ? undefined : host),
          ca: tls?.ca,
          cert: tls?.clientCert,
          key: this.#clientKey,
          rejectUnauthorized: tls?.rejectUnauthorized ?? true,
          minVersion: 'TLSv1.2',
        });
      } else {
        socket = netConnect({ host, port });
      }
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new SinkError('ETIMEDOUT', `syslog connection to ${host}:${port} timed out`));
      }, CONNECT_TIMEOUT_MS);
      const onError = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(
          new SinkError(
            (err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED',
            `cannot connect to syslog at ${host}:${port}`,
          ),
        );
      };
      socket.once('error', onError);
      socket.once(this.#def.transport === 'tls' ? ready : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 10_000);
        // The receiver never sends anything on a syslog connection: data or FIN means it is going away.
        socket.on('data', () => {});
        socket.on('end', () =>
          this.#lost(socket, Object.assign(new Error('closed'), { code: 'ECONNRESET' })),
        );
        socket.on('error', (err) => this.#lost(socket, err));
        socket.on('close', () =>
          this.#lost(socket, Object.assign(new Error('closed'), { code: 'ECONNRESET' })),
        );
        this.#socket = socket;
        resolve(socket);
      });
    });
  }

  async close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      await new Promise<void>((resolve) => {
        socket.end(() => resolve());
        setTimeout(resolve, 1000).unref();
      });
      socket.destroy();
    }
    this.#udp?.close();
    this.#udp = undefined;
  }
}
