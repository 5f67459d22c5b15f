import { isIP } from 'node:net';
import { z } from 'zod';
import { type Clock, InvalidRequestError } from '../core/index.ts';
import type { CedarTypes } from './cedar.ts';
import {
  ACTIONS,
  ENTITY_ATTRIBUTES,
  ENTITY_PARENTS,
  type EntityTypeName,
  fullType,
  hasAttributeType,
  isEntityType,
  shortType,
} from './schema.ts';

const idSchema = z.string().min(1).max(500);
const typeSchema = z.string().min(1).max(100);

const refSchema = z.object({ type: typeSchema, id: idSchema }).strict();

const attrValue = z.union([
  z.string().max(2000),
  z.number().int(),
  z.boolean(),
  z.array(z.string().max(2000)).max(100),
]);

/** An entity of a request: its type, id, parents (template, provider, group, server…) and attributes. */
const entitySchema = z
  .object({
    type: typeSchema,
    id: idSchema,
    parents: z.array(refSchema).max(50).optional(),
    attrs: z.record(z.string().max(100), attrValue).optional(),
  })
  .strict();

const contextSchema = z
  .object({
    intent: z
      .object({
        text: z.string().max(4000).optional(),
        task_id: z.string().max(200).optional(),
        goal: z.string().max(1000).optional(),
      })
      .strict()
      .optional(),
    args: z.record(z.string().max(200), z.unknown()).optional(),
    delegation: z
      .object({
        user: idSchema.optional(),
        agents: z.array(idSchema).max(20).optional(),
        /** The delegation grant the request acts under. */
        grant: idSchema.optional(),
      })
      .strict()
      .optional(),
    risk_score: z.number().int().min(0).max(100).optional(),
    time: z.number().int().nonnegative().optional(),
    source_ip: z
      .string()
      .max(64)
      .refine((v) => isIP(v) !== 0, 'not an IP address')
      .optional(),
    attestation: z
      .object({
        verified: z.boolean(),
        level: z.string().max(100).optional(),
        claims: z.array(z.string().max(500)).max(100).optional(),
      })
      .strict()
      .optional(),
    approval: z
      .object({ state: z.enum(['none', 'pending', 'approved', 'denied', 'expired']) })
      .strict()
      .optional(),
    scopes: z.array(z.string().max(300)).max(200).optional(),
    http: z
      .object({ method: z.string().max(20), host: z.string().max(300), path: z.string().max(4000) })
      .strict()
      .optional(),
  })
  .strict();

/** The input of a decision: who, doing what, to what, in which circumstances. */
export const decisionRequestSchema = z
  .object({
    principal: entitySchema,
    action: z.string().min(1).max(100),
    resource: entitySchema,
    context: contextSchema.optional(),
    /** Further entities the policies may traverse (a template's provider, a group's parent…). */
    entities: z.array(entitySchema).max(100).optional(),
  })
  .strict();

export type DecisionRequest = z.input<typeof decisionRequestSchema>;
export type RequestEntity = z.infer<typeof entitySchema>;
export type RequestContext = z.infer<typeof contextSchema>;
export type EntityRef = z.infer<typeof refSchema>;

/** A request checked and normalised: the context has every field (time filled from the clock). */
export interface NormalizedRequest {
  principal: RequestEntity;
  action: string;
  resource: RequestEntity;
  context: RequestContext & { time: number };
  entities: RequestEntity[];
}

/** What Cedar receives: a request, its entities, and the keys the policy index slices by. */
export interface CedarRequest {
  principal: CedarTypes.EntityUidJson;
  action: CedarTypes.EntityUidJson;
  resource: CedarTypes.EntityUidJson;
  context: CedarTypes.Context;
  entities: CedarTypes.EntityJson[];
  /** Every ancestor (transitively) of the principal, as `Type::"id"` keys. */
  principalAncestors: string[];
  resourceType: string;
}

/** The key of an entity uid inside the policy index: `Warden::Agent::"a1"`. */
export function uidKey(type: string, id: string): string {
  return `${fullType(type)}::${JSON.stringify(id)}`;
}

function checkType(type: string, where: string): EntityTypeName {
  if (!isEntityType(type)) {
    throw new InvalidRequestError(`unknown entity type ${JSON.stringify(type)}`, {
      code: 'ERR_POLICY_REQUEST_INVALID',
      invalidParams: [{ name: where, reason: `unknown entity type ${JSON.stringify(type)}` }],
    });
  }
  return shortType(type) as EntityTypeName;
}

