import { InternalError, InvalidRequestError, uuidv7 } from '../core/index.ts';
import type { CedarTypes } from './cedar.ts';
import { cedar } from './cedar.ts';
import { type ParsedPolicy, staticPolicies } from './policy-set.ts';
import type { CedarRequest } from './request.ts';
import { ACTIONS } from './schema.ts';

/** Cedar's answer for one request, with the ids of the policy set that was evaluated. */
export interface CedarAnswer {
  decision: 'allow' | 'deny';
  reason: string[];
  errors: { policy_id: string; message: string }[];
}

const ANY = '*';

function uidKeyOf(uid: CedarTypes.EntityUidJson): string {
  const u = '__entity' in uid ? uid.__entity : uid;
  return `${u.type}::${JSON.stringify(u.id)}`;
}

function typeOf(uid: CedarTypes.EntityUidJson): string {
  return '__entity' in uid ? uid.__entity.type : uid.type;
}

/**
 * Which principals a policy can match, as one key: `*` (any), `type:<T>` (`is T`), or `uid:<E>`
 * (`== E`, `in E`, `is T in E`: E must be the principal itself or one of its ancestors).
 */
function principalKey(c: CedarTypes.PrincipalConstraint): string {
  switch (c.op) {
    case '==':
    case 'in':
      return 'entity' in c ? `uid:${uidKeyOf(c.entity)}` : ANY;
    case 'is':
      if (c.in && 'entity' in c.in) return `uid:${uidKeyOf(c.in.entity)}`;
      return `type:${c.entity_type}`;
    default:
      return ANY;
  }
}

/** Action ids a policy can match (`*` for any action). */
function actionKeys(c: CedarTypes.ActionConstraint): string[] {
  if (c.op === '==') return 'entity' in c ? [uidKeyOf(c.entity)] : [ANY];
  if (c.op === 'in') return 'entity' in c ? [uidKeyOf(c.entity)] : c.entities.map(uidKeyOf);
  return [ANY];
}

/** The resource type a policy can match (`*` when its scope does not pin one). */
function resourceKey(c: CedarTypes.ResourceConstraint): string {
  if (c.op === '==') return 'entity' in c ? typeOf(c.entity) : ANY;
  if (c.op === 'is') return c.entity_type;
  return ANY;
}

/**
 * Which parts of the request context a set of policies can observe. Building Cedar's context and
 * entities is most of a decision's cost, so a slice is given only the context fields its policies
 * read (`context.x`, `context has x`, `context["x"]`); a policy that uses `context` any other way
 * (as a whole value) gets everything. Fields no policy reads cannot change a decision.
 */
interface ContextUse {
  all: boolean;
  keys: Set<string>;
  /** The Args/NumArgs entities are named directly (not through the context). */
  argsEntities: boolean;
}

function isContextVar(node: unknown): boolean {
  return !!node && typeof node === 'object' && (node as { Var?: unknown }).Var === 'context';
}

