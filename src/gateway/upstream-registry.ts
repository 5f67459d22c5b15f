import type { Kysely } from 'kysely';
import type { Auditor } from '../audit/index.ts';
import { type Clock, ConflictError, isUuid, NotFoundError, uuidv7 } from '../core/index.ts';
import { actorOf, type Caller } from '../identity/index.ts';
import { isUniqueViolation, type Store } from '../store/index.ts';
import { type Upstream, type UpstreamInput, upstreamCreateSchema } from './schemas.ts';

/** The change-feed channel on which upstream registrations, approvals and removals travel. */
export const UPSTREAM_CHANNEL = 'gateway.upstream';

type UpstreamRow = {
  id: string;
  name: string;
  kind: 'mcp' | 'http';
  transport: 'streamable_http' | 'stdio' | 'http';
  url: string | null;
  command: string | null;
  credential_ref: string | null;
  scopes: string;
  routes: string;
  timeout_ms: number;
  rate_limit: string | null;
  status: 'pending' | 'approved';
  pins: string;
  approved_by: string | null;
  approved_at: number | null;
  created_at: number;
  updated_at: number;
};

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

function toUpstream(r: UpstreamRow): Upstream {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    transport: r.transport,
    url: r.url,
    command: r.command ? JSON.parse(r.command) : null,
    credential: r.credential_ref,
    scopes: JSON.parse(r.scopes),
    routes: JSON.parse(r.routes),
    timeout_ms: Number(r.timeout_ms),
    rate_limit: r.rate_limit ? JSON.parse(r.rate_limit) : null,
    status: r.status,
    pins: JSON.parse(r.pins),
    approved_by: r.approved_by,
    approved_at: iso(r.approved_at),
    created_at: iso(r.created_at) as string,
    updated_at: iso(r.updated_at) as string,
  };
}

/**
 * The upstreams behind the gateway. A new upstream is `pending` and unreachable until an admin
 * approves it, which pins the hash of every tool definition it offers at that moment.
 */
export class UpstreamRegistry {
  readonly #store: Store;
  readonly #auditor: Auditor;
  readonly #clock: Clock;

  constructor(store: Store, auditor: Auditor, clock: Clock) {
    this.#store = store;
    this.#auditor = auditor;
    this.#clock = clock;
  }

  async #row(ref: string, db: Kysely<any> = this.#store.db): Promise<UpstreamRow> {
    const row = (await db
      .selectFrom('gateway_upstreams')
      .selectAll()
      .where(isUuid(ref) ? 'id' : 'name', '=', ref)
      .executeTakeFirst()) as UpstreamRow | undefined;
    if (!row) throw new NotFoundError(`upstream ${ref} does not exist`, { code: 'ERR_UPSTREAM_NOT_FOUND' });
    return row;
  }

  async get(ref: string): Promise<Upstream> {
    return toUpstream(await this.#row(ref));
  }

  async list(): Promise<Upstream[]> {
    const rows = (await this.#store.db
      .selectFrom('gateway_upstreams')
      .selectAll()
      .orderBy('name')
      .execute()) as UpstreamRow[];
    return rows.map(toUpstream);
  }

  async create(raw: UpstreamInput, caller: Caller): Promise<Upstream> {
    const input = upstreamCreateSchema.parse(raw);
    const now = this.#clock.now();
    const row: UpstreamRow = {
      id: uuidv7(this.#clock),
      name: input.name,
      kind: input.kind,
      transport: input.kind === 'http' ? 'http' : (input.transport ?? 'streamable_http'),
      url: input.url ?? null,
      command: input.command ? JSON.stringify(input.command) : null,
      credential_ref: input.credential ?? null,
      scopes: JSON.stringify(input.scopes),
      routes: JSON.stringify(input.routes),
      timeout_ms: input.timeout_ms,
      rate_limit: input.rate_limit ? JSON.stringify(input.rate_limit) : null,
      status: 'pending',
      pins: '{}',
      approved_by: null,
      approved_at: null,
      created_at: now,
      updated_at: now,
    };
    try {
      return await this.#auditor.transact(
        async (tx) => {
          await tx.insertInto('gateway_upstreams').values(row).execute();
          await this.#store.changes.publish(
            UPSTREAM_CHANNEL,
            { id: row.id, name: row.name, status: 'pending' },
            tx,
          );
          return toUpstream(row);
        },
        (u) => ({
          type: 'upstream.created',
          actor: actorOf(caller),
          action: 'gateway.upstreams.create',
          resource: { type: 'upstream', id: u.id, name: u.name },
          outcome: 'success',
          request: caller.request,
          details: {
            kind: u.kind,
            transport: u.transport,
            url: u.url,
            command: u.command?.command,
            credential_id: u.credential,
            scopes: u.scopes,
            routes: u.routes.length,
          },
        }),
      );
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new ConflictError(`an upstream named ${input.name} already exists`, {
          code: 'ERR_DUPLICATE_NAME',
        });
      }
      throw e;
    }
  }

  /** Approves an upstream with the tool definitions it offers now (name → SHA-256). */
  async approve(ref: string, pins: Record<string, string>, caller: Caller): Promise<Upstream> {
    return this.#auditor
      .transact(
        async (tx) => {
          const row = await this.#row(ref, tx);
          const now = this.#clock.now();
          const changes = {
            status: 'approved' as const,
            pins: JSON.stringify(pins),
            approved_by: caller.userId,
            approved_at: now,
            updated_at: now,
          };
          await tx.updateTable('gateway_upstreams').set(changes).where('id', '=', row.id).execute();
          await this.#store.changes.publish(
            UPSTREAM_CHANNEL,
            { id: row.id, name: row.name, status: 'approved' },
            tx,
          );
          return {
            upstream: toUpstream({ ...row, ...changes }),
            previous: JSON.parse(row.pins) as Record<string, string>,
          };
        },
        ({ upstream, previous }) => ({
          type: 'upstream.approved',
          actor: actorOf(caller),
          action: 'gateway.upstreams.approve',
          resource: { type: 'upstream', id: upstream.id, name: upstream.name },
          outcome: 'success',
          request: caller.request,
          details: {
            pins: upstream.pins,
            changed_tools: Object.keys(upstream.pins).filter(
              (t) => previous[t] !== undefined && previous[t] !== upstream.pins[t],
            ),
            added_tools: Object.keys(upstream.pins).filter((t) => previous[t] === undefined),
            removed_tools: Object.keys(previous).filter((t) => upstream.pins[t] === undefined),
          },
        }),
      )
      .then((r) => r.upstream);
  }

  async remove(ref: string, caller: Caller): Promise<void> {
    await this.#auditor.transact(
      async (tx) => {
        const row = await this.#row(ref, tx);
        await tx.deleteFrom('gateway_upstreams').where('id', '=', row.id).execute();
        await this.#store.changes.publish(
          UPSTREAM_CHANNEL,
          { id: row.id, name: row.name, status: 'removed' },
          tx,
        );
        return row;
      },
      (row) => ({
        type: 'upstream.removed',
        actor: actorOf(caller),
        action: 'gateway.upstreams.remove',
        resource: { type: 'upstream', id: row.id, name: row.name },
        outcome: 'success',
        request: caller.request,
      }),
    );
  }
}
