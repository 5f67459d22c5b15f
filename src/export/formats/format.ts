import type { AuditEvent } from '../../audit/index.ts';
import { toCef } from './cef.ts';
import { toEcs } from './ecs.ts';
import { toOcsf } from './ocsf.ts';
import { type ProductInfo, WARDEN_PRODUCT } from './product.ts';

/** The wire formats a sink can export in. `ocsf` is the default. */
export const EXPORT_FORMATS = ['ocsf', 'cef', 'ecs', 'json'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** One event rendered for a sink: its text, and the JSON value when the format is JSON. */
export interface FormattedEvent {
  text: string;
  json?: unknown;
}

/** Renders a ledger event in the given format. `json` is the stored event as is (raw). */
export function formatEvent(
  event: AuditEvent,
  format: ExportFormat,
  product: ProductInfo = WARDEN_PRODUCT,
): FormattedEvent {
  switch (format) {
    case 'cef':
      return { text: toCef(event, product) };
    case 'ecs': {
      const json = toEcs(event, product);
      return { text: JSON.stringify(json), json };
    }
    case 'json':
      return { text: JSON.stringify(event), json: event };
    default: {
      const json = toOcsf(event, product);
      return { text: JSON.stringify(json), json };
    }
  }
}
