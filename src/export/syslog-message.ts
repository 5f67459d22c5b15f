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

/**
 * Builds one RFC 5424 message for an event: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
 * [warden@PEN …] BOM MSG`. MSGID is the event type; the SD element carries the stable event id and
 * chain position so a receiver can de-duplicate and check order without parsing MSG.
 */
export function syslogMessage(event: AuditEvent, msg: string, options: SyslogMessageOptions): string {
  const pri = options.facility * 8 + SYSLOG_SEVERITY[severityOf(event)];
  const params: [string, string | undefined][] = [
    ['id', event.id],
    ['partition', event.partition],
    ['seq', String(event.seq)],
    ['type', event.type],
    ['outcome', event.outcome],
    ['actor', `${event.actor.type}:${event.actor.id}`],
    ['agent', event.actor.type === 'agent' ? event.actor.id : undefined],
  ];
  const sd = `[${wardenSdId(options.enterpriseNumber)}${params
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([k, v]) => ` ${sdName(k)}="${sdEscape(v)}"`)
    .join('')}]`;
  return [
    `<${pri}>1`,
    syslogTimestamp(event.time),
    headerField(options.hostname, SYSLOG_LIMITS.hostname),
    headerField(options.appName, SYSLOG_LIMITS.appName),
    headerField(options.procId, SYSLOG_LIMITS.procId),
    headerField(event.type, SYSLOG_LIMITS.msgId),
    sd,
    `${BOM}${msg}`,
  ].join(' ');
}

/** RFC 6587 §3.4.1 octet-counting frame: `MSG-LEN SP SYSLOG-MSG`, the length in octets. */
export function octetFrame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}
