import { z } from 'zod';
import { InvalidRequestError, WardenError } from '../core/index.ts';
import type { CedarTypes } from './cedar.ts';
import { cedar } from './cedar.ts';
import type { Decision } from './decision.ts';
import type { EntityDirectory } from './entity-directory.ts';
import type { PolicyEngine } from './policy-engine.ts';
import { staticPolicies } from './policy-set.ts';
import {
  type EntityRef,
  type NormalizedRequest,
  normalizeRequest,
  type RequestEntity,
  toCedarRequest,
} from './request.ts';
import {
  ACTIONS,
  ENTITY_ATTRIBUTES,
  type EntityTypeName,
  hasAttributeType,
  isEntityType,
  shortType,
  WARDEN_SCHEMA,
} from './schema.ts';

/**
 * OpenID AuthZEN Authorization API 1.0 over the Warden decision point: access evaluation,
 * evaluations (batch), subject/resource/action search and the PDP metadata. Pure functions from a
 * request body to a response body; the HTTP layer only routes.
 */

const AUTHZEN_TYPES: Record<string, EntityTypeName> = {
  agent: 'Agent',
  user: 'User',
  group: 'Group',
  provider: 'Provider',
  template: 'Template',
  server: 'Server',
  tool: 'Tool',
  resource: 'Resource',
  prompt: 'Prompt',
  api: 'Api',
  endpoint: 'Endpoint',
  credential: 'Credential',
  scope: 'Scope',
};

/** Properties naming parents: `template`, `provider`, `server`, `api` (one id), `groups` (ids). */
const PARENT_PROPERTIES: Record<string, EntityTypeName> = {
  template: 'Template',
  provider: 'Provider',
  server: 'Server',
  api: 'Api',
};

const CONTEXT_KEYS = [
  'intent',
  'args',
  'delegation',
  'risk_score',
  'time',
  'source_ip',
  'attestation',
  'approval',
  'scopes',
  'http',
] as const;

const properties = z.record(z.string(), z.unknown());
const subjectSchema = z.object({
  type: z.string().min(1).max(100),
  id: z.string().min(1).max(500),
  properties: properties.optional(),
});
const resourceSchema = subjectSchema;
const actionSchema = z.object({ name: z.string().min(1).max(100), properties: properties.optional() });
const contextSchema = z.record(z.string(), z.unknown());

const evaluationSchema = z.object({
  subject: subjectSchema,
  action: actionSchema,
  resource: resourceSchema,
  context: contextSchema.optional(),
});

const itemSchema = z.object({
  subject: subjectSchema.optional(),
  action: actionSchema.optional(),
  resource: resourceSchema.optional(),
  context: contextSchema.optional(),
});

const SEMANTICS = ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'] as const;

const evaluationsSchema = itemSchema.extend({
  evaluations: z.array(itemSchema).optional(),
  options: z
    .object({ evaluations_semantic: z.enum(SEMANTICS).optional() })
    .catchall(z.unknown())
    .optional(),
});

const pageSchema = z
  .object({ token: z.string().max(200).optional(), limit: z.number().int().min(1).max(1000).optional() })
  .catchall(z.unknown())
  .optional();

const subjectSearchSchema = z.object({
  subject: z.object({ type: z.string().min(1).max(100), properties: properties.optional() }),
  action: actionSchema,
  resource: resourceSchema,
  context: contextSchema.optional(),
  page: pageSchema,
});

const resourceSearchSchema = z.object({
  subject: subjectSchema,
  action: actionSchema,
  resource: z.object({ type: z.string().min(1).max(100), properties: properties.optional() }),
  context: contextSchema.optional(),
  page: pageSchema,
});

const actionSearchSchema = z.object({
  subject: subjectSchema,
  resource: resourceSchema,
  context: contextSchema.optional(),
  page: pageSchema,
});

export type AuthzenSubject = z.infer<typeof subjectSchema>;
export type AuthzenEvaluationRequest = z.infer<typeof evaluationSchema>;
export interface AuthzenDecision {
  decision: boolean;
  context?: Record<string, unknown>;
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new InvalidRequestError(`the ${what} request body is malformed`, {
      code: 'ERR_AUTHZEN_INVALID',
      invalidParams: parsed.error.issues.map((i) => ({
        name: i.path.join('.') || 'body',
        reason: i.message,
      })),
    });
  }
  return parsed.data;
}