/**
 * Checks an entity against the Warden schema as Cedar's schema-based parsing would: a declared
 * type, parents of the types the schema allows, and only declared attributes of the declared types.
 * (Decisions run without the schema in the hot path: this check is what keeps them schema-exact.)
 */
function checkEntity(e: RequestEntity, where: string): void {
  const type = checkType(e.type, `${where}.type`);
  const allowedParents = ENTITY_PARENTS[type] ?? [];
  for (const [j, p] of (e.parents ?? []).entries()) {
    const parentType = checkType(p.type, `${where}.parents[${j}].type`);
    if (!allowedParents.includes(parentType)) {
      throw new InvalidRequestError(`a ${type} cannot be a member of a ${parentType}`, {
        code: 'ERR_POLICY_REQUEST_INVALID',
        invalidParams: [
          {
            name: `${where}.parents[${j}].type`,
            reason: allowedParents.length ? `one of ${allowedParents.join(', ')}` : 'no parents allowed',
          },
        ],
      });
    }
  }
  const declared = ENTITY_ATTRIBUTES[type] ?? {};
  for (const [name, value] of Object.entries(e.attrs ?? {})) {
    const kind = declared[name];
    if (!kind || !hasAttributeType(value, kind)) {
      throw new InvalidRequestError(`attribute ${name} of a ${type} is not in the Warden schema`, {
        code: 'ERR_POLICY_REQUEST_INVALID',
        invalidParams: [
          { name: `${where}.attrs.${name}`, reason: kind ? `expected ${kind}` : 'not a declared attribute' },
        ],
      });
    }
  }
}

/**
 * Validates a decision request (zod: shape and limits; the Warden schema: entity types and the
 * action's principal and resource types) and fills the context defaults.
 */
export function normalizeRequest(input: unknown, clock: Clock): NormalizedRequest {
  const parsed = decisionRequestSchema.safeParse(input);
  if (!parsed.success) {
    throw new InvalidRequestError('the decision request is malformed', {
      code: 'ERR_POLICY_REQUEST_INVALID',
      invalidParams: parsed.error.issues.map((i) => ({
        name: i.path.join('.') || 'request',
        reason: i.message,
      })),
    });
  }
  const r = parsed.data;
  const action = ACTIONS[r.action];
  if (!action) {
    throw new InvalidRequestError(`unknown action ${JSON.stringify(r.action)}`, {
      code: 'ERR_POLICY_REQUEST_INVALID',
      invalidParams: [{ name: 'action', reason: `one of ${Object.keys(ACTIONS).join(', ')}` }],
    });
  }
  const pType = checkType(r.principal.type, 'principal.type');
  const rType = checkType(r.resource.type, 'resource.type');
  if (!action.principals.includes(pType)) {
    throw new InvalidRequestError(`${r.action} does not apply to a ${pType} principal`, {
      code: 'ERR_POLICY_REQUEST_INVALID',
      invalidParams: [{ name: 'principal.type', reason: `one of ${action.principals.join(', ')}` }],
    });
  }
  if (!action.resources.includes(rType)) {
    throw new InvalidRequestError(`${r.action} does not apply to a ${rType} resource`, {
      code: 'ERR_POLICY_REQUEST_INVALID',
      invalidParams: [{ name: 'resource.type', reason: `one of ${action.resources.join(', ')}` }],
    });
  }
  const entities = r.entities ?? [];
  checkEntity(r.principal, 'principal');
  checkEntity(r.resource, 'resource');
  for (const [i, e] of entities.entries()) checkEntity(e, `entities[${i}]`);
  const norm = (e: RequestEntity): RequestEntity => ({ ...e, type: shortType(e.type) });
  return {
    principal: norm(r.principal),
    action: r.action,
    resource: norm(r.resource),
    context: { ...r.context, time: r.context?.time ?? clock.now() },
    entities: entities.map(norm),
  };
}

function entityJson(e: RequestEntity): CedarTypes.EntityJson {
  return {
    uid: { type: fullType(e.type), id: e.id },
    attrs: { ...(e.attrs ?? {}) },
    parents: (e.parents ?? []).map((p) => ({ type: fullType(p.type), id: p.id })),
  };
}

function argText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

