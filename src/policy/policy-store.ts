import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { AuditActor, Auditor } from '../audit/index.ts';
import type { InvalidParam } from '../core/index.ts';
import { type Clock, ConflictError, InvalidRequestError, NotFoundError } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import { type ParsedPolicy, validatePolicySet } from './policy-set.ts';
import { cedarString } from './schema.ts';
import { compileTemplatePolicies, type TemplateGrant, templatePolicyPrefix } from './template-compiler.ts';

type InvalidParamList = InvalidParam[];

/** The change-feed channel every node listens on to reload the active policy set. */
export const POLICY_CHANNEL = 'policy.activated';

/** A stored policy-set version. */
export interface PolicyVersion {
  version: number;
  policies: string;
  policy_count: number;
  sha256: string;
  description: string;
  created_at: number;
  created_by: string;
}

/** One activation (or rollback) in the history of the active version. */
export interface PolicyActivation {
  seq: number;
  version: number;
  previous_version: number | null;
  kind: 'activate' | 'rollback';
  at: number;
  by: string;
}

const pushSchema = z
  .object({
    policies: z.string().max(5_000_000),
    description: z.string().max(1000).optional(),
  })
  .strict();

function toVersion(row: Record<string, unknown>): PolicyVersion {
  return {
    version: Number(row.version),
    policies: row.policies as string,
    policy_count: Number(row.policy_count),
    sha256: row.sha256 as string,
    description: row.description as string,
    created_at: Number(row.created_at),
    created_by: row.created_by as string,
  };
}

function toActivation(row: Record<string, unknown>): PolicyActivation {
  return {
    seq: Number(row.seq),
    version: Number(row.version),
    previous_version: row.previous_version === null ? null : Number(row.previous_version),
    kind: row.kind as 'activate' | 'rollback',
    at: Number(row.at),
    by: row.by as string,
  };
}

/** The latest activation, i.e. which version is active (undefined: none ever activated). */
export async function activeActivation(db: Kysely<any>): Promise<PolicyActivation | undefined> {
  const row = await db
    .selectFrom('policy_activations')
    .selectAll()
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? toActivation(row) : undefined;
}

/** Reads one stored version. */
export async function readVersion(db: Kysely<any>, version: number): Promise<PolicyVersion | undefined> {
  const row = await db
    .selectFrom('policy_versions')
    .select(['version', 'policies', 'policy_count', 'sha256', 'description', 'created_at', 'created_by'])
    .where('version', '=', version)
    .executeTakeFirst();
  return row ? toVersion(row) : undefined;
}

/** The parsed policies of a stored version (written at push time, after validation). */
export async function readParsedPolicies(
  db: Kysely<any>,
  version: number,
): Promise<ParsedPolicy[] | undefined> {
  const row = await db
    .selectFrom('policy_versions')
    .select('parsed')
    .where('version', '=', version)
    .executeTakeFirst();
  return row ? (JSON.parse(row.parsed as string) as ParsedPolicy[]) : undefined;
}

export interface PolicyAdminOptions {
  store: Store;
  auditor: Auditor;
  clock: Clock;
}

/**
 * Versioned policy sets: push (validated against the schema, refused with Cedar's diagnostics),
 * activate, roll back. Versions are immutable. Every change is one transaction holding the change,
 * its `policy.changed` audit event and (for activations) a change-feed notice that makes every
 * node reload the active set.
 */
export class PolicyAdmin {
  readonly #store: Store;
  readonly #auditor: Auditor;
  readonly #clock: Clock;

  constructor(options: PolicyAdminOptions) {
    this.#store = options.store;
    this.#auditor = options.auditor;
    this.#clock = options.clock;
  }

  /** Validates policy text without writing anything. */
  validate(policies: string): { policy_count: number; policy_ids: string[]; warnings: InvalidParamList } {
    const v = validatePolicySet(policies);
    return { policy_count: v.policies.length, policy_ids: v.policies.map((p) => p.id), warnings: v.warnings };
  }

