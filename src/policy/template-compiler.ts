import { z } from 'zod';
import { InvalidRequestError } from '../core/index.ts';
import { cedarString, entityLiteral } from './schema.ts';

/** A template's approval rule: calling a matching tool needs a person's approval first. */
export interface TemplateApprovalRule {
  /** Tool id, or `server/*` for every tool of a server. */
  tool: string;
  approvers?: string | undefined;
  reason?: string | undefined;
}

/** The part of an agent template the policy point needs (templates live in the identity part). */
export interface TemplateGrant {
  id: string;
  version: number | string;
  allowedTools: string[];
  allowedScopes: string[];
  approvalRules?: TemplateApprovalRule[] | undefined;
}

const templateSchema = z.object({
  id: z.string().min(1).max(200),
  version: z.union([z.number().int().nonnegative(), z.string().min(1).max(50)]),
  allowedTools: z.array(z.string().min(1).max(300)).max(1000),
  allowedScopes: z.array(z.string().min(1).max(300)).max(1000),
  approvalRules: z
    .array(
      z.object({
        tool: z.string().min(1).max(300),
        approvers: z
          .string()
          .regex(/^(owner|user|group:.+)$/)
          .optional(),
        reason: z.string().max(500).optional(),
      }),
    )
    .max(1000)
    .optional(),
});

/** The id prefix of every policy compiled from template `id`. */
export function templatePolicyPrefix(templateId: string): string {
  return `template:${templateId}:`;
}

function idSafe(value: string): string {
  return value.replace(/[^A-Za-z0-9_.:\-/@*]/g, '_');
}

/**
 * Compiles a template's allowed tools and scopes into Cedar policies, one permit per tool or scope,
 * each scoped to `principal in Warden::Template::"<id>"` so it covers every agent of the template.
 * A tool written `server/*` allows every tool of that server. Tools named by an approval rule get
 * `@approval("required")` (and `@approvers`, `@reason`).
 */
export function compileTemplatePolicies(input: TemplateGrant): string {
  const parsed = templateSchema.safeParse(input);
  if (!parsed.success) {
    throw new InvalidRequestError('the template is not valid', {
      code: 'ERR_POLICY_TEMPLATE_INVALID',
      invalidParams: parsed.error.issues.map((i) => ({
        name: i.path.join('.') || 'template',
        reason: i.message,
      })),
    });
  }
  const t = parsed.data;
  const principal = `principal in ${entityLiteral('Template', t.id)}`;
  const prefix = templatePolicyPrefix(t.id);
  const rules = new Map((t.approvalRules ?? []).map((r) => [r.tool, r]));
  const out: string[] = [];
  const common = `@template(${cedarString(t.id)})\n@template_version(${cedarString(String(t.version))})\n`;
  for (const tool of [...new Set(t.allowedTools)].sort()) {
    const rule = rules.get(tool);
    let notes = '';
    if (rule) {
      notes += '@approval("required")\n';
      if (rule.approvers) notes += `@approvers(${cedarString(rule.approvers)})\n`;
      if (rule.reason) notes += `@reason(${cedarString(rule.reason)})\n`;
    }
    const resource = tool.endsWith('/*')
      ? `resource in ${entityLiteral('Server', tool.slice(0, -2))}`
      : `resource == ${entityLiteral('Tool', tool)}`;
    out.push(
      `@id(${cedarString(`${prefix}tool:${idSafe(tool)}`)})\n${common}${notes}` +
        `permit (${principal}, action == Warden::Action::"call_tool", ${resource});`,
    );
  }
  for (const scope of [...new Set(t.allowedScopes)].sort()) {
    out.push(
      `@id(${cedarString(`${prefix}scope:${idSafe(scope)}`)})\n${common}` +
        `permit (${principal}, action == Warden::Action::"request_scope", resource == ${entityLiteral('Scope', scope)});`,
    );
  }
  return out.join('\n\n');
}
