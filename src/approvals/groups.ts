import type { Auditor } from '../audit/index.ts';
import { type Clock, InvalidRequestError, NotFoundError } from '../core/index.ts';
import { actorOf, type Caller, type Identity } from '../identity/index.ts';
import type { Store } from '../store/index.ts';
import type { GroupView } from './schemas.ts';

type GroupRow = { name: string; members: string; created_at: number; updated_at: number };

/** Named approver groups: the people a `group` approval rule sends requests to. */
export class ApproverGroups {
  readonly #store: Store;
  readonly #auditor: Auditor;
  readonly #identity: Identity;
  readonly #clock: Clock;

  constructor(deps: { store: Store; auditor: Auditor; identity: Identity; clock: Clock }) {
    this.#store = deps.store;
    this.#auditor = deps.auditor;
    this.#identity = deps.identity;
    this.#clock = deps.clock;
  }

  /** Member user ids of a group; empty when the group does not exist (nobody may approve). */
  async memberIds(name: string): Promise<string[]> {
    const row = (await this.#store.db
      .selectFrom('approval_groups')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst()) as GroupRow | undefined;
    return row ? (JSON.parse(row.members) as string[]) : [];
  }

  async get(name: string): Promise<GroupView> {
    const row = (await this.#store.db
      .selectFrom('approval_groups')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst()) as GroupRow | undefined;
    if (!row)
      throw new NotFoundError(`approver group ${name} does not exist`, { code: 'ERR_GROUP_NOT_FOUND' });
    return this.#view(row);
  }

  async list(): Promise<GroupView[]> {
    const rows = (await this.#store.db
      .selectFrom('approval_groups')
      .selectAll()
      .orderBy('name')
      .execute()) as GroupRow[];
    return Promise.all(rows.map((r) => this.#view(r)));
  }

  async #view(row: GroupRow): Promise<GroupView> {
    const ids = JSON.parse(row.members) as string[];
    const members = await Promise.all(
      ids.map(async (id) => {
        try {
          const user = await this.#identity.users.get(id);
          return { id, username: user.username };
        } catch {
          return { id, username: '(deleted)' };
        }
      }),
    );
    return { name: row.name, members, updated_at: new Date(Number(row.updated_at)).toISOString() };
  }

  /** Creates or replaces a group's members (user ids or usernames; each must exist). */
  async put(name: string, members: string[], caller: Caller): Promise<GroupView> {
    const ids: string[] = [];
    for (const ref of members) {
      try {
        ids.push((await this.#identity.users.get(ref)).id);
      } catch (e) {
        if (e instanceof NotFoundError) {
          throw new InvalidRequestError(`user ${ref} does not exist`, { code: 'ERR_USER_NOT_FOUND' });
        }
        throw e;
      }
    }
    const unique = [...new Set(ids)];
    const now = this.#clock.now();
    await this.#auditor.transact(
      async (tx) => {
        const updated = await tx
          .updateTable('approval_groups')
          .set({ members: JSON.stringify(unique), updated_at: now })
          .where('name', '=', name)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) {
          await tx
            .insertInto('approval_groups')
            .values({ name, members: JSON.stringify(unique), created_at: now, updated_at: now })
            .execute();
        }
      },
      () => ({
        type: 'approval.settings_changed',
        actor: actorOf(caller),
        action: 'approvals.groups.put',
        resource: { type: 'approver_group', id: name },
        outcome: 'success',
        request: caller.request,
        details: { members: unique },
      }),
    );
    return this.get(name);
  }
}
