import { z } from 'zod';
import {
  sinkApiSchema,
  sinkDefinitionSchema,
  sinkPatchSchema,
  sinkStatusApiSchema,
  sinkToApi,
  statusToApi,
} from '../../export/index.ts';
import { actorOf } from '../../identity/index.ts';
import { type AnyRoute, defineRoute } from '../route.ts';
import type { Warden } from '../warden.ts';

const nameParams = z.object({ name: z.string().min(1).max(63) }).strict();
const READERS = ['admin', 'security_analyst'] as const;

/** Admin API for SIEM export sinks: CRUD (admin), health and lag (admin, security_analyst). */
export function exportRoutes(warden: Warden): AnyRoute[] {
  const { exporter } = warden;
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/export/sinks',
      tag: 'export',
      summary: 'List export sinks (secrets are never returned)',
      auth: READERS,
      response: { status: 200, schema: z.object({ items: z.array(sinkApiSchema) }) },
      handler: async () => ({ items: (await exporter.listSinks()).map(sinkToApi) }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/export/sinks',
      tag: 'export',
      summary: 'Create an export sink (syslog, kafka, splunk_hec, webhook, file)',
      auth: ['admin'],
      body: sinkDefinitionSchema,
      response: { status: 201, schema: sinkApiSchema },
      handler: async ({ body, caller }) =>
        sinkToApi(await exporter.createSink(body, actorOf(caller), caller.request)),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/export/sinks/:name',
      tag: 'export',
      summary: 'Show an export sink',
      auth: READERS,
      params: nameParams,
      response: { status: 200, schema: sinkApiSchema },
      handler: async ({ params }) => sinkToApi(await exporter.getSink(params.name)),
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/export/sinks/:name',
      tag: 'export',
      summary: 'Change an export sink (omitted secrets keep their values; name and type are fixed)',
      auth: ['admin'],
      params: nameParams,
      body: sinkPatchSchema,
      response: { status: 200, schema: sinkApiSchema },
      handler: async ({ params, body, caller }) =>
        sinkToApi(await exporter.updateSink(params.name, body, actorOf(caller), caller.request)),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/export/sinks/:name',
      tag: 'export',
      summary: 'Delete an export sink and its cursors',
      auth: ['admin'],
      params: nameParams,
      response: { status: 204 },
      handler: async ({ params, caller }) => {
        await exporter.deleteSink(params.name, actorOf(caller), caller.request);
        return undefined;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/export/status',
      tag: 'export',
      summary: 'Health and lag of every export sink',
      auth: READERS,
      response: { status: 200, schema: z.object({ items: z.array(sinkStatusApiSchema) }) },
      handler: async () => ({ items: (await exporter.status()).map(statusToApi) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/export/sinks/:name/status',
      tag: 'export',
      summary: 'Health and lag of one export sink (events and seconds behind the ledger head)',
      auth: READERS,
      params: nameParams,
      response: { status: 200, schema: sinkStatusApiSchema },
      handler: async ({ params }) => statusToApi((await exporter.status(params.name))[0]!),
    }),
  ];
}
