import { z } from 'zod';
import {
  auditQuerySchema,
  inclusionProof,
  listCheckpoints,
  queryEvents,
  storedLedgerPublicKey,
} from '../../audit/index.ts';
import { type AnyRoute, defineRoute } from '../route.ts';
import type { Warden } from '../warden.ts';

/** Who may read the ledger. Nobody may write or delete through the API: there are no such routes. */
const LEDGER_READERS = ['admin', 'security_analyst', 'auditor'] as const;

const eventSchema = z
  .object({
    id: z.string(),
    time: z.number(),
    type: z.string(),
    partition: z.string(),
    seq: z.number(),
    actor: z.record(z.string(), z.unknown()),
    action: z.string(),
    outcome: z.string(),
    prev_hash: z.string(),
    hash: z.string(),
  })
  .catchall(z.unknown());

const checkpointSchema = z.object({
  partition: z.string(),
  size: z.number(),
  time: z.number(),
  root_hash: z.string(),
  note: z.string().describe('C2SP signed note (tlog-checkpoint body, Ed25519 signature line)'),
});

/** Read-only admin API over the audit ledger. */
export function auditRoutes(warden: Warden): AnyRoute[] {
  const db = warden.store.db;
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/audit/events',
      tag: 'audit',
      summary: 'Search audit events, newest first (filters and cursor paging)',
      auth: LEDGER_READERS,
      query: auditQuerySchema,
      response: {
        status: 200,
        schema: z.object({ items: z.array(eventSchema), next_cursor: z.string().nullable() }),
      },
      handler: ({ query }) => queryEvents(db, query),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/audit/events/:id/proof',
      tag: 'audit',
      summary: 'RFC 9162 inclusion proof of one event in a signed checkpoint',
      auth: LEDGER_READERS,
      params: z.object({ id: z.uuid() }).strict(),
      response: {
        status: 200,
        schema: z.object({
          event: eventSchema,
          leaf_index: z.number(),
          tree_size: z.number(),
          inclusion_path: z.array(z.string()),
          checkpoint: z.string(),
        }),
      },
      handler: ({ params }) => inclusionProof(db, params.id),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/audit/checkpoints',
      tag: 'audit',
      summary: 'Signed checkpoints of the ledger, newest first',
      auth: LEDGER_READERS,
      query: z
        .object({
          partition: z.string().min(1).max(64).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        })
        .strict(),
      response: { status: 200, schema: z.object({ items: z.array(checkpointSchema) }) },
      handler: async ({ query }) => ({ items: await listCheckpoints(db, query) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/audit/public-key',
      tag: 'audit',
      summary: 'The ledger signing key as a C2SP verifier key (keep a trusted copy for offline verify)',
      auth: LEDGER_READERS,
      response: {
        status: 200,
        schema: z.object({ public_key: z.string(), algorithm: z.literal('Ed25519') }),
      },
      handler: async () => ({ public_key: await storedLedgerPublicKey(db), algorithm: 'Ed25519' as const }),
    }),
  ];
}
