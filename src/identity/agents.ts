import type { Kysely } from 'kysely';
import type { z } from 'zod';
import {
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  isUuid,
  NotFoundError,
  uuidv7,
} from '../core/index.ts';
import { decodeCursor, isUniqueViolation, type Page, pageOf } from '../store/index.ts';
import { AgentInstances } from './agent-instances.ts';
import { actorOf, type Caller, type IdentityDeps, iso, isoRequired } from './context.ts';
import { assertPublicJwks } from './jwks.ts';
import type { ProviderRegistry } from './providers.ts';
import type {
  Agent,
  agentCreateSchema,
  agentListQuerySchema,
  agentUpdateSchema,
  Provider,
  TemplateVersion,
} from './schemas.ts';
import type { TemplateRegistry } from './templates.ts';

type AgentRow = {
  id: string;
  name: string;
  provider_id: string;
  owner_id: string;
  purpose: string;
  template_id: string;
  template_version: number;
  jwks: string;
  status: Agent['status'];
  status_reason: string | null;
  risk_tier: Agent['risk_tier'];
  created_at: number;
  updated_at: number;
  last_seen_at: number | null;
};

function toAgent(row: AgentRow): Agent {
  return {
    id: row.id,
    name: row.name,
    provider_id: row.provider_id,
    owner_id: row.owner_id,
    purpose: row.purpose,
    template_id: row.template_id,
    template_version: Number(row.template_version),
    jwks: JSON.parse(row.jwks) as Agent['jwks'],
    status: row.status,
    status_reason: row.status_reason,
    risk_tier: row.risk_tier,
    created_at: isoRequired(row.created_at),
    updated_at: isoRequired(row.updated_at),
    last_seen_at: iso(row.last_seen_at),
  };
}

/** Everything needed to decide whether an agent may act right now. */
export interface ResolvedAgent {
  agent: Agent;
  provider: Provider;
  template: TemplateVersion;
  /** True only when the agent is active and its provider trusted. */
  usable: boolean;
}

/** The lifecycle moves an agent can make; `retired` is final. */
const TRANSITIONS: Record<'suspend' | 'resume' | 'retire', { from: Agent['status'][]; to: Agent['status'] }> =
  {
    suspend: { from: ['active'], to: 'suspended' },
    resume: { from: ['suspended'], to: 'active' },
    retire: { from: ['active', 'suspended'], to: 'retired' },
  };

const MANAGERS = new Set(['admin', 'security_analyst']);

/** Registered agents: their owner, purpose, template, public keys and lifecycle. */
export class AgentRegistry {
  readonly #deps: IdentityDeps;
  readonly #providers: ProviderRegistry;
  readonly #templates: TemplateRegistry;
  /** The latest attested claims per agent instance. */
  readonly instances: AgentInstances;

  constructor(deps: IdentityDeps, providers: ProviderRegistry, templates: TemplateRegistry) {
    this.#deps = deps;
    this.instances = new AgentInstances(deps);
    this.#providers = providers;
    this.#templates = templates;
  }

