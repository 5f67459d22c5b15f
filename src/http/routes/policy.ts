import { z } from 'zod';
import type { AuditEventInput } from '../../audit/index.ts';
import { NotFoundError } from '../../core/index.ts';
import { actorOf, type Caller } from '../../identity/index.ts';
import {
  authzenActionSearch,
  authzenEvaluation,
  authzenEvaluations,
  authzenMetadata,
  authzenResourceSearch,
  authzenSubjectSearch,
  type DecisionListener,
  decisionEvent,
  type EntityDirectory,
  leastAgency,
  loadVersionIndex,
  type RequestEntity,
  simulate,
} from '../../policy/index.ts';
import { type AnyRoute, defineRoute } from '../route.ts';
import type { Warden } from '../warden.ts';

const READERS = ['admin', 'security_analyst', 'auditor'] as const;
const ANALYSTS = ['admin', 'security_analyst'] as const;
/** Who may ask the decision point (AuthZEN): the gateway and analysts use admin API tokens. */
const PEPS = ['admin', 'security_analyst'] as const;

const versionParams = z.object({ version: z.coerce.number().int().min(1) }).strict();
const pushBody = z
  .object({ policies: z.string().max(5_000_000), description: z.string().max(1000).optional() })
  .strict();
const validateBody = z.object({ policies: z.string().max(5_000_000) }).strict();
const rollbackBody = z.object({ to_version: z.number().int().min(1).optional() }).strict();
const windowSchema = z
  .object({ from: z.iso.datetime({ offset: true }), to: z.iso.datetime({ offset: true }) })
  .strict();
const effectiveQuery = z
  .object({
    agent: z.string().min(1).max(64),
    from: z.iso.datetime({ offset: true }),
    to: z.iso.datetime({ offset: true }),
  })
  .strict();
const jsonObject = z.record(z.string(), z.unknown());

function windowOf(w: { from: string; to: string }) {
  return { from: Date.parse(w.from), to: Date.parse(w.to) };
}

const versionOut = z.object({
  version: z.number(),
  policy_count: z.number(),
  sha256: z.string(),
  description: z.string(),
  created_at: z.number(),
  created_by: z.string(),
  policies: z.string().optional(),
  warnings: z.array(z.object({ name: z.string(), reason: z.string() })).optional(),
});
const activationOut = z.object({
  seq: z.number(),
  version: z.number(),
  previous_version: z.number().nullable(),
  kind: z.string(),
  at: z.number(),
  by: z.string(),
});

/** The registry's agents as the search directory (templates and providers by id). */
function identityDirectory(warden: Warden, caller: Caller): EntityDirectory {
  const agents = warden.identity.agents;
  const toEntity = (a: {
    id: string;
    template_id: string;
    provider_id: string;
    status: string;
    risk_tier: string;
    owner_id: string;
    purpose: string;
  }): RequestEntity => ({
    type: 'Agent',
    id: a.id,
    parents: [
      { type: 'Template', id: a.template_id },
      { type: 'Provider', id: a.provider_id },
    ],
    attrs: { status: a.status, risk_level: a.risk_tier, owner: a.owner_id, purpose: a.purpose },
  });
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const collect = async (filter: { template_id?: string; provider_id?: string }, limit: number) => {
    const out: RequestEntity[] = [];
    let cursor: string | undefined;
    do {
      const page = await agents.list({ limit: 200, ...(cursor ? { cursor } : {}), ...filter }, caller);
      out.push(...page.items.map(toEntity));
      cursor = page.next_cursor ?? undefined;
    } while (cursor && out.length < limit);
    return out.slice(0, limit);
  };
  return {
    async get(type, id) {
      if (type !== 'Agent') return undefined;
      try {
        return toEntity(await agents.get(id, caller));
      } catch (e) {
        if (e instanceof NotFoundError) return undefined;
        throw e;
      }
    },
    async members(parent, type) {
      if (type !== 'Agent' || !uuid.test(parent.id)) return [];
      if (parent.type === 'Template') return collect({ template_id: parent.id }, 10_000);
      if (parent.type === 'Provider') return collect({ provider_id: parent.id }, 10_000);
      return [];
    },
    async list(type, limit) {
      return type === 'Agent' ? collect({}, limit) : [];
    },
  };
}

/**
 * AuthZEN subjects of type agent get their template and provider from the registry (the source
 * of truth), not from what the caller claims; unknown agents keep what was sent.
 */
