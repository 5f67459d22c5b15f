import type { AuditActor, Auditor, AuditRequestMeta } from '../audit/index.ts';
import type { Clock } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import type { Role } from './roles.ts';

/** What the registry needs from the rest of Warden. */
export interface IdentityDeps {
  store: Store;
  auditor: Auditor;
  clock: Clock;
}

/** The authenticated person behind an admin call, and the role their credential carries. */
export interface Caller {
  userId: string;
  username: string;
  /** The role the presented API token grants (a token carries one of its user's roles). */
  role: Role;
  request?: AuditRequestMeta | undefined;
}

/** The audit actor for a caller. */
export function actorOf(caller: Caller): AuditActor {
  return { type: 'user', id: caller.userId, name: caller.username, role: caller.role };
}

/** ISO-8601 for API output from stored epoch milliseconds. */
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();
}

/** Like {@link iso} for columns that are never null. */
export function isoRequired(ms: number): string {
  return new Date(Number(ms)).toISOString();
}
