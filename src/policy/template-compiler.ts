import { z } from 'zod';
import { InvalidRequestError } from '../core/index.ts';
import { cedarString, entityLiteral } from './schema.ts';

/**
 * A template's approval rule: calling a matching tool needs a person's approval first — always,
 * or (with `argument` and `above`) only when that argument is present and not a number at most
 * `above`.
 */
export interface TemplateApprovalRule {
  /** A tool id, or a wildcard (see {@link compileTemplatePolicies}). */
  tool: string;
  argument?: string | undefined;
  above?: number | undefined;
  /** `owner`, `user`, `group:<name>` (or `group` with `group`). */
  approvers?: string | undefined;
  group?: string | undefined;
  reason?: string | undefined;
}

/** The part of an agent template the policy point needs (templates live in the identity part). */
export interface TemplateGrant {
  id: string;
  version: number | string;
  allowedTools: string[];
  allowedScopes: string[];
  approvalRules?: TemplateApprovalRule[] | undefined;
  /** Tools that may only be called with a declared intent. */
  requireIntent?: string[] | undefined;
  /** Every action of the template's agents needs a verified attestation. */
  requireAttestation?: boolean | undefined;
  /** Vault connections (by name) whose upstream token the agents may obtain in exchange mode. */
  exchangeConnections?: string[] | undefined;
}

const toolSchema = z.string().min(1).max(300);

const templateSchema = z.object({
  id: z.string().min(1).max(200),
  version: z.union([z.number().int().nonnegative(), z.string().min(1).max(50)]),
  allowedTools: z.array(toolSchema).max(1000),
  allowedScopes: z.array(z.string().min(1).max(300)).max(1000),
  approvalRules: z
    .array(
      z.object({
        tool: toolSchema,
        argument: z.string().min(1).max(100).optional(),
        above: z.number().finite().optional(),
        approvers: z
          .string()
          .regex(/^(owner|user|group|group:.+)$/)
          .optional(),
        group: z.string().min(1).max(100).optional(),
        reason: z.string().max(500).optional(),
      }),
    )
    .max(1000)
    .optional(),
  requireIntent: z.array(toolSchema).max(1000).optional(),
  requireAttestation: z.boolean().optional(),
  exchangeConnections: z
    .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/))
    .max(100)
    .optional(),
});

/** The id prefix of every policy compiled from template `id`. */
export function templatePolicyPrefix(templateId: string): string {
  return `template:${templateId}:`;
}

function idSafe(value: string): string {
  return value.replace(/[^A-Za-z0-9_.:\-/@*]/g, '_');
}

function invalid(name: string, reason: string): InvalidRequestError {
  return new InvalidRequestError('the template is not valid', {
    code: 'ERR_POLICY_TEMPLATE_INVALID',
    invalidParams: [{ name, reason }],
  });
}

/**
 * The resource constraint for a tool pattern: `x` is the tool `x`; `*` any tool; `srv/*` or
 * `srv.*` every tool of the server `srv` (tools are members of their server).
 */
function toolConstraint(tool: string, where: string): string {
  if (tool === '*') return 'resource is Warden::Tool';
  if (!tool.includes('*')) return `resource == ${entityLiteral('Tool', tool)}`;
  const m = /^(.+)[/.]\*$/.exec(tool);
  if (!m || (m[1] as string).includes('*')) {
    throw invalid(where, `${JSON.stringify(tool)}: a wildcard must be "*" or "<server>/*" / "<server>.*"`);
  }
  return `resource in ${entityLiteral('Server', m[1] as string)}`;
}

/** True when the allowed pattern `pattern` covers the tool or pattern `tool` by name. */
function covers(pattern: string, tool: string): boolean {
  if (pattern === '*') return true;
  const m = /^(.+[/.])\*$/.exec(pattern);
  return !!m && tool.startsWith(m[1] as string);
}

/** The condition form of an allowed pattern (empty for `*`, which any tool satisfies). */
function coverExpression(pattern: string): string {
  if (pattern === '*') return '';
  return toolConstraint(pattern, 'allowedTools');
}

/**
 * The argument is present and either not a number or above the bound. Numeric arguments arrive
 * rounded up, so `> floor(above)` never lets a value above the bound through.
 */
function largeArgument(argument: string, above: number): string {
  const arg = cedarString(argument);
  return (
    `context.args.hasTag(${arg}) && !(context.num_args.hasTag(${arg}) && ` +
    `context.num_args.getTag(${arg}) <= ${Math.floor(above)})`
  );
}

function approversOf(rule: TemplateApprovalRule): string | undefined {
  if (rule.approvers === 'group') return rule.group ? `group:${rule.group}` : undefined;
  return rule.approvers;
}

