import type { EntityRef, RequestEntity } from './request.ts';
import { shortType } from './schema.ts';

/**
 * Where search finds the entities a policy names only by group: the agents of a template, the
 * tools of a server. The identity part provides the real directory; {@link StaticEntityDirectory}
 * serves a fixed list (tests, CLI explain, simulations on exported data).
 */
export interface EntityDirectory {
  /** One entity with its parents and attributes. */
  get(type: string, id: string): Promise<RequestEntity | undefined>;
  /** Entities of `type` that are (transitively) members of `parent`. */
  members(parent: EntityRef, type: string): Promise<RequestEntity[]>;
  /** Every entity of `type` (bounded by `limit`). */
  list(type: string, limit: number): Promise<RequestEntity[]>;
}

const key = (type: string, id: string) => `${shortType(type)}\u0000${id}`;

/** A directory over a fixed list of entities. */
export class StaticEntityDirectory implements EntityDirectory {
  readonly #byKey = new Map<string, RequestEntity>();

  constructor(entities: readonly RequestEntity[]) {
    for (const e of entities) this.#byKey.set(key(e.type, e.id), { ...e, type: shortType(e.type) });
  }

  async get(type: string, id: string): Promise<RequestEntity | undefined> {
    return this.#byKey.get(key(type, id));
  }

  #ancestors(e: RequestEntity): Set<string> {
    const seen = new Set<string>();
    const stack = [...(e.parents ?? [])];
    while (stack.length > 0) {
      const p = stack.pop() as EntityRef;
      const k = key(p.type, p.id);
      if (seen.has(k)) continue;
      seen.add(k);
      stack.push(...(this.#byKey.get(k)?.parents ?? []));
    }
    return seen;
  }

  async members(parent: EntityRef, type: string): Promise<RequestEntity[]> {
    const want = key(parent.type, parent.id);
    return [...this.#byKey.values()].filter(
      (e) => e.type === shortType(type) && this.#ancestors(e).has(want),
    );
  }

  async list(type: string, limit: number): Promise<RequestEntity[]> {
    return [...this.#byKey.values()].filter((e) => e.type === shortType(type)).slice(0, limit);
  }
}