function contextUseOf(policy: ParsedPolicy): ContextUse {
  const use: ContextUse = { all: false, keys: new Set(), argsEntities: false };
  const walk = (node: unknown): void => {
    if (use.all || !node || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    if (isContextVar(node)) {
      use.all = true;
      return;
    }
    const obj = node as Record<string, unknown>;
    for (const [op, value] of Object.entries(obj)) {
      const v = value as { left?: unknown; attr?: unknown } | undefined;
      if ((op === '.' || op === 'has') && v && isContextVar(v.left)) {
        const attr = Array.isArray(v.attr) ? v.attr[0] : v.attr;
        if (typeof attr === 'string') use.keys.add(attr);
        else use.all = true;
        continue;
      }
      if (op === '__entity') {
        const t = (value as { type?: unknown } | undefined)?.type;
        if (t === 'Warden::Args' || t === 'Warden::NumArgs') use.argsEntities = true;
      }
      walk(value);
    }
  };
  walk(policy.json.conditions);
  return use;
}

function mergeUse(uses: ContextUse[]): ContextUse {
  const out: ContextUse = { all: false, keys: new Set(), argsEntities: false };
  for (const u of uses) {
    out.all ||= u.all;
    out.argsEntities ||= u.argsEntities;
    for (const k of u.keys) out.keys.add(k);
  }
  return out;
}

const ALL_CONTEXT: ContextUse = { all: true, keys: new Set(), argsEntities: true };

/** The request with only the context (and argument entities) the slice can observe. */
function pruned(req: CedarRequest, use: ContextUse): Pick<CedarRequest, 'context' | 'entities'> {
  if (use.all) return req;
  const context: CedarTypes.Context = {};
  for (const k of use.keys) {
    const v = req.context[k];
    if (v !== undefined) context[k] = v;
  }
  const keepArgs = use.argsEntities || use.keys.has('args');
  const keepNumArgs = use.argsEntities || use.keys.has('num_args');
  const entities =
    keepArgs && keepNumArgs
      ? req.entities
      : req.entities.filter((e) => {
          const t = (e.uid as CedarTypes.TypeAndId).type;
          return !((t === 'Warden::Args' && !keepArgs) || (t === 'Warden::NumArgs' && !keepNumArgs));
        });
  return { context, entities };
}

/**
 * Names for pre-parsed policy sets inside the wasm module. Cedar keeps every pre-parsed set until
 * its name is reused, so names are recycled (and released sets overwritten with an empty set) to
 * keep memory bounded however many slices and versions come and go.
 */
class SlotPool {
  readonly #free: string[] = [];
  #next = 0;
  readonly #prefix = `pset-${uuidv7()}-`;

  take(): string {
    return this.#free.pop() ?? `${this.#prefix}${this.#next++}`;
  }

  release(slot: string): void {
    cedar().preparsePolicySet(slot, { staticPolicies: {} });
    this.#free.push(slot);
  }
}

const slots = new SlotPool();

export interface PolicyIndexOptions {
  /** How many pre-parsed slices stay warm (least recently used ones are dropped). */
  maxSlices?: number;
  /** How many request shapes remember their slice. */
  maxRequestKeys?: number;
}

/**
 * A policy set indexed for fast decisions. Cedar evaluates every policy it is given, so each
 * request is evaluated against only the slice of policies whose scope could match it: policies
 * are bucketed by principal (any / type / the principal or an ancestor), action (any / the action
 * or one of its groups) and resource type (any / pinned type). A policy left out of a slice has a
 * scope that cannot match the request, and Cedar evaluates scope before conditions, so a slice
 * gives the same decision, determining policies and errors as the whole set. Slices are
 * pre-parsed once and kept warm; identical slices share one pre-parsed set.
 */
export class PolicyIndex {
  readonly policies: readonly ParsedPolicy[];
  readonly byId: ReadonlyMap<string, ParsedPolicy>;
  /** principal key → action key → resource key → policy ids. */
  readonly #buckets = new Map<string, Map<string, Map<string, string[]>>>();
  readonly #maxSlices: number;
  readonly #maxRequestKeys: number;
  /** Slice signature (sorted policy ids) → pre-parsed slot and context use, in LRU order. */
  readonly #slices = new Map<string, { slot: string; use: ContextUse }>();
  /** Request shape → slice signature, in LRU order. */
  readonly #requests = new Map<string, string>();
  #fullSlot: string | undefined;
  #disposed = false;

  constructor(policies: readonly ParsedPolicy[], options: PolicyIndexOptions = {}) {
    this.policies = policies;
    this.byId = new Map(policies.map((p) => [p.id, p]));
    this.#maxSlices = options.maxSlices ?? 4096;
    this.#maxRequestKeys = options.maxRequestKeys ?? 65536;
    for (const p of policies) {
      const pk = principalKey(p.json.principal);
      const rk = resourceKey(p.json.resource);
      let byAction = this.#buckets.get(pk);
      if (!byAction) {
        byAction = new Map();
        this.#buckets.set(pk, byAction);
      }
      for (const ak of new Set(actionKeys(p.json.action))) {
        let byResource = byAction.get(ak);
        if (!byResource) {
          byResource = new Map();
          byAction.set(ak, byResource);
        }
        const ids = byResource.get(rk);
        if (ids) ids.push(p.id);
        else byResource.set(rk, [p.id]);
      }
    }
  }

  /** The ids of the policies whose scope could match `req` (sorted). */
  sliceIds(req: CedarRequest): string[] {
    const pKeys = [ANY, `type:${typeOf(req.principal)}`, `uid:${uidKeyOf(req.principal)}`];
    for (const a of req.principalAncestors) pKeys.push(`uid:${a}`);
    const actionId = '__entity' in req.action ? req.action.__entity.id : req.action.id;
    const aKeys = [ANY, `Warden::Action::${JSON.stringify(actionId)}`];
    for (const g of ACTIONS[actionId]?.groups ?? []) aKeys.push(`Warden::Action::${JSON.stringify(g)}`);
    const rKeys = [ANY, req.resourceType];
    const out = new Set<string>();
    for (const pk of pKeys) {
      const byAction = this.#buckets.get(pk);
      if (!byAction) continue;
      for (const ak of aKeys) {
        const byResource = byAction.get(ak);
        if (!byResource) continue;
        for (const rk of rKeys) for (const id of byResource.get(rk) ?? []) out.add(id);
      }
    }
    return [...out].sort();
  }

  /** Every policy whose principal scope can match the request's principal (any action, resource). */
  principalPolicies(req: CedarRequest): ParsedPolicy[] {
    const pKeys = [ANY, `type:${typeOf(req.principal)}`, `uid:${uidKeyOf(req.principal)}`];
    for (const a of req.principalAncestors) pKeys.push(`uid:${a}`);
    const ids = new Set<string>();
    for (const pk of pKeys) {
      for (const byResource of this.#buckets.get(pk)?.values() ?? []) {
        for (const list of byResource.values()) for (const id of list) ids.add(id);
      }
    }
    return [...ids].sort().map((id) => this.byId.get(id) as ParsedPolicy);
  }

  #slice(req: CedarRequest): { slot: string; use: ContextUse } {
    const shape = `${uidKeyOf(req.principal)}|${req.principalAncestors.join(',')}|${uidKeyOf(req.action)}|${req.resourceType}`;
    let signature = this.#requests.get(shape);
    if (signature === undefined) {
      signature = this.sliceIds(req).join('\n');
      this.#requests.set(shape, signature);
      if (this.#requests.size > this.#maxRequestKeys) {
        this.#requests.delete(this.#requests.keys().next().value as string);
      }
    } else {
      // Refresh LRU position.
      this.#requests.delete(shape);
      this.#requests.set(shape, signature);
    }
    const warm = this.#slices.get(signature);
    if (warm !== undefined) {
      this.#slices.delete(signature);
      this.#slices.set(signature, warm);
      return warm;
    }
    const slot = slots.take();
    const ids = signature === '' ? [] : signature.split('\n');
    const chosen = ids.map((id) => this.byId.get(id) as ParsedPolicy);
    this.#preparse(slot, chosen);
    const slice = { slot, use: mergeUse(chosen.map(contextUseOf)) };
    this.#slices.set(signature, slice);
    if (this.#slices.size > this.#maxSlices) {
      const [oldest, old] = this.#slices.entries().next().value as [string, { slot: string }];
      this.#slices.delete(oldest);
      slots.release(old.slot);
    }
    return slice;
  }

  #preparse(slot: string, policies: readonly ParsedPolicy[]): void {
    const answer = cedar().preparsePolicySet(slot, { staticPolicies: staticPolicies(policies) });
    if (answer.type !== 'success') {
      throw new InternalError(`a validated policy slice failed to parse: ${answer.errors[0]?.message ?? ''}`);
    }
  }

  #run(slot: string, req: CedarRequest, use: ContextUse): CedarAnswer {
    if (this.#disposed) throw new InternalError('policy index used after dispose');
    const { context, entities } = pruned(req, use);
    const answer = cedar().statefulIsAuthorized({
      principal: req.principal,
      action: req.action,
      resource: req.resource,
      context,
      entities,
      // The request was checked against the Warden schema when it was normalised; evaluating
      // without Cedar's schema pass costs a fraction of the time for the same answer.
      validateRequest: false,
      preparsedPolicySetId: slot,
    });
    if (answer.type !== 'success') {
      throw new InvalidRequestError('the request does not match the Warden schema', {
        code: 'ERR_POLICY_REQUEST_INVALID',
        invalidParams: answer.errors.map((e) => ({ name: 'request', reason: e.message })),
      });
    }
    return {
      decision: answer.response.decision,
      reason: [...answer.response.diagnostics.reason].sort(),
      errors: answer.response.diagnostics.errors
        .map((e) => ({ policy_id: e.policyId, message: e.error.message }))
        .sort((a, b) => a.policy_id.localeCompare(b.policy_id)),
    };
  }

  /** Evaluates `req` against its slice. */
  evaluate(req: CedarRequest): CedarAnswer {
    const slice = this.#slice(req);
    return this.#run(slice.slot, req, slice.use);
  }

  /** Evaluates `req` against the whole set (the baseline slicing must agree with). */
  evaluateNaive(req: CedarRequest): CedarAnswer {
    if (this.#fullSlot === undefined) {
      this.#fullSlot = slots.take();
      this.#preparse(this.#fullSlot, this.policies);
    }
    return this.#run(this.#fullSlot, req, ALL_CONTEXT);
  }

  /** Number of warm pre-parsed slices. */
  get warmSlices(): number {
    return this.#slices.size;
  }

  /** Frees every pre-parsed slice. The index must not be used afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const slice of this.#slices.values()) slots.release(slice.slot);
    this.#slices.clear();
    this.#requests.clear();
    if (this.#fullSlot !== undefined) slots.release(this.#fullSlot);
  }
}