/** Maps an AuthZEN entity type (`agent`, `Agent`, `Warden::Agent`) to the schema's type. */
export function entityTypeOf(type: string, where: string): EntityTypeName {
  const mapped =
    AUTHZEN_TYPES[type] ?? (isEntityType(type) ? (shortType(type) as EntityTypeName) : undefined);
  if (!mapped) {
    throw new InvalidRequestError(`unknown entity type ${JSON.stringify(type)}`, {
      code: 'ERR_AUTHZEN_INVALID',
      invalidParams: [{ name: where, reason: `one of ${Object.keys(AUTHZEN_TYPES).join(', ')}` }],
    });
  }
  return mapped;
}

function toEntity(
  e: { type: string; id: string; properties?: Record<string, unknown> | undefined },
  where: string,
): RequestEntity {
  const type = entityTypeOf(e.type, `${where}.type`);
  const parents: EntityRef[] = [];
  const attrs: Record<string, string | number | boolean | string[]> = {};
  const declared = ENTITY_ATTRIBUTES[type] ?? {};
  for (const [name, value] of Object.entries(e.properties ?? {})) {
    const bad = (reason: string) =>
      new InvalidRequestError(`property ${name} of the ${where} is invalid`, {
        code: 'ERR_AUTHZEN_INVALID',
        invalidParams: [{ name: `${where}.properties.${name}`, reason }],
      });
    const parentType = PARENT_PROPERTIES[name];
    if (parentType) {
      if (typeof value !== 'string' || value === '') throw bad('a non-empty string id');
      parents.push({ type: parentType, id: value });
    } else if (name === 'groups') {
      if (!Array.isArray(value) || !value.every((g) => typeof g === 'string'))
        throw bad('an array of group ids');
      for (const g of value) parents.push({ type: 'Group', id: g });
    } else if (name === 'parents') {
      if (!Array.isArray(value)) throw bad('an array of {type, id}');
      for (const [i, p] of value.entries()) {
        const ref = z.object({ type: z.string(), id: z.string().min(1) }).safeParse(p);
        if (!ref.success) throw bad(`parents[${i}] must be {type, id}`);
        parents.push({
          type: entityTypeOf(ref.data.type, `${where}.properties.parents[${i}].type`),
          id: ref.data.id,
        });
      }
    } else if (declared[name]) {
      const kind = declared[name];
      if (!hasAttributeType(value, kind)) throw bad(`expected ${kind}`);
      attrs[name] = value as string | number | boolean | string[];
    }
    // Other properties are information for the caller's own records, not Warden attributes.
  }
  return {
    type,
    id: e.id,
    ...(parents.length ? { parents } : {}),
    ...(Object.keys(attrs).length ? { attrs } : {}),
  };
}

function toContext(context: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of CONTEXT_KEYS) if (context && context[k] !== undefined) out[k] = context[k];
  return out;
}

/** Maps an AuthZEN evaluation to a Warden decision request. */
export function toDecisionRequest(r: AuthzenEvaluationRequest): unknown {
  if (!ACTIONS[r.action.name]) {
    throw new InvalidRequestError(`unknown action ${JSON.stringify(r.action.name)}`, {
      code: 'ERR_AUTHZEN_INVALID',
      invalidParams: [{ name: 'action.name', reason: `one of ${Object.keys(ACTIONS).join(', ')}` }],
    });
  }
  return {
    principal: toEntity(r.subject, 'subject'),
    action: r.action.name,
    resource: toEntity(r.resource, 'resource'),
    context: toContext(r.context),
  };
}

/**
 * A Warden decision as an AuthZEN response. A permit that still needs a person's approval is
 * `decision: false` (a PEP that does not know about approvals must not proceed) with
 * `context.approval_required: true`.
 */
export function toAuthzenDecision(d: Decision): AuthzenDecision {
  return {
    decision: d.decision === 'permit' && !d.approval_required,
    context: {
      reason_admin: { en: d.reason },
      approval_required: d.approval_required,
      ...(d.approvers.length ? { approvers: d.approvers } : {}),
      policies: d.determining_policies.map((p) => p.id),
      ...(d.errors.length ? { errors: d.errors } : {}),
      policy_version: d.policy_version,
    },
  };
}

/** Called with each decision an evaluation made (to record it as a `policy.decision` event). */
export type DecisionListener = (request: NormalizedRequest, decision: Decision) => void;