  get #db(): Kysely<any> {
    return this.#deps.store.db;
  }

  async #row(ref: string, db: Kysely<any> = this.#db): Promise<AgentRow> {
    const row = (await db
      .selectFrom('agents')
      .selectAll()
      .where(isUuid(ref) ? 'id' : 'name', '=', ref)
      .executeTakeFirst()) as AgentRow | undefined;
    if (!row) throw new NotFoundError(`agent ${ref} does not exist`, { code: 'ERR_AGENT_NOT_FOUND' });
    return row;
  }

  /** Agent owners see and manage only their own agents; the same 404 hides the others. */
  #assertVisible(row: AgentRow, caller: Caller, ref: string): void {
    if (caller.role === 'agent_owner' && row.owner_id !== caller.userId) {
      throw new NotFoundError(`agent ${ref} does not exist`, { code: 'ERR_AGENT_NOT_FOUND' });
    }
  }

  /** Finds an agent by id or name, as the caller may see it. */
  async get(ref: string, caller: Caller): Promise<Agent> {
    const row = await this.#row(ref);
    this.#assertVisible(row, caller, ref);
    return toAgent(row);
  }

  /** The agent with its provider and template version, for token issuance and the gateway. */
  async resolve(id: string): Promise<ResolvedAgent> {
    const row = await this.#row(id);
    const provider = await this.#providers.get(row.provider_id);
    const template = await this.#templates.version(row.template_id, Number(row.template_version));
    const agent = toAgent(row);
    return { agent, provider, template, usable: agent.status === 'active' && provider.status === 'trusted' };
  }

  async list(query: z.infer<typeof agentListQuerySchema>, caller: Caller): Promise<Page<Agent>> {
    let q = this.#db
      .selectFrom('agents')
      .selectAll()
      .orderBy('id')
      .limit(query.limit + 1);
    if (query.cursor) q = q.where('id', '>', decodeCursor(query.cursor));
    if (query.status) q = q.where('status', '=', query.status);
    if (query.provider_id) q = q.where('provider_id', '=', query.provider_id);
    if (query.template_id) q = q.where('template_id', '=', query.template_id);
    const ownerId = caller.role === 'agent_owner' ? caller.userId : query.owner_id;
    if (ownerId) q = q.where('owner_id', '=', ownerId);
    const rows = (await q.execute()) as AgentRow[];
    return pageOf(rows.map(toAgent), query.limit, (a) => a.id);
  }

  async #resolveOwner(ref: string | undefined, caller: Caller, db: Kysely<any>): Promise<string> {
    if (ref === undefined) return caller.userId;
    const row = (await db
      .selectFrom('users')
      .select(['id', 'status'])
      .where(isUuid(ref) ? 'id' : 'username', '=', ref)
      .executeTakeFirst()) as { id: string; status: string } | undefined;
    if (!row) {
      throw new InvalidRequestError(`owner ${ref} does not exist`, {
        code: 'ERR_OWNER_NOT_FOUND',
        invalidParams: [{ name: 'body.owner', reason: 'no such user' }],
      });
    }
    if (row.status !== 'active') {
      throw new InvalidRequestError(`owner ${ref} is disabled`, {
        code: 'ERR_OWNER_DISABLED',
        invalidParams: [{ name: 'body.owner', reason: 'a disabled account cannot own an agent' }],
      });
    }
    if (caller.role === 'agent_owner' && row.id !== caller.userId) {
      throw new ForbiddenError('agent owners register agents for themselves only', {
        code: 'ERR_OWNER_NOT_SELF',
      });
    }
    return row.id;
  }

  async create(input: z.infer<typeof agentCreateSchema>, caller: Caller): Promise<Agent> {
    const jwks = await assertPublicJwks(input.jwks, 'jwks');
    try {
      return await this.#deps.auditor.transact(
        async (tx) => {
          const provider = await this.#providers.get(input.provider, tx).catch((e: unknown) => {
            throw e instanceof NotFoundError
              ? new InvalidRequestError(e.message, {
                  code: 'ERR_PROVIDER_NOT_FOUND',
                  invalidParams: [{ name: 'body.provider', reason: 'no such provider' }],
                })
              : e;
          });
          if (provider.status !== 'trusted') {
            throw new ConflictError(`provider ${provider.name} is distrusted; it cannot register agents`, {
              code: 'ERR_PROVIDER_DISTRUSTED',
            });
          }
          const template = await this.#templates.get(input.template, tx).catch((e: unknown) => {
            throw e instanceof NotFoundError
              ? new InvalidRequestError(e.message, {
                  code: 'ERR_TEMPLATE_NOT_FOUND',
                  invalidParams: [{ name: 'body.template', reason: 'no such template' }],
                })
              : e;
          });
          const version = input.template_version ?? template.latest_version;
          const tv = await this.#templates.version(template.id, version, tx);
          const ownerId = await this.#resolveOwner(input.owner, caller, tx);
          const now = this.#deps.clock.now();
          const row: AgentRow = {
            id: uuidv7(this.#deps.clock),
            name: input.name,
            provider_id: provider.id,
            owner_id: ownerId,
            purpose: input.purpose,
            template_id: template.id,
            template_version: version,
            jwks: JSON.stringify(jwks),
            status: 'active',
            status_reason: null,
            risk_tier: input.risk_tier ?? tv.spec.risk_tier,
            created_at: now,
            updated_at: now,
            last_seen_at: null,
          };
          await tx.insertInto('agents').values(row).execute();
          return toAgent(row);
        },
        (a) => ({
          type: 'agent.created',
          actor: actorOf(caller),
          action: 'agents.create',
          resource: { type: 'agent', id: a.id, name: a.name },
          outcome: 'success',
          request: caller.request,
          details: {
            provider_id: a.provider_id,
            owner_id: a.owner_id,
            template_id: a.template_id,
            template_version: a.template_version,
            purpose: a.purpose,
            kids: jwks.keys.map((k) => k.kid),
          },
        }),
      );
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new ConflictError(`an agent named ${input.name} already exists`, {
          code: 'ERR_DUPLICATE_NAME',
        });
      }
      throw e;
    }
  }

  async update(ref: string, input: z.infer<typeof agentUpdateSchema>, caller: Caller): Promise<Agent> {
    const jwks = input.jwks ? await assertPublicJwks(input.jwks, 'jwks') : undefined;
    return this.#deps.auditor.transact(
      async (tx) => {
        const row = await this.#row(ref, tx);
        this.#assertVisible(row, caller, ref);
        if (row.status === 'retired') {
          throw new ConflictError(`agent ${row.name} is retired; it cannot be changed`, {
            code: 'ERR_AGENT_RETIRED',
          });
        }
        const changes: Partial<AgentRow> = { updated_at: this.#deps.clock.now() };
        if (input.purpose !== undefined) changes.purpose = input.purpose;
        if (input.risk_tier !== undefined) changes.risk_tier = input.risk_tier;
        if (input.owner !== undefined) changes.owner_id = await this.#resolveOwner(input.owner, caller, tx);
        if (jwks) changes.jwks = JSON.stringify(jwks);
        if (input.template_version !== undefined) {
          await this.#templates.version(row.template_id, input.template_version, tx);
          changes.template_version = input.template_version;
        }
        await tx.updateTable('agents').set(changes).where('id', '=', row.id).execute();
        if (jwks || input.template_version !== undefined) {
          await this.#deps.store.changes.publish(
            'identity.agent',
            { id: row.id, status: row.status, keys_changed: !!jwks },
            tx,
          );
        }
        return toAgent({ ...row, ...changes });
      },
      (a) => ({
        type: 'agent.updated',
        actor: actorOf(caller),
        action: 'agents.update',
        resource: { type: 'agent', id: a.id, name: a.name },
        outcome: 'success',
        request: caller.request,
        details: { changed: Object.keys(input), kids: jwks?.keys.map((k) => k.kid) },
      }),
    );
  }

  /**
   * Moves an agent through its lifecycle. Suspension and retirement are published on the change
   * feed so every node stops the agent within a second. Resuming needs a trusted provider.
   */
  async transition(
    ref: string,
    move: 'suspend' | 'resume' | 'retire',
    reason: string,
    caller: Caller,
  ): Promise<Agent> {
    const rule = TRANSITIONS[move];
    const type =
      move === 'suspend' ? 'agent.suspended' : move === 'resume' ? 'agent.resumed' : 'agent.retired';
    return this.#deps.auditor.transact(
      async (tx) => {
        const row = await this.#row(ref, tx);
        this.#assertVisible(row, caller, ref);
        if (move === 'resume' && caller.role === 'agent_owner') {
          // Owners may pause their agents, but lifting a suspension is for the security team.
          throw new ForbiddenError('only admins and security analysts resume agents', {
            code: 'ERR_ROLE_REQUIRED',
          });
        }
        if (!rule.from.includes(row.status)) {
          throw new ConflictError(`agent ${row.name} is ${row.status}; it cannot ${move}`, {
            code: 'ERR_ILLEGAL_TRANSITION',
            extensions: { status: row.status, move },
          });
        }
        if (move === 'resume') {
          const provider = await this.#providers.get(row.provider_id, tx);
          if (provider.status !== 'trusted') {
            throw new ConflictError(
              `provider ${provider.name} is distrusted; trust it before resuming its agents`,
              {
                code: 'ERR_PROVIDER_DISTRUSTED',
              },
            );
          }
        }
        const now = this.#deps.clock.now();
        const changes = { status: rule.to, status_reason: reason, updated_at: now };
        await tx.updateTable('agents').set(changes).where('id', '=', row.id).execute();
        await this.#deps.store.changes.publish('identity.agent', { id: row.id, status: rule.to }, tx);
        return toAgent({ ...row, ...changes });
      },
      (a) => ({
        type,
        actor: actorOf(caller),
        action: `agents.${move}`,
        resource: { type: 'agent', id: a.id, name: a.name },
        outcome: 'success',
        request: caller.request,
        details: { reason, status: a.status },
      }),
    );
  }

  /** Records that an agent was just seen acting (token issued, call made). */
  async touch(id: string): Promise<void> {
    await this.#db
      .updateTable('agents')
      .set({ last_seen_at: this.#deps.clock.now() })
      .where('id', '=', id)
      .execute();
  }

  /** True when the caller's role manages every agent (not only their own). */
  static managesAll(caller: Caller): boolean {
    return MANAGERS.has(caller.role);
  }
}