  /** Stores a new version (not active). Refused, with nothing written, if it does not validate. */
  async push(
    input: { policies: string; description?: string | undefined },
    actor: AuditActor,
  ): Promise<PolicyVersion & { warnings: InvalidParamList }> {
    const parsed = pushSchema.safeParse(input);
    if (!parsed.success) {
      throw new InvalidRequestError('the policy push is malformed', {
        code: 'ERR_POLICY_INVALID',
        invalidParams: parsed.error.issues.map((i) => ({
          name: i.path.join('.') || 'body',
          reason: i.message,
        })),
      });
    }
    const checked = validatePolicySet(parsed.data.policies);
    const now = this.#clock.now();
    const stored = await this.#auditor.transact(
      async (tx) => {
        const row = await tx
          .selectFrom('policy_versions')
          .select((eb) => eb.fn.max('version').as('max'))
          .executeTakeFirst();
        const version: PolicyVersion = {
          version: Number(row?.max ?? 0) + 1,
          policies: parsed.data.policies,
          policy_count: checked.policies.length,
          sha256: checked.sha256,
          description: parsed.data.description ?? '',
          created_at: now,
          created_by: `${actor.type}:${actor.id}`,
        };
        try {
          await tx
            .insertInto('policy_versions')
            .values({ ...version, parsed: JSON.stringify(checked.policies) })
            .execute();
        } catch (e) {
          throw new ConflictError('another policy version was pushed at the same time; retry', {
            code: 'ERR_POLICY_CONFLICT',
            cause: e,
          });
        }
        return version;
      },
      (v) => ({
        type: 'policy.changed',
        actor,
        action: 'policy.push',
        resource: { type: 'policy_set', id: String(v.version) },
        outcome: 'success',
        details: {
          version: v.version,
          sha256: v.sha256,
          policy_count: v.policy_count,
          description: v.description,
        },
      }),
    );
    return { ...stored, warnings: checked.warnings };
  }

  /** Makes `version` the active set on every node. */
  async activate(version: number, actor: AuditActor): Promise<PolicyActivation> {
    return this.#switch(version, actor, 'activate');
  }

  /**
   * Returns to an earlier version: `toVersion`, or by default the version that was active before
   * the current one.
   */
  async rollback(actor: AuditActor, toVersion?: number): Promise<PolicyActivation> {
    const current = await activeActivation(this.#store.db);
    const target = toVersion ?? current?.previous_version ?? undefined;
    if (target === undefined || target === null) {
      throw new ConflictError('there is no earlier active version to roll back to', {
        code: 'ERR_POLICY_NO_PREVIOUS',
      });
    }
    return this.#switch(target, actor, 'rollback');
  }

  async #switch(
    version: number,
    actor: AuditActor,
    kind: 'activate' | 'rollback',
  ): Promise<PolicyActivation> {
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new InvalidRequestError('a policy version is a positive integer', {
        code: 'ERR_POLICY_INVALID',
        invalidParams: [{ name: 'version', reason: 'positive integer' }],
      });
    }
    return this.#auditor.transact(
      async (tx) => {
        const exists = await tx
          .selectFrom('policy_versions')
          .select('version')
          .where('version', '=', version)
          .executeTakeFirst();
        if (!exists)
          throw new NotFoundError(`policy version ${version} does not exist`, {
            code: 'ERR_POLICY_NOT_FOUND',
          });
        const current = await activeActivation(tx);
        const row = {
          version,
          previous_version: current?.version ?? null,
          kind,
          at: this.#clock.now(),
          by: `${actor.type}:${actor.id}`,
        };
        const inserted = await tx
          .insertInto('policy_activations')
          .values(row)
          .returning('seq')
          .executeTakeFirst();
        await this.#store.changes.publish(POLICY_CHANNEL, { version }, tx);
        return { seq: Number(inserted?.seq), ...row } as PolicyActivation;
      },
      (a) => ({
        type: 'policy.changed',
        actor,
        action: `policy.${kind}`,
        resource: { type: 'policy_set', id: String(a.version) },
        outcome: 'success',
        details: { version: a.version, previous_version: a.previous_version },
      }),
    );
  }

  /**
   * Replaces the policies compiled from one template (ids `template:<id>:…`) in the active set (or
   * an empty set) with a fresh compilation, as a new version; activates it when asked.
   */
  async pushTemplate(
    template: TemplateGrant,
    actor: AuditActor,
    options: { activate?: boolean } = {},
  ): Promise<PolicyVersion & { warnings: InvalidParamList }> {
    const compiled = compileTemplatePolicies(template);
    const current = await activeActivation(this.#store.db);
    const base = current ? ((await readParsedPolicies(this.#store.db, current.version)) ?? []) : [];
    const prefix = templatePolicyPrefix(template.id);
    // Policies without an @id keep the id they had (`policy<N>` would shift with positions).
    const kept = base
      .filter((p) => !p.id.startsWith(prefix))
      .map((p) =>
        p.annotations.id === undefined ? { ...p, text: `@id(${cedarString(p.id)})\n${p.text}` } : p,
      );
    const text = [...kept.map((p) => p.text), compiled].filter((t) => t.trim() !== '').join('\n\n');
    const pushed = await this.push(
      { policies: text, description: `template ${template.id} version ${template.version}` },
      actor,
    );
    if (options.activate) await this.activate(pushed.version, actor);
    return pushed;
  }

  async get(version: number): Promise<PolicyVersion> {
    const v = await readVersion(this.#store.db, version);
    if (!v)
      throw new NotFoundError(`policy version ${version} does not exist`, { code: 'ERR_POLICY_NOT_FOUND' });
    return v;
  }

  /** Versions, newest first, without their text. */
  async list(limit = 100): Promise<Omit<PolicyVersion, 'policies'>[]> {
    const rows = await this.#store.db
      .selectFrom('policy_versions')
      .select(['version', 'policy_count', 'sha256', 'description', 'created_at', 'created_by'])
      .orderBy('version', 'desc')
      .limit(Math.min(Math.max(1, limit), 1000))
      .execute();
    return rows.map((r) => {
      const { policies: _p, ...rest } = toVersion({ ...r, policies: '' });
      return rest;
    });
  }

  /** The activation history, newest first. */
  async history(limit = 100): Promise<PolicyActivation[]> {
    const rows = await this.#store.db
      .selectFrom('policy_activations')
      .selectAll()
      .orderBy('seq', 'desc')
      .limit(Math.min(Math.max(1, limit), 1000))
      .execute();
    return rows.map(toActivation);
  }

  /** The active version, if any. */
  async active(): Promise<PolicyVersion | undefined> {
    const a = await activeActivation(this.#store.db);
    return a ? readVersion(this.#store.db, a.version) : undefined;
  }
}