async function withRegistryFacts(warden: Warden, caller: Caller, body: Record<string, unknown>) {
  const cache = new Map<string, Record<string, unknown> | undefined>();
  const fix = async (subject: unknown): Promise<unknown> => {
    if (!subject || typeof subject !== 'object') return subject;
    const s = subject as { type?: unknown; id?: unknown; properties?: unknown };
    if (
      (s.type !== 'agent' && s.type !== 'Agent' && s.type !== 'Warden::Agent') ||
      typeof s.id !== 'string'
    ) {
      return subject;
    }
    if (!cache.has(s.id)) {
      try {
        const a = await warden.identity.agents.get(s.id, caller);
        // Only an exact id match: a name would give the entity a different id than policies use.
        if (a.id !== s.id) throw new NotFoundError('not an agent id');
        cache.set(s.id, {
          template: a.template_id,
          provider: a.provider_id,
          status: a.status,
          risk_level: a.risk_tier,
        });
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e;
        cache.set(s.id, undefined);
      }
    }
    const facts = cache.get(s.id);
    if (!facts) return subject;
    const props = s.properties && typeof s.properties === 'object' ? s.properties : {};
    return { ...s, properties: { ...props, ...facts } };
  };
  const out: Record<string, unknown> = { ...body, subject: await fix(body.subject) };
  if (Array.isArray(body.evaluations)) {
    out.evaluations = await Promise.all(
      body.evaluations.map(async (item: unknown) =>
        item && typeof item === 'object' && 'subject' in item
          ? { ...(item as object), subject: await fix((item as { subject: unknown }).subject) }
          : item,
      ),
    );
  }
  return out;
}

/** Decisions made through the API are recorded in the ledger (they feed simulation and least agency). */
function recorder(warden: Warden): { listener: DecisionListener; flush(): Promise<void> } {
  const events: AuditEventInput[] = [];
  return {
    listener: (request, decision) => events.push(decisionEvent(request, decision)),
    async flush() {
      for (const e of events) await warden.auditor.record(e);
    },
  };
}

