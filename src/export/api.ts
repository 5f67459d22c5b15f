import { z } from 'zod';
import type { SinkStatus } from './exporter.ts';
import { EXPORT_FORMATS } from './formats/format.ts';
import type { SinkView } from './sink-store.ts';

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/** A sink as the admin API returns it (snake_case, ISO times, never a secret). */
export const sinkApiSchema = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(['syslog', 'kafka', 'splunk_hec', 'webhook', 'file']),
  format: z.enum(EXPORT_FORMATS),
  enabled: z.boolean(),
  config: z.record(z.string(), z.unknown()).describe('the definition without its secret members'),
  secrets_set: z.array(z.string()).describe('names of the secret members that hold a value'),
  source: z.enum(['api', 'config']),
  version: z.number().int(),
  created_at: z.string(),
  updated_at: z.string(),
});

/** A sink's health and lag as the admin API returns them. */
export const sinkStatusApiSchema = z.object({
  name: z.string(),
  type: z.string(),
  enabled: z.boolean(),
  running: z.boolean().describe('a delivery loop runs for this sink on the answering node'),
  active: z
    .boolean()
    .describe('the answering node holds the sink lease and delivers (else another node does)'),
  health: z.enum(['healthy', 'degraded', 'failing', 'disabled']),
  last_error_code: z.string().nullable(),
  last_error_at: z.string().nullable(),
  last_success_at: z.string().nullable(),
  consecutive_failures: z.number().int(),
  delivered: z.number().int(),
  lag: z.object({
    events: z.number().int().describe('ledger events not yet confirmed delivered'),
    seconds: z.number().describe('age of the oldest undelivered event'),
  }),
});

/** Request body of PATCH: any subset of the sink's definition (validated against its type). */
export const sinkPatchSchema = z.record(z.string(), z.unknown());

/** The API representation of a sink. */
export function sinkToApi(view: SinkView): z.infer<typeof sinkApiSchema> {
  return {
    id: view.id,
    name: view.name,
    type: view.type,
    format: view.format as (typeof EXPORT_FORMATS)[number],
    enabled: view.enabled,
    config: view.config,
    secrets_set: view.secretsSet,
    source: view.source,
    version: view.version,
    created_at: new Date(view.createdAt).toISOString(),
    updated_at: new Date(view.updatedAt).toISOString(),
  };
}

/** The API representation of a sink's status. */
export function statusToApi(s: SinkStatus): z.infer<typeof sinkStatusApiSchema> {
  return {
    name: s.name,
    type: s.type,
    enabled: s.enabled,
    running: s.running,
    active: s.active,
    health: s.health,
    last_error_code: s.lastErrorCode ?? null,
    last_error_at: iso(s.lastErrorAt),
    last_success_at: iso(s.lastSuccessAt),
    consecutive_failures: s.consecutiveFailures,
    delivered: s.delivered,
    lag: s.lag,
  };
}
