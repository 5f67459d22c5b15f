import { z } from 'zod';

/**
 * Who may use a stored credential or connection, and for whom.
 *
 * - `agents` / `templates`: the agents (by id) and agent templates (by id) allowed to use it. An
 *   agent is allowed when it is listed or its template is. Both empty: nobody may use it.
 * - `onBehalfOf`: for which user the agent must be acting.
 *   - `self`: only for the user who owns the secret (a connected account's user; a credential's
 *     `ownerUserId`, which must then be set);
 *   - `any`: for any user, or for none;
 *   - `{ userId }`: only when acting for that named user.
 */
export const accessRuleSchema = z
  .object({
    agents: z.array(z.string().min(1).max(200)).max(1000).default([]),
    templates: z.array(z.string().min(1).max(200)).max(1000).default([]),
    onBehalfOf: z
      .union([z.literal('self'), z.literal('any'), z.object({ userId: z.string().min(1).max(200) }).strict()])
      .default('self'),
  })
  .strict();

export type AccessRule = z.infer<typeof accessRuleSchema>;
export type AccessRuleInput = z.input<typeof accessRuleSchema>;

/** The caller of a mint: the agent, its template, and the user it acts for (if any). */
export interface CredentialRequester {
  agentId: string;
  templateId: string;
  userId?: string | undefined;
}

/**
 * Checks a request against a rule. Returns `undefined` when allowed, else the reason for the
 * refusal (safe to show and to audit: it names ids, never secrets).
 */
export function checkAccessRule(
  rule: AccessRule,
  requester: CredentialRequester,
  ownerUserId: string | null | undefined,
): string | undefined {
  const agentAllowed =
    rule.agents.includes(requester.agentId) || rule.templates.includes(requester.templateId);
  if (!agentAllowed) return 'the agent and its template are not allowed to use this credential';
  const on = rule.onBehalfOf;
  if (on === 'any') return undefined;
  if (on === 'self') {
    if (!requester.userId) return 'this credential is used only on behalf of its owner; no user was given';
    if (!ownerUserId) return 'this credential has no owner, so it cannot be used on behalf of one';
    if (requester.userId !== ownerUserId) return 'this credential is used only on behalf of its owner';
    return undefined;
  }
  if (requester.userId !== on.userId) return 'this credential is used only on behalf of a named user';
  return undefined;
}
