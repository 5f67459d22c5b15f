import { AUDIT_EVENT_TYPES, type AuditEvent } from '../../audit/index.ts';
import { agentOf, NUMERIC_SEVERITY, personOf, severityOf } from './classify.ts';
import { type ProductInfo, WARDEN_PRODUCT } from './product.ts';

/** Escapes a CEF header field: backslash and pipe; line breaks cannot appear in a header. */
export function cefHeaderEscape(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
}

/** Escapes a CEF extension value: backslash, equals sign and line breaks. */
export function cefExtensionEscape(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/=/g, '\\=')
    .replace(/\r\n|\n/g, '\\n')
    .replace(/\r/g, '\\r');
}

function customString(ext: [string, string][], n: number, label: string, value: string | undefined): void {
  if (value === undefined || value === '') return;
  ext.push([`cs${n}Label`, label], [`cs${n}`, value]);
}

/**
 * Formats a ledger event as one CEF:0 line:
 * `CEF:0|Vendor|Product|Version|EventClassID|Name|Severity|ext`, severity 0–10, the event type as
 * the class id, the event id as `externalId` for de-duplication.
 */
export function toCef(event: AuditEvent, product: ProductInfo = WARDEN_PRODUCT): string {
  const person = personOf(event);
  const agent = agentOf(event);
  const ext: [string, string][] = [
    ['rt', String(event.time)],
    ['externalId', event.id],
    ['act', event.action],
    ['outcome', event.outcome],
  ];
  if (person) ext.push(['suid', person.id]);
  if (person?.name) ext.push(['suser', person.name]);
  if (!person) ext.push(['suid', event.actor.id]);
  if (event.request?.source_ip) ext.push(['src', event.request.source_ip]);
  if (event.request?.user_agent) ext.push(['requestClientApplication', event.request.user_agent]);
  if (event.request?.node) ext.push(['dvchost', event.request.node]);
  if (event.resource?.id) ext.push(['duid', event.resource.id]);
  if (event.resource?.name) ext.push(['duser', event.resource.name]);
  if (event.error_code) ext.push(['reason', event.error_code]);
  customString(ext, 1, 'agentId', agent?.id);
  customString(ext, 2, 'intent', event.intent?.text ?? event.intent?.goal);
  customString(ext, 3, 'policies', event.decision?.policies?.join(','));
  customString(ext, 4, 'partition', event.partition);
  customString(ext, 5, 'taskId', event.intent?.task_id);
  customString(ext, 6, 'resourceType', event.resource?.type);
  ext.push(['cn1Label', 'seq'], ['cn1', String(event.seq)]);
  if (event.latency_ms !== undefined)
    ext.push(['cn2Label', 'latencyMs'], ['cn2', String(Math.round(event.latency_ms))]);
  if (event.decision) ext.push(['cat', event.decision.effect]);
  const header = [
    'CEF:0',
    cefHeaderEscape(product.vendor),
    cefHeaderEscape(product.name),
    cefHeaderEscape(product.version),
    cefHeaderEscape(event.type),
    cefHeaderEscape(AUDIT_EVENT_TYPES[event.type]),
    String(NUMERIC_SEVERITY[severityOf(event)]),
  ].join('|');
  return `${header}|${ext.map(([k, v]) => `${k}=${cefExtensionEscape(v)}`).join(' ')}`;
}
