import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { ConflictError, isUuid, NotFoundError, uuidv7 } from '../core/index.ts';
import { decodeCursor, isUniqueViolation, type Page, pageOf } from '../store/index.ts';
import { actorOf, type Caller, type IdentityDeps, isoRequired } from './context.ts';
import type {
  listQuerySchema,
  Template,
  TemplateSpec,
  TemplateVersion,
  templateCreateSchema,
  templateSpecSchema,
} from './schemas.ts';

type TemplateRow = {
  id: string;
  name: string;
  latest_version: number;
  created_at: number;
  updated_at: number;
};
type VersionRow = {
  template_id: string;
  version: number;
  spec: string;
  created_at: number;
  created_by: string;
};

/**
 * Reviewed, pre-authorized agent configurations. Every change makes a new immutable version;
 * agents keep the version they were created from until they are moved explicitly.
 */
export class TemplateRegistry {
  readonly #deps: IdentityDeps;

  constructor(deps: IdentityDeps) {
    this.#deps = deps;
  }

  get #db(): Kysely<any> {
    return this.#deps.store.db;
  }

  async #row(ref: string, db: Kysely<any> = this.#db): Promise<TemplateRow> {
    const row = (await db
      .selectFrom('templates')
      .selectAll()
      .where(isUuid(ref) ? 'id' : 'name', '=', ref)
      .executeTakeFirst()) as TemplateRow | undefined;
    if (!row) throw new NotFoundError(`template ${ref} does not exist`, { code: 'ERR_TEMPLATE_NOT_FOUND' });
    return row;
  }

  /** A specific version of a template. */
  async version(ref: string, version: number, db: Kysely<any> = this.#db): Promise<TemplateVersion> {
    const t = await this.#row(ref, db);
    const row = (await db
      .selectFrom('template_versions')
      .selectAll()
      .where('template_id', '=', t.id)
      .where('version', '=', version)
      .executeTakeFirst()) as VersionRow | undefined;
    if (!row) {
      throw new NotFoundError(`template ${t.name} has no version ${version}`, {
        code: 'ERR_TEMPLATE_VERSION_NOT_FOUND',
      });
    }
    return {
      template_id: row.template_id,
      version: row.version,
      spec: JSON.parse(row.spec) as TemplateSpec,
      created_at: isoRequired(row.created_at),
      created_by: row.created_by,
    };
  }

  /** Finds a template by id or name, with its latest spec. */
  async get(ref: string, db: Kysely<any> = this.#db): Promise<Template> {
    const row = await this.#row(ref, db);
    const v = await this.version(row.id, row.latest_version, db);
    return {
      id: row.id,
      name: row.name,
      latest_version: row.latest_version,
      spec: v.spec,
      created_at: isoRequired(row.created_at),
      updated_at: isoRequired(row.updated_at),
    };
  }

  async versions(ref: string): Promise<TemplateVersion[]> {
    const t = await this.#row(ref);
    const rows = (await this.#db
      .selectFrom('template_versions')
      .selectAll()
      .where('template_id', '=', t.id)
      .orderBy('version')
      .execute()) as VersionRow[];
    return rows.map((row) => ({
      template_id: row.template_id,
      version: row.version,
      spec: JSON.parse(row.spec) as TemplateSpec,
      created_at: isoRequired(row.created_at),
      created_by: row.created_by,
    }));
  }

  async list(query: z.infer<typeof listQuerySchema>): Promise<Page<Template>> {
    let q = this.#db
      .selectFrom('templates as t')
      .innerJoin('template_versions as v', (j) =>
        j.onRef('v.template_id', '=', 't.id').onRef('v.version', '=', 't.latest_version'),
      )
      .select(['t.id', 't.name', 't.latest_version', 't.created_at', 't.updated_at', 'v.spec'])
      .orderBy('t.id')
      .limit(query.limit + 1);
    if (query.cursor) q = q.where('t.id', '>', decodeCursor(query.cursor));
    const rows = (await q.execute()) as (TemplateRow & { spec: string })[];
    return pageOf(
      rows.map((r) => ({
        id: r.id,
        name: r.name,
        latest_version: r.latest_version,
        spec: JSON.parse(r.spec) as TemplateSpec,
        created_at: isoRequired(r.created_at),
        updated_at: isoRequired(r.updated_at),
      })),
      query.limit,
      (t) => t.id,
    );
  }

  async create(input: z.infer<typeof templateCreateSchema>, caller: Caller): Promise<Template> {
    const now = this.#deps.clock.now();
    const id = uuidv7(this.#deps.clock);
    try {
      return await this.#deps.auditor.transact(
        async (tx) => {
          await tx
            .insertInto('templates')
            .values({ id, name: input.name, latest_version: 1, created_at: now, updated_at: now })
            .execute();
          await tx
            .insertInto('template_versions')
            .values({
              template_id: id,
              version: 1,
              spec: JSON.stringify(input.spec),
              created_at: now,
              created_by: caller.userId,
            })
            .execute();
          return this.get(id, tx);
        },
        (t) => ({
          type: 'template.created',
          actor: actorOf(caller),
          action: 'templates.create',
          resource: { type: 'template', id: t.id, name: t.name },
          outcome: 'success',
          request: caller.request,
          details: { version: 1, spec: t.spec },
        }),
      );
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new ConflictError(`a template named ${input.name} already exists`, {
          code: 'ERR_DUPLICATE_NAME',
        });
      }
      throw e;
    }
  }

  /** Creates the next version of a template; existing agents keep theirs. */
  async createVersion(
    ref: string,
    spec: z.infer<typeof templateSpecSchema>,
    caller: Caller,
  ): Promise<Template> {
    return this.#deps.auditor.transact(
      async (tx) => {
        const row = await this.#row(ref, tx);
        const version = row.latest_version + 1;
        const now = this.#deps.clock.now();
        await tx
          .insertInto('template_versions')
          .values({
            template_id: row.id,
            version,
            spec: JSON.stringify(spec),
            created_at: now,
            created_by: caller.userId,
          })
          .execute();
        // Guarded by the version read above: a concurrent writer makes this update miss, and the
        // primary key on (template_id, version) refuses the duplicate insert.
        const res = await tx
          .updateTable('templates')
          .set({ latest_version: version, updated_at: now })
          .where('id', '=', row.id)
          .where('latest_version', '=', row.latest_version)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) {
          throw new ConflictError('the template changed concurrently; retry', {
            code: 'ERR_CONCURRENT_UPDATE',
          });
        }
        return this.get(row.id, tx);
      },
      (t) => ({
        type: 'template.versioned',
        actor: actorOf(caller),
        action: 'templates.version',
        resource: { type: 'template', id: t.id, name: t.name },
        outcome: 'success',
        request: caller.request,
        details: { version: t.latest_version, spec: t.spec },
      }),
    );
  }
}