function decideEvaluation(
  engine: PolicyEngine,
  r: AuthzenEvaluationRequest,
  onDecision: DecisionListener | undefined,
): AuthzenDecision {
  const request = normalizeRequest(toDecisionRequest(r), engine.clock);
  const decision = engine.decideNormalized(request);
  onDecision?.(request, decision);
  return toAuthzenDecision(decision);
}

/** `POST /access/v1/evaluation`. */
export function authzenEvaluation(
  engine: PolicyEngine,
  body: unknown,
  options: { onDecision?: DecisionListener | undefined } = {},
): AuthzenDecision {
  const r = parseBody(evaluationSchema, body, 'evaluation');
  return decideEvaluation(engine, r, options.onDecision);
}

export interface EvaluationsOptions {
  /** Largest accepted `evaluations` array (default 100). */
  maxBatch?: number;
  onDecision?: DecisionListener | undefined;
}

/**
 * `POST /access/v1/evaluations`: top-level subject/action/resource/context are defaults, each item
 * may replace any of them; `options.evaluations_semantic` is `execute_all` (default),
 * `deny_on_first_deny` or `permit_on_first_permit` (results stop after the deciding item). An item
 * that cannot be evaluated is `decision: false` with the error in its context. Without items the
 * request is a single evaluation and gets a single-evaluation response.
 */
export function authzenEvaluations(
  engine: PolicyEngine,
  body: unknown,
  options: EvaluationsOptions = {},
): { evaluations: AuthzenDecision[] } | AuthzenDecision {
  const r = parseBody(evaluationsSchema, body, 'evaluations');
  const maxBatch = options.maxBatch ?? 100;
  const items = r.evaluations ?? [];
  if (items.length === 0) {
    return authzenEvaluation(
      engine,
      { subject: r.subject, action: r.action, resource: r.resource, context: r.context },
      { onDecision: options.onDecision },
    );
  }
  if (items.length > maxBatch) {
    throw new InvalidRequestError(`at most ${maxBatch} evaluations per request`, {
      code: 'ERR_AUTHZEN_BATCH_TOO_LARGE',
      invalidParams: [{ name: 'evaluations', reason: `${items.length} items; the limit is ${maxBatch}` }],
    });
  }
  const semantic = r.options?.evaluations_semantic ?? 'execute_all';
  const out: AuthzenDecision[] = [];
  for (const [i, item] of items.entries()) {
    let result: AuthzenDecision;
    try {
      const merged = parseBody(
        evaluationSchema,
        {
          subject: item.subject ?? r.subject,
          action: item.action ?? r.action,
          resource: item.resource ?? r.resource,
          context: item.context ?? r.context,
        },
        `evaluations[${i}]`,
      );
      result = decideEvaluation(engine, merged, options.onDecision);
    } catch (e) {
      if (!(e instanceof WardenError) || e.status >= 500) throw e;
      result = {
        decision: false,
        context: {
          error: { status: e.status, code: e.code, message: e.message, 'invalid-params': e.invalidParams },
        },
      };
    }
    out.push(result);
    if (semantic === 'deny_on_first_deny' && !result.decision) break;
    if (semantic === 'permit_on_first_permit' && result.decision) break;
  }
  return { evaluations: out };
}

interface PageOut {
  next_token?: string;
  count: number;
  total: number;
}

function paginate<T>(
  all: T[],
  page: { token?: string | undefined; limit?: number | undefined } | undefined,
): {
  results: T[];
  page: PageOut;
} {
  let offset = 0;
  if (page?.token) {
    const n = Number(Buffer.from(page.token, 'base64url').toString('utf8'));
    if (!Number.isSafeInteger(n) || n < 0 || n > all.length) {
      throw new InvalidRequestError('the page token is not valid', {
        code: 'ERR_AUTHZEN_INVALID',
        invalidParams: [{ name: 'page.token', reason: 'unknown or expired token' }],
      });
    }
    offset = n;
  }
  const limit = page?.limit ?? 100;
  const results = all.slice(offset, offset + limit);
  const next = offset + results.length;
  return {
    results,
    page: {
      ...(next < all.length ? { next_token: Buffer.from(String(next)).toString('base64url') } : {}),
      count: results.length,
      total: all.length,
    },
  };
}

type Candidates = { direct: Set<string>; groups: EntityRef[]; all: boolean };

/**
 * Reads Cedar's residual policies for the one unknown (`principal` or `resource`): which entities
 * the remaining permits compare it with (`==` candidates, `in` groups), or whether a permit holds
 * whatever it is (then every entity of the type is a candidate).
 */
