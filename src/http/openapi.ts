import { z } from 'zod';
import type { AnyRoute } from './route.ts';

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const s = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete s.$schema;
  return s;
}

const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', description: 'stable error code, e.g. ERR_AGENT_NOT_FOUND' },
    instance: { type: 'string' },
    'invalid-params': {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, reason: { type: 'string' } } },
    },
  },
};

/** Builds the OpenAPI 3.1 document from the registered routes' schemas. */
export function buildOpenApi(
  routes: AnyRoute[],
  info: { version: string; serverUrl: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, schema] of [
      ['path', route.params],
      ['query', route.query],
    ] as const) {
      if (!schema) continue;
      const js = jsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, prop] of Object.entries(js.properties ?? {})) {
        parameters.push({
          name,
          in: where,
          required: where === 'path' || (js.required ?? []).includes(name),
          schema: prop,
        });
      }
    }
    const responses: Record<string, unknown> = {
      [String(route.response.status)]: {
        description: route.response.description ?? 'Success',
        ...(route.response.schema
          ? { content: { 'application/json': { schema: jsonSchema(route.response.schema, 'output') } } }
          : {}),
      },
      default: {
        description: 'Error',
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      },
    };
    const operation: Record<string, unknown> = {
      summary: route.summary,
      tags: [route.tag],
      operationId: `${route.method.toLowerCase()}${path.replace(/[{}]/g, '').replace(/[/_.-]+(\w)/g, (_m, c: string) => c.toUpperCase())}`,
      parameters,
      responses,
      security: route.auth === 'public' ? [] : [{ apiToken: [] }],
      'x-roles': route.auth === 'public' ? [] : route.auth,
    };
    if (route.body) {
      operation.requestBody = {
        required: true,
        content: { 'application/json': { schema: jsonSchema(route.body, 'input') } },
      };
    }
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Warden admin API',
      version: info.version,
      description: 'Identity, access and audit control plane for AI agents.',
    },
    servers: [{ url: info.serverUrl }],
    components: {
      securitySchemes: {
        apiToken: { type: 'http', scheme: 'bearer', description: 'A Warden API token (wdn_…)' },
      },
      schemas: { Problem: problemSchema },
    },
    paths,
  };
}
