import type { AuditActor, Auditor, AuditRequestMeta } from '../audit/index.ts';
import { type Clock, ConflictError, InvalidRequestError, NotFoundError } from '../core/index.ts';
import type { AgentRegistry, User } from '../identity/index.ts';
import type { DelegationGrant, DelegationGrantInput, DelegationGrants } from './delegation-grants.ts';
import type { IssuedTokens } from './issued-tokens.ts';

/** The user lookups delegation needs from the registry. */
export interface DelegationUsers {
  get(ref: string): Promise<User>;
  findByEmail(email: string): Promise<User[]>;
}

/** What creating a grant through the token service takes; `createdBy` defaults to the actor. */
export type GrantRequest = Omit<DelegationGrantInput, 'createdBy'> & { createdBy?: string | undefined };

/** The outcome of revoking a grant. */
export interface GrantRevocation {
  grant: DelegationGrant;
  /** False when the grant was already revoked (nothing changed). */
  changed: boolean;
  /** Ids (`jti`) of the access tokens revoked with it. */
  revokedTokens: string[];
}

export interface GrantAdminDeps {
  grants: DelegationGrants;
  issued: IssuedTokens;
  auditor: Auditor;
  clock: Clock;
  agents: AgentRegistry;
  users: DelegationUsers;
  /** Resource indicators tokens may be issued for. */
  resources: readonly string[];
}

/** Longest a grant may run: one year. */
export const MAX_GRANT_LIFETIME_MS = 365 * 86_400_000;

/**
 * Validates and stores a grant, audited as `delegation.grant_created` in the same transaction.
 * A grant never exceeds what the agent's template allows: every scope must be in its
 * `allowed_scopes`, every resource among the configured ones.
 */
export async function createGrant(
  deps: GrantAdminDeps,
  input: GrantRequest,
  actor: AuditActor,
  request?: AuditRequestMeta,
): Promise<DelegationGrant> {
  const user = await deps.users.get(input.userId);
  if (user.status !== 'active') {
    throw new ConflictError(`user ${user.username} is disabled`, { code: 'ERR_USER_DISABLED' });
  }
  const resolved = await deps.agents.resolve(input.agentId);
  if (resolved.agent.status === 'retired') {
    throw new ConflictError(`agent ${resolved.agent.name} is retired`, { code: 'ERR_AGENT_RETIRED' });
  }
  const allowed = new Set(resolved.template.spec.allowed_scopes);
  const outside = input.scopes.filter((s) => !allowed.has(s));
  if (input.scopes.length === 0 || outside.length > 0) {
    throw new InvalidRequestError(
      input.scopes.length === 0
        ? 'a grant needs at least one scope'
        : `scopes outside the agent template: ${outside.join(' ')}`,
      {
        code: 'ERR_SCOPE_NOT_ALLOWED',
        invalidParams: [{ name: 'scopes', reason: 'must be within the agent template allowed_scopes' }],
      },
    );
  }
  const unknown = (input.resources ?? []).filter((r) => !deps.resources.includes(r));
  if (unknown.length > 0) {
    throw new InvalidRequestError(`resources not served by this Warden: ${unknown.join(' ')}`, {
      code: 'ERR_RESOURCE_NOT_ALLOWED',
      invalidParams: [{ name: 'resources', reason: 'must be configured resource indicators' }],
    });
  }
  const now = deps.clock.now();
  if (input.expiresAt <= now || input.expiresAt > now + MAX_GRANT_LIFETIME_MS) {
    throw new InvalidRequestError('a grant must expire in the future and within a year', {
      code: 'ERR_GRANT_EXPIRY',
      invalidParams: [{ name: 'expires_at', reason: 'in the future, at most a year away' }],
    });
  }
  const normalized: DelegationGrantInput = {
    ...input,
    userId: user.id,
    agentId: resolved.agent.id,
    createdBy: input.createdBy ?? actor.id,
  };
  return deps.auditor.transact(
    (tx) => deps.grants.create(tx, normalized),
    (grant) => ({
      type: 'delegation.grant_created',
      actor,
      action: 'grants.create',
      resource: { type: 'delegation_grant', id: grant.id },
      outcome: 'success',
      request,
      details: {
        user_id: grant.userId,
        agent_id: grant.agentId,
        scopes: grant.scopes,
        resources: grant.resources,
        purpose: grant.purpose,
        source: grant.source,
        authorization_details: grant.authorizationDetails !== null,
        expires_at: new Date(grant.expiresAt).toISOString(),
      },
    }),
  );
}

/**
 * Revokes a grant and, in the same transaction, every token issued under it or derived from such
 * a token; each token id goes out on `tokens.revoked`, so introspection and every gateway node
 * refuse them at once. Audited as `delegation.grant_revoked`.
 * @throws NotFoundError when no such grant exists.
 */
export async function revokeGrant(
  deps: GrantAdminDeps,
  id: string,
  actor: AuditActor,
  request?: AuditRequestMeta,
  reason = 'revoked',
): Promise<GrantRevocation> {
  return deps.auditor.transact(
    async (tx) => {
      const grant = await deps.grants.find(id, tx);
      if (!grant) throw new NotFoundError(`grant ${id} does not exist`, { code: 'ERR_GRANT_NOT_FOUND' });
      const changed = await deps.grants.revoke(tx, id, actor.id, reason);
      // Tokens are revoked even when the grant already was: a token recorded in a race with an
      // earlier revocation is caught by the next one.
      const revokedTokens = await deps.issued.revokeByGrant(tx, id, `grant ${id} revoked`);
      const after = (await deps.grants.find(id, tx)) ?? grant;
      return { grant: after, changed, revokedTokens };
    },
    (r) => ({
      type: 'delegation.grant_revoked',
      actor,
      action: 'grants.revoke',
      resource: { type: 'delegation_grant', id: r.grant.id },
      outcome: 'success',
      request,
      details: {
        user_id: r.grant.userId,
        agent_id: r.grant.agentId,
        reason,
        already_revoked: !r.changed,
        revoked_jti_count: r.revokedTokens.length,
        revoked_jtis: r.revokedTokens.slice(0, 100),
      },
    }),
  );
}