function candidatesFrom(answer: CedarTypes.ResidualResponse, variable: 'principal' | 'resource'): Candidates {
  const out: Candidates = { direct: new Set(), groups: [], all: false };
  const isUnknown = (e: unknown): boolean =>
    !!e &&
    typeof e === 'object' &&
    Array.isArray((e as { unknown?: unknown[] }).unknown) &&
    JSON.stringify((e as { unknown: unknown[] }).unknown[0]) === JSON.stringify({ Value: variable });
  const literal = (e: unknown): CedarTypes.TypeAndId | undefined => {
    const v = (e as { Value?: { __entity?: CedarTypes.TypeAndId } } | undefined)?.Value?.__entity;
    return v && typeof v.type === 'string' ? v : undefined;
  };
  const walk = (node: unknown, found: { any: boolean }): void => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const n of node) walk(n, found);
      return;
    }
    const obj = node as Record<string, unknown>;
    if (isUnknown(obj)) found.any = true;
    for (const op of ['==', 'in'] as const) {
      const bin = obj[op] as { left?: unknown; right?: unknown } | undefined;
      if (bin && isUnknown(bin.left)) {
        const lit = literal(bin.right);
        if (lit) {
          found.any = true;
          if (op === '==') out.direct.add(JSON.stringify([shortType(lit.type), lit.id]));
          else {
            out.direct.add(JSON.stringify([shortType(lit.type), lit.id]));
            out.groups.push({ type: shortType(lit.type), id: lit.id });
          }
        }
      }
    }
    for (const v of Object.values(obj)) walk(v, found);
  };
  for (const id of answer.nontrivialResiduals) {
    const p = answer.residuals[id];
    if (p?.effect !== 'permit') continue;
    const found = { any: false };
    walk(p.conditions, found);
    if (!found.any) out.all = true;
  }
  for (const id of answer.satisfied) if (answer.residuals[id]?.effect === 'permit') out.all = true;
  return out;
}

async function expand(
  c: Candidates,
  type: EntityTypeName,
  directory: EntityDirectory | undefined,
  maxCandidates: number,
): Promise<RequestEntity[]> {
  const byKey = new Map<string, RequestEntity>();
  const put = (e: RequestEntity) => {
    if (shortType(e.type) === type) byKey.set(e.id, { ...e, type: shortType(e.type) });
  };
  for (const k of c.direct) {
    const [t, id] = JSON.parse(k) as [string, string];
    if (t !== type) continue;
    put((await directory?.get(t, id)) ?? { type: t, id });
  }
  if (directory) {
    for (const g of c.groups) for (const e of await directory.members(g, type)) put(e);
    if (c.all) for (const e of await directory.list(type, maxCandidates)) put(e);
  }
  return [...byKey.values()].slice(0, maxCandidates);
}

function partial(
  engine: PolicyEngine,
  known: {
    principal: RequestEntity;
    action: string;
    resource: RequestEntity;
    context: Record<string, unknown>;
  },
  unknown: 'principal' | 'resource',
): CedarTypes.ResidualResponse {
  const normalized = normalizeRequest(known, engine.clock);
  const req = toCedarRequest(normalized);
  const placeholder = unknown === 'principal' ? req.principal : req.resource;
  const placeholderKey = JSON.stringify(placeholder);
  const answer = cedar().isAuthorizedPartial({
    principal: unknown === 'principal' ? null : req.principal,
    action: req.action,
    resource: unknown === 'resource' ? null : req.resource,
    context: req.context,
    schema: WARDEN_SCHEMA,
    validateRequest: false,
    policies: { staticPolicies: staticPolicies(engine.index.policies) },
    entities: req.entities.filter((e) => JSON.stringify(e.uid) !== placeholderKey),
  });
  if (answer.type !== 'residuals') {
    throw new InvalidRequestError('the search request does not match the Warden schema', {
      code: 'ERR_AUTHZEN_INVALID',
      invalidParams: answer.errors.map((e) => ({ name: 'request', reason: e.message })),
    });
  }
  return answer.response;
}

export interface SearchOptions {
  /** Resolves group members and lists entities of a type; without it only named entities are found. */
  directory?: EntityDirectory | undefined;
  /** Upper bound on candidates confirmed per search (default 1000). */
  maxCandidates?: number;
}

function searchResult(e: RequestEntity, d: Decision): AuthzenSubject {
  return {
    type: e.type.toLowerCase(),
    id: e.id,
    ...(d.approval_required ? { properties: { approval_required: true } } : {}),
  };
}

