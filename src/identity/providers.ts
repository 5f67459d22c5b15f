import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { ConflictError, isUuid, NotFoundError, uuidv7 } from '../core/index.ts';
import { decodeCursor, isUniqueViolation, type Page, pageOf } from '../store/index.ts';
import { actorOf, type Caller, type IdentityDeps, isoRequired } from './context.ts';
import { assertPublicJwks } from './jwks.ts';
import type {
  Provider,
  providerCreateSchema,
  providerListQuerySchema,
  providerUpdateSchema,
} from './schemas.ts';

type ProviderRow = {
  id: string;
  name: string;
  display_name: string | null;
  contact: string;
  jwks: string;
  status: 'trusted' | 'distrusted';
  status_reason: string | null;
  created_at: number;
  updated_at: number;
};

function toProvider(row: ProviderRow): Provider {
  return {
    id: row.id,
    name: row.name,
    display_name: row.display_name,
    contact: row.contact,
    jwks: JSON.parse(row.jwks) as Provider['jwks'],
    status: row.status,
    status_reason: row.status_reason,
    created_at: isoRequired(row.created_at),
    updated_at: isoRequired(row.updated_at),
  };
}

/** The registry of trusted agent providers: the vendors and teams that build agents. */
export class ProviderRegistry {
  readonly #deps: IdentityDeps;

  constructor(deps: IdentityDeps) {
    this.#deps = deps;
  }