/** Admin API for policy sets, and the OpenID AuthZEN decision API. */
export function policyRoutes(warden: Warden): AnyRoute[] {
  const { admin, engine } = warden.policy;
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/policies',
      tag: 'policies',
      summary: 'List policy-set versions and the active one',
      auth: READERS,
      response: {
        status: 200,
        schema: z.object({
          active_version: z.number().nullable(),
          items: z.array(versionOut),
          history: z.array(activationOut),
        }),
      },
      handler: async () => ({
        active_version: (await admin.active())?.version ?? null,
        items: await admin.list(),
        history: await admin.history(20),
      }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/policies',
      tag: 'policies',
      summary: 'Push a new policy-set version (validated against the schema; not activated)',
      auth: ['admin'],
      body: pushBody,
      response: { status: 201, schema: versionOut },
      handler: ({ body, caller }) => admin.push(body, actorOf(caller)),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/policies/validate',
      tag: 'policies',
      summary: 'Validate Cedar policies against the Warden schema without storing them',
      auth: ANALYSTS,
      body: validateBody,
      response: {
        status: 200,
        schema: z.object({
          valid: z.literal(true),
          policy_count: z.number(),
          policy_ids: z.array(z.string()),
          warnings: z.array(z.object({ name: z.string(), reason: z.string() })),
        }),
      },
      handler: async ({ body }) => ({ valid: true as const, ...admin.validate(body.policies) }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/policies/rollback',
      tag: 'policies',
      summary: 'Roll back to the previously active version (or to_version)',
      auth: ['admin'],
      body: rollbackBody,
      response: { status: 200, schema: activationOut },
      handler: ({ body, caller }) => admin.rollback(actorOf(caller), body.to_version),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/policies/explain',
      tag: 'policies',
      summary: 'Decide a request against the active set and explain it (not recorded)',
      auth: ANALYSTS,
      body: jsonObject,
      response: { status: 200, schema: jsonObject },
      handler: async ({ body }) => ({ ...engine.decide(body) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/policies/effective',
      tag: 'policies',
      summary: "An agent's effective permissions and the grants it has not used in a window",
      auth: ANALYSTS,
      query: effectiveQuery,
      response: { status: 200, schema: jsonObject },
      handler: async ({ query, caller }) => {
        const a = await warden.identity.agents.get(query.agent, caller);
        const agent: RequestEntity = {
          type: 'Agent',
          id: a.id,
          parents: [
            { type: 'Template', id: a.template_id },
            { type: 'Provider', id: a.provider_id },
          ],
        };
        return {
          ...(await leastAgency(warden.store, engine.index, agent, windowOf(query), warden.clock)),
          policy_version: engine.version,
        };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/policies/templates/:ref',
      tag: 'policies',
      summary:
        "Compile a registry template's tools, scopes and approval rules into the policy set (new version)",
      auth: ['admin'],
      params: z.object({ ref: z.string().min(1).max(64) }).strict(),
      body: z
        .object({ version: z.number().int().min(1).optional(), activate: z.boolean().optional() })
        .strict(),
      response: { status: 201, schema: versionOut },
      handler: async ({ params, body, caller }) => {
        const t = await warden.identity.templates.get(params.ref);
        const v = body.version
          ? await warden.identity.templates.version(t.id, body.version)
          : { version: t.latest_version, spec: t.spec };
        const spec = v.spec;
        return admin.pushTemplate(
          {
            id: t.id,
            version: v.version,
            allowedTools: spec.allowed_tools,
            allowedScopes: spec.allowed_scopes,
            approvalRules: spec.approval_rules.map((r) => ({
              tool: r.tool,
              argument: r.argument,
              above: r.above,
              approvers: r.approvers,
              group: r.group,
            })),
            requireIntent: spec.require_intent,
            requireAttestation: spec.attestation.required,
          },
          actorOf(caller),
          { activate: body.activate ?? false },
        );
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/policies/:version',
      tag: 'policies',
      summary: 'Show one policy-set version with its text',
      auth: READERS,
      params: versionParams,
      response: { status: 200, schema: versionOut },
      handler: ({ params }) => admin.get(params.version),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/policies/:version/activate',
      tag: 'policies',
      summary: 'Activate a version on every node',
      auth: ['admin'],
      params: versionParams,
      response: { status: 200, schema: activationOut },
      handler: ({ params, caller }) => admin.activate(params.version, actorOf(caller)),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/policies/:version/simulate',
      tag: 'policies',
      summary: 'Replay the decisions recorded in a window against a version and report changed outcomes',
      auth: ANALYSTS,
      params: versionParams,
      body: windowSchema,
      response: { status: 200, schema: jsonObject },
      handler: async ({ params, body }) => {
        const index = await loadVersionIndex(warden.store, params.version);
        if (!index) {
          throw new NotFoundError(`policy version ${params.version} does not exist`, {
            code: 'ERR_POLICY_NOT_FOUND',
          });
        }
        try {
          return { ...(await simulate(warden.store, index, params.version, windowOf(body), warden.clock)) };
        } finally {
          index.dispose();
        }
      },
    }),
    // ---- OpenID AuthZEN Authorization API 1.0 ----
    defineRoute({
      method: 'GET',
      url: '/.well-known/authzen-configuration',
      tag: 'authzen',
      summary: 'AuthZEN PDP metadata',
      auth: 'public',
      response: { status: 200, schema: z.record(z.string(), z.union([z.string(), z.array(z.string())])) },
      handler: async () => authzenMetadata(warden.publicUrl),
    }),
    defineRoute({
      method: 'POST',
      url: '/access/v1/evaluation',
      tag: 'authzen',
      summary: 'AuthZEN access evaluation',
      auth: PEPS,
      body: jsonObject,
      response: { status: 200, schema: jsonObject },
      handler: async ({ body, caller }) => {
        const r = recorder(warden);
        const out = authzenEvaluation(engine, await withRegistryFacts(warden, caller, body), {
          onDecision: r.listener,
        });
        await r.flush();
        return out;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/access/v1/evaluations',
      tag: 'authzen',
      summary: 'AuthZEN access evaluations (batch)',
      auth: PEPS,
      body: jsonObject,
      response: { status: 200, schema: jsonObject },
      handler: async ({ body, caller }) => {
        const r = recorder(warden);
        const out = authzenEvaluations(engine, await withRegistryFacts(warden, caller, body), {
          onDecision: r.listener,
        });
        await r.flush();
        return out;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/access/v1/search/subject',
      tag: 'authzen',
      summary: 'AuthZEN subject search (Cedar partial evaluation)',
      auth: PEPS,
      body: jsonObject,
      response: { status: 200, schema: jsonObject },
      handler: ({ body, caller }) =>
        authzenSubjectSearch(engine, body, { directory: identityDirectory(warden, caller) }),
    }),
    defineRoute({
      method: 'POST',
      url: '/access/v1/search/resource',
      tag: 'authzen',
      summary: 'AuthZEN resource search (Cedar partial evaluation)',
      auth: PEPS,
      body: jsonObject,
      response: { status: 200, schema: jsonObject },
      handler: async ({ body, caller }) =>
        authzenResourceSearch(engine, await withRegistryFacts(warden, caller, body), {
          directory: identityDirectory(warden, caller),
        }),
    }),
    defineRoute({
      method: 'POST',
      url: '/access/v1/search/action',
      tag: 'authzen',
      summary: 'AuthZEN action search',
      auth: PEPS,
      body: jsonObject,
      response: { status: 200, schema: jsonObject },
      handler: async ({ body, caller }) =>
        authzenActionSearch(engine, await withRegistryFacts(warden, caller, body)),
    }),
  ];
}