/**
 * `POST /access/v1/search/subject`: which subjects of a type may do the action on the resource.
 * Cedar partially evaluates the active set with the subject unknown; the residual permits name the
 * candidates (directly, through a template/provider/group, or all of the type), and each candidate
 * is then decided concretely, so only subjects the engine permits are returned. Subjects whose
 * permit needs approval carry `properties.approval_required`.
 */
export async function authzenSubjectSearch(
  engine: PolicyEngine,
  body: unknown,
  options: SearchOptions = {},
): Promise<{ results: AuthzenSubject[]; page: PageOut }> {
  const r = parseBody(subjectSearchSchema, body, 'subject search');
  const type = entityTypeOf(r.subject.type, 'subject.type');
  const base = toDecisionRequest({
    subject: { type, id: '__search__' },
    action: r.action,
    resource: r.resource,
    context: r.context,
  }) as {
    principal: RequestEntity;
    action: string;
    resource: RequestEntity;
    context: Record<string, unknown>;
  };
  const residual = partial(engine, base, 'principal');
  const candidates = await expand(
    candidatesFrom(residual, 'principal'),
    type,
    options.directory,
    options.maxCandidates ?? 1000,
  );
  const results: AuthzenSubject[] = [];
  for (const c of candidates.sort((a, b) => a.id.localeCompare(b.id))) {
    const d = engine.decide({ ...base, principal: c });
    if (d.decision === 'permit') results.push(searchResult(c, d));
  }
  return paginate(results, r.page);
}

/**
 * `POST /access/v1/search/resource`: which resources of a type the subject may act on, found the
 * same way with the resource unknown.
 */
export async function authzenResourceSearch(
  engine: PolicyEngine,
  body: unknown,
  options: SearchOptions = {},
): Promise<{ results: AuthzenSubject[]; page: PageOut }> {
  const r = parseBody(resourceSearchSchema, body, 'resource search');
  const type = entityTypeOf(r.resource.type, 'resource.type');
  const base = toDecisionRequest({
    subject: r.subject,
    action: r.action,
    resource: { type, id: '__search__' },
    context: r.context,
  }) as {
    principal: RequestEntity;
    action: string;
    resource: RequestEntity;
    context: Record<string, unknown>;
  };
  const residual = partial(engine, base, 'resource');
  const candidates = await expand(
    candidatesFrom(residual, 'resource'),
    type,
    options.directory,
    options.maxCandidates ?? 1000,
  );
  const results: AuthzenSubject[] = [];
  for (const c of candidates.sort((a, b) => a.id.localeCompare(b.id))) {
    const d = engine.decide({ ...base, resource: c });
    if (d.decision === 'permit') results.push(searchResult(c, d));
  }
  return paginate(results, r.page);
}

/**
 * `POST /access/v1/search/action`: which actions the subject may take on the resource. The schema
 * names every action that applies to the two types; each is decided by the engine.
 */
export async function authzenActionSearch(
  engine: PolicyEngine,
  body: unknown,
): Promise<{ results: { name: string; properties?: Record<string, unknown> }[]; page: PageOut }> {
  const r = parseBody(actionSearchSchema, body, 'action search');
  const pType = entityTypeOf(r.subject.type, 'subject.type');
  const rType = entityTypeOf(r.resource.type, 'resource.type');
  const results: { name: string; properties?: Record<string, unknown> }[] = [];
  for (const [name, spec] of Object.entries(ACTIONS).sort(([a], [b]) => a.localeCompare(b))) {
    if (!spec.principals.includes(pType) || !spec.resources.includes(rType)) continue;
    const d = engine.decide(
      toDecisionRequest({ subject: r.subject, action: { name }, resource: r.resource, context: r.context }),
    );
    if (d.decision === 'permit') {
      results.push({ name, ...(d.approval_required ? { properties: { approval_required: true } } : {}) });
    }
  }
  return paginate(results, r.page);
}

/** The PDP metadata document served at `/.well-known/authzen-configuration`. */
export function authzenMetadata(baseUrl: string): Record<string, string | string[]> {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    policy_decision_point: base,
    access_evaluation_endpoint: `${base}/access/v1/evaluation`,
    access_evaluations_endpoint: `${base}/access/v1/evaluations`,
    search_subject_endpoint: `${base}/access/v1/search/subject`,
    search_resource_endpoint: `${base}/access/v1/search/resource`,
    search_action_endpoint: `${base}/access/v1/search/action`,
  };
}
