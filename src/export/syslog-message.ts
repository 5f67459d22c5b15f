import type { AuditEvent } from '../audit/index.ts';
import { SYSLOG_SEVERITY, severityOf } from './formats/classify.ts';

/**
 * The default private enterprise number in Warden's SD-ID (`warden@32473`). 32473 is the number
 * IANA reserves for documentation (RFC 5612); an organisation with its own PEN sets
 * `enterpriseNumber` on the sink.
 */
export const DEFAULT_ENTERPRISE_NUMBER = 32473;

/** RFC 5424 §6 field limits (octets, PRINTUSASCII). */
export const SYSLOG_LIMITS = { hostname: 255, appName: 48, procId: 128, msgId: 32, sdName: 32 } as const;

/** The byte order mark that RFC 5424 requires before a UTF-8 MSG. */
const BOM = '\uFEFF';

/**
 * An RFC 5424 header field: printable US-ASCII (33–126) only, at most `max` characters, `-` when
 * empty (the NILVALUE).
 */
export function headerField(value: string | undefined, max: number): string {
  const clean = (value ?? '').replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return clean === '' ? '-' : clean;
}

/** An SD-NAME (SD-ID or PARAM-NAME): printable US-ASCII except `=`, space, `]`, `"`; ≤ 32. */
export function sdName(value: string): string {
  const clean = value.replace(/[^\x21-\x7e]|[=\]"]/g, '').slice(0, SYSLOG_LIMITS.sdName);
  if (clean === '') throw new TypeError('an SD-NAME cannot be empty');
  return clean;
}

/** Escapes an SD PARAM-VALUE (RFC 5424 §6.3.3): `"`, `\` and `]` get a backslash. */
export function sdEscape(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/**
 * RFC 3339 timestamp as RFC 5424 §6.2.3 wants it: upper-case `T` and `Z`, at most 6 fraction
 * digits (epoch milliseconds give 3).
 */
export function syslogTimestamp(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

export interface SyslogMessageOptions {
  /** RFC 5424 facility, 0–23. Default 13 (log audit). */
  facility: number;
  hostname: string;
  appName: string;
  procId: string;
  enterpriseNumber: number;
}

/** The SD-ID of Warden's structured data element. */
export function wardenSdId(enterpriseNumber: number): string {
  return sdName(`warden@${enterpriseNumber}`);
}

const NEEDS_SD_ESCAPE = /["\\\]]/;
const PARAM_NAMES = ['id', 'partition', 'seq', 'type', 'outcome', 'actor', 'agent'].map(sdName);

/**
 * Renders RFC 5424 messages for one sender: the constant header fields (HOSTNAME, APP-NAME,
 * PROCID) and the SD-ID are checked and cut to their limits once.
 */
export class SyslogFormatter {
  readonly #facility: number;
  readonly #origin: string;
  readonly #sdId: string;
  readonly #msgIds = new Map<string, string>();

  constructor(options: SyslogMessageOptions) {
    this.#facility = options.facility;
    this.#origin = [
      headerField(options.hostname, SYSLOG_LIMITS.hostname),
      headerField(options.appName, SYSLOG_LIMITS.appName),
      headerField(options.procId, SYSLOG_LIMITS.procId),
    ].join(' ');
    this.#sdId = wardenSdId(options.enterpriseNumber);
  }

  /**
   * One message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [warden@PEN …] BOM MSG`. MSGID is
   * the event type; the SD element carries the stable event id and chain position so a receiver
   * can de-duplicate and check order without parsing MSG.
   */
  format(event: AuditEvent, msg: string): string {
    const pri = this.#facility * 8 + SYSLOG_SEVERITY[severityOf(event)];
    let msgId = this.#msgIds.get(event.type);
    if (msgId === undefined) {
      msgId = headerField(event.type, SYSLOG_LIMITS.msgId);
      this.#msgIds.set(event.type, msgId);
    }
    const values = [
      event.id,
      event.partition,
      String(event.seq),
      event.type,
      event.outcome,
      `${event.actor.type}:${event.actor.id}`,
      event.actor.type === 'agent' ? event.actor.id : undefined,
    ];
    let sd = `[${this.#sdId}`;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === undefined) continue;
      sd += ` ${PARAM_NAMES[i]}="${NEEDS_SD_ESCAPE.test(v) ? sdEscape(v) : v}"`;
    }
    return `<${pri}>1 ${syslogTimestamp(event.time)} ${this.#origin} ${msgId} ${sd}] ${BOM}${msg}`;
  }
}

/** Builds one RFC 5424 message for an event (see {@link SyslogFormatter.format}). */
export function syslogMessage(event: AuditEvent, msg: string, options: SyslogMessageOptions): string {
  return new SyslogFormatter(options).format(event, msg);
}

/** RFC 6587 §3.4.1 octet-counting frame as a string: `MSG-LEN SP SYSLOG-MSG`, length in octets. */
export function octetFrameText(message: string): string {
  return `${Buffer.byteLength(message, 'utf8')} ${message}`;
}

/** RFC 6587 §3.4.1 octet-counting frame: `MSG-LEN SP SYSLOG-MSG`, the length in octets. */
export function octetFrame(message: string): Buffer {
  return Buffer.from(octetFrameText(message), 'utf8');
}