  get #db(): Kysely<any> {
    return this.#deps.store.db;
  }

  async #row(ref: string, db: Kysely<any> = this.#db): Promise<ProviderRow> {
    const row = (await db
      .selectFrom('providers')
      .selectAll()
      .where(isUuid(ref) ? 'id' : 'name', '=', ref)
      .executeTakeFirst()) as ProviderRow | undefined;
    if (!row) throw new NotFoundError(`provider ${ref} does not exist`, { code: 'ERR_PROVIDER_NOT_FOUND' });
    return row;
  }

  /** Finds a provider by id or name. */
  async get(ref: string, db?: Kysely<any>): Promise<Provider> {
    return toProvider(await this.#row(ref, db));
  }

  async list(query: z.infer<typeof providerListQuerySchema>): Promise<Page<Provider>> {
    let q = this.#db
      .selectFrom('providers')
      .selectAll()
      .orderBy('id')
      .limit(query.limit + 1);
    if (query.cursor) q = q.where('id', '>', decodeCursor(query.cursor));
    if (query.status) q = q.where('status', '=', query.status);
    const rows = (await q.execute()) as ProviderRow[];
    return pageOf(rows.map(toProvider), query.limit, (p) => p.id);
  }

  async create(input: z.infer<typeof providerCreateSchema>, caller: Caller): Promise<Provider> {
    const jwks = await assertPublicJwks(input.jwks, 'jwks');
    const now = this.#deps.clock.now();
    const row: ProviderRow = {
      id: uuidv7(this.#deps.clock),
      name: input.name,
      display_name: input.display_name ?? null,
      contact: input.contact,
      jwks: JSON.stringify(jwks),
      status: 'trusted',
      status_reason: null,
      created_at: now,
      updated_at: now,
    };
    try {
      return await this.#deps.auditor.transact(
        async (tx) => {
          await tx.insertInto('providers').values(row).execute();
          return toProvider(row);
        },
        (p) => ({
          type: 'provider.created',
          actor: actorOf(caller),
          action: 'providers.create',
          resource: { type: 'provider', id: p.id, name: p.name },
          outcome: 'success',
          request: caller.request,
          details: { kids: jwks.keys.map((k) => k.kid) },
        }),
      );
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new ConflictError(`a provider named ${input.name} already exists`, {
          code: 'ERR_DUPLICATE_NAME',
        });
      }
      throw e;
    }
  }

  async update(ref: string, input: z.infer<typeof providerUpdateSchema>, caller: Caller): Promise<Provider> {
    const jwks = input.jwks ? await assertPublicJwks(input.jwks, 'jwks') : undefined;
    return this.#deps.auditor.transact(
      async (tx) => {
        const row = await this.#row(ref, tx);
        const changes: Partial<ProviderRow> = { updated_at: this.#deps.clock.now() };
        if (input.display_name !== undefined) changes.display_name = input.display_name;
        if (input.contact !== undefined) changes.contact = input.contact;
        if (jwks) changes.jwks = JSON.stringify(jwks);
        await tx.updateTable('providers').set(changes).where('id', '=', row.id).execute();
        return toProvider({ ...row, ...changes });
      },
      (p) => ({
        type: 'provider.updated',
        actor: actorOf(caller),
        action: 'providers.update',
        resource: { type: 'provider', id: p.id, name: p.name },
        outcome: 'success',
        request: caller.request,
        details: { changed: Object.keys(input), kids: jwks?.keys.map((k) => k.kid) },
      }),
    );
  }

  /**
   * Distrusts a provider and suspends every active agent it built, in one transaction, and tells
   * every node at once (the change feed), so none of its agents can act a second later.
   */
  async distrust(
    ref: string,
    reason: string,
    caller: Caller,
  ): Promise<{ provider: Provider; suspended: string[] }> {
    return this.#deps.auditor.transact(
      async (tx) => {
        const row = await this.#row(ref, tx);
        if (row.status === 'distrusted') {
          throw new ConflictError(`provider ${row.name} is already distrusted`, {
            code: 'ERR_ILLEGAL_TRANSITION',
          });
        }
        const now = this.#deps.clock.now();
        const agents = await tx
          .selectFrom('agents')
          .select('id')
          .where('provider_id', '=', row.id)
          .where('status', '=', 'active')
          .execute();
        const suspended = agents.map((a) => a.id as string);
        await tx
          .updateTable('providers')
          .set({ status: 'distrusted', status_reason: reason, updated_at: now })
          .where('id', '=', row.id)
          .execute();
        if (suspended.length > 0) {
          await tx
            .updateTable('agents')
            .set({ status: 'suspended', status_reason: `provider distrusted: ${reason}`, updated_at: now })
            .where('id', 'in', suspended)
            .execute();
        }
        await this.#deps.store.changes.publish(
          'identity.provider',
          { id: row.id, status: 'distrusted', suspended },
          tx,
        );
        return {
          provider: toProvider({ ...row, status: 'distrusted', status_reason: reason, updated_at: now }),
          suspended,
        };
      },
      (r) => ({
        type: 'provider.distrusted',
        actor: actorOf(caller),
        action: 'providers.distrust',
        resource: { type: 'provider', id: r.provider.id, name: r.provider.name },
        outcome: 'success',
        request: caller.request,
        details: { reason, suspended_agents: r.suspended },
      }),
    );
  }

  /** Trusts a provider again. Its suspended agents stay suspended until resumed one by one. */
  async trust(ref: string, reason: string, caller: Caller): Promise<Provider> {
    return this.#deps.auditor.transact(
      async (tx) => {
        const row = await this.#row(ref, tx);
        if (row.status === 'trusted') {
          throw new ConflictError(`provider ${row.name} is already trusted`, {
            code: 'ERR_ILLEGAL_TRANSITION',
          });
        }
        const now = this.#deps.clock.now();
        await tx
          .updateTable('providers')
          .set({ status: 'trusted', status_reason: reason, updated_at: now })
          .where('id', '=', row.id)
          .execute();
        await this.#deps.store.changes.publish('identity.provider', { id: row.id, status: 'trusted' }, tx);
        return toProvider({ ...row, status: 'trusted', status_reason: reason, updated_at: now });
      },
      (p) => ({
        type: 'provider.trusted',
        actor: actorOf(caller),
        action: 'providers.trust',
        resource: { type: 'provider', id: p.id, name: p.name },
        outcome: 'success',
        request: caller.request,
        details: { reason },
      }),
    );
  }
}