/** Builds Cedar's request, entities and context from a normalised request. */
export function toCedarRequest(r: NormalizedRequest): CedarRequest {
  const byKey = new Map<string, CedarTypes.EntityJson>();
  const add = (e: RequestEntity) => {
    const key = uidKey(e.type, e.id);
    const existing = byKey.get(key);
    if (!existing) {
      byKey.set(key, entityJson(e));
      return;
    }
    // The same entity named twice: merge parents and attributes.
    const j = entityJson(e);
    existing.parents.push(...j.parents);
    Object.assign(existing.attrs, j.attrs);
  };
  add(r.principal);
  add(r.resource);
  for (const e of r.entities) add(e);
  // Parents named only by reference still exist as entities (with no attributes).
  for (const e of [...byKey.values()]) {
    for (const p of e.parents as CedarTypes.TypeAndId[]) {
      const key = uidKey(p.type, p.id);
      if (!byKey.has(key)) byKey.set(key, { uid: { type: p.type, id: p.id }, attrs: {}, parents: [] });
    }
  }
  const argsEntity: CedarTypes.EntityJson = {
    uid: { type: 'Warden::Args', id: 'request' },
    attrs: {},
    parents: [],
    tags: Object.fromEntries(Object.entries(r.context.args ?? {}).map(([k, v]) => [k, argText(v)])),
  };
  // Numeric arguments also as Long tags (rounded up, so `> N` comparisons never under-count).
  const numArgsEntity: CedarTypes.EntityJson = {
    uid: { type: 'Warden::NumArgs', id: 'request' },
    attrs: {},
    parents: [],
    tags: Object.fromEntries(
      Object.entries(r.context.args ?? {}).flatMap(([k, v]) => {
        const n =
          typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
        return Number.isFinite(n) && Math.abs(n) < 2 ** 53 ? [[k, Math.ceil(n)]] : [];
      }),
    ),
  };
  const c = r.context;
  const t = new Date(c.time);
  const context: CedarTypes.Context = {
    intent: { text: c.intent?.text ?? '', task_id: c.intent?.task_id ?? '', goal: c.intent?.goal ?? '' },
    args: { __entity: { type: 'Warden::Args', id: 'request' } },
    num_args: { __entity: { type: 'Warden::NumArgs', id: 'request' } },
    delegation: {
      ...(c.delegation?.user ? { user: { __entity: { type: 'Warden::User', id: c.delegation.user } } } : {}),
      agents: (c.delegation?.agents ?? []).map((id) => ({ __entity: { type: 'Warden::Agent', id } })),
      depth: c.delegation?.agents?.length ?? 0,
      ...(c.delegation?.grant ? { grant: c.delegation.grant } : {}),
    },
    risk_score: c.risk_score ?? 0,
    time: { epoch_ms: c.time, hour: t.getUTCHours(), weekday: t.getUTCDay() },
    attestation: {
      verified: c.attestation?.verified ?? false,
      level: c.attestation?.level ?? '',
      claims: c.attestation?.claims ?? [],
    },
    approval: { state: c.approval?.state ?? 'none' },
    scopes: c.scopes ?? [],
  };
  if (c.source_ip) context.source_ip = { __extn: { fn: 'ip', arg: c.source_ip } };
  if (c.http) context.http = { ...c.http };
  // Transitive ancestors of the principal, for slicing.
  const ancestors = new Set<string>();
  const stack = [
    ...(byKey.get(uidKey(r.principal.type, r.principal.id))?.parents ?? []),
  ] as CedarTypes.TypeAndId[];
  while (stack.length > 0) {
    const p = stack.pop() as CedarTypes.TypeAndId;
    const key = uidKey(p.type, p.id);
    if (ancestors.has(key)) continue;
    ancestors.add(key);
    stack.push(...((byKey.get(key)?.parents ?? []) as CedarTypes.TypeAndId[]));
  }
  // Without the schema at evaluation time, the action hierarchy travels with the entities.
  const actionEntity: CedarTypes.EntityJson = {
    uid: { type: 'Warden::Action', id: r.action },
    attrs: {},
    parents: (ACTIONS[r.action]?.groups ?? []).map((g) => ({ type: 'Warden::Action', id: g })),
  };
  return {
    principal: { type: fullType(r.principal.type), id: r.principal.id },
    action: { type: 'Warden::Action', id: r.action },
    resource: { type: fullType(r.resource.type), id: r.resource.id },
    context,
    entities: [...byKey.values(), argsEntity, numArgsEntity, actionEntity],
    principalAncestors: [...ancestors].sort(),
    resourceType: fullType(r.resource.type),
  };
}