/**
 * Compiles a template's allowed tools and scopes into Cedar policies, each scoped to
 * `principal in Warden::Template::"<id>"` so it covers every agent of the template: one permit per
 * tool pattern (`call_tool`) and per scope (`request_scope`). Approval rules put
 * `@approval("required")` (`@approvers`, `@reason`) on the tool's permit; a conditional rule
 * (`argument` + `above`) splits it into an approval permit for large or non-numeric values and a
 * plain permit for the rest. `requireIntent` tools get a forbid without a declared intent;
 * `requireAttestation` a forbid without a verified attestation; each of `exchangeConnections` a
 * permit of `exchange_credential` on that connection (the vault's exchange mode).
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
  const rules = new Map<string, TemplateApprovalRule>();
  // Rules on tools reached through a wildcard: an extra approval permit, bounded by the wildcard
  // so it never grants more than the template does; it co-determines the permit, so approval
  // is required whenever it applies.
  const extra: { rule: TemplateApprovalRule; cover: string }[] = [];
  for (const r of t.approvalRules ?? []) {
    if ((r.argument === undefined) !== (r.above === undefined)) {
      throw invalid('approvalRules', 'argument and above go together');
    }
    if (t.allowedTools.includes(r.tool)) {
      rules.set(r.tool, r);
      continue;
    }
    const cover = t.allowedTools.find((a) => covers(a, r.tool));
    if (!cover) throw invalid('approvalRules.tool', `${r.tool} is not an allowed tool`);
    extra.push({ rule: r, cover });
  }
  const out: string[] = [];
  const common = `@template(${cedarString(t.id)})\n@template_version(${cedarString(String(t.version))})\n`;
  const callTool = 'action == Warden::Action::"call_tool"';
  for (const tool of [...new Set(t.allowedTools)].sort()) {
    const resource = toolConstraint(tool, 'allowedTools');
    const id = `${prefix}tool:${idSafe(tool)}`;
    const rule = rules.get(tool);
    if (!rule) {
      out.push(`@id(${cedarString(id)})\n${common}permit (${principal}, ${callTool}, ${resource});`);
      continue;
    }
    let notes = '@approval("required")\n';
    const approvers = approversOf(rule);
    if (approvers) notes += `@approvers(${cedarString(approvers)})\n`;
    if (rule.reason) notes += `@reason(${cedarString(rule.reason)})\n`;
    if (rule.argument === undefined || rule.above === undefined) {
      out.push(`@id(${cedarString(id)})\n${common}${notes}permit (${principal}, ${callTool}, ${resource});`);
      continue;
    }
    const large = largeArgument(rule.argument, rule.above);
    out.push(
      `@id(${cedarString(`${id}:approval`)})\n${common}${notes}permit (${principal}, ${callTool}, ${resource}) when { ${large} };`,
      `@id(${cedarString(id)})\n${common}permit (${principal}, ${callTool}, ${resource}) unless { ${large} };`,
    );
  }
  for (const { rule, cover } of extra) {
    let notes = '@approval("required")\n';
    const approvers = approversOf(rule);
    if (approvers) notes += `@approvers(${cedarString(approvers)})\n`;
    if (rule.reason) notes += `@reason(${cedarString(rule.reason)})\n`;
    const conditions = [coverExpression(cover)];
    if (rule.argument !== undefined && rule.above !== undefined)
      conditions.push(`(${largeArgument(rule.argument, rule.above)})`);
    const when = conditions.filter((c) => c !== '').join(' && ');
    out.push(
      `@id(${cedarString(`${prefix}tool:${idSafe(rule.tool)}:approval`)})\n${common}${notes}` +
        `permit (${principal}, ${callTool}, ${toolConstraint(rule.tool, 'approvalRules.tool')})${when ? ` when { ${when} }` : ''};`,
    );
  }
  for (const tool of [...new Set(t.requireIntent ?? [])].sort()) {
    out.push(
      `@id(${cedarString(`${prefix}intent:${idSafe(tool)}`)})\n${common}@reason("a declared intent is required")\n` +
        `forbid (${principal}, ${callTool}, ${toolConstraint(tool, 'requireIntent')}) when { context.intent.text == "" };`,
    );
  }
  if (t.requireAttestation) {
    out.push(
      `@id(${cedarString(`${prefix}attestation`)})\n${common}@reason("a verified attestation is required")\n` +
        `forbid (${principal}, action, resource) unless { context.attestation.verified };`,
    );
  }
  for (const name of [...new Set(t.exchangeConnections ?? [])].sort()) {
    out.push(
      `@id(${cedarString(`${prefix}exchange:${idSafe(name)}`)})\n${common}` +
        `permit (${principal}, action == Warden::Action::"exchange_credential", resource == ${entityLiteral('Credential', name)});`,
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
