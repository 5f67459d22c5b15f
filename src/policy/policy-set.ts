import { createHash } from 'node:crypto';
import { type InvalidParam, InvalidRequestError } from '../core/index.ts';
import type { CedarTypes } from './cedar.ts';
import { cedar } from './cedar.ts';
import { WARDEN_SCHEMA } from './schema.ts';

/** One static policy of a set, with the id Warden knows it by. */
export interface ParsedPolicy {
  id: string;
  /** The policy's Cedar text. */
  text: string;
  effect: 'permit' | 'forbid';
  annotations: Record<string, string>;
  /** Cedar's JSON form (scope constraints and conditions), used to index the policy. */
  json: CedarTypes.PolicyJson;
}

/** A parsed, validated policy set. */
export interface ParsedPolicySet {
  policies: ParsedPolicy[];
  /** SHA-256 of the source text: identifies the content of a version. */
  sha256: string;
}

const ID_RE = /^[A-Za-z0-9_.:\-/@*]{1,200}$/;

function diagnostics(prefix: string, errors: CedarTypes.DetailedError[]): InvalidParam[] {
  return errors.map((e) => ({ name: prefix, reason: e.help ? `${e.message} (${e.help})` : e.message }));
}

/**
 * Splits Cedar policy-set text into policies and gives each its id: the `@id("…")` annotation when
 * present, otherwise `policy<N>` by position. Refuses text that does not parse, templates (slots),
 * and duplicate or malformed ids, with Cedar's diagnostics as `invalid-params`.
 */
export function parsePolicySet(text: string): ParsedPolicySet {
  const parts = cedar().policySetTextToParts(text);
  if (parts.type !== 'success') {
    throw new InvalidRequestError('the policy set does not parse', {
      code: 'ERR_POLICY_INVALID',
      invalidParams: diagnostics('policies', parts.errors),
    });
  }
  if (parts.policy_templates.length > 0) {
    throw new InvalidRequestError('policy templates with slots are not supported; write static policies', {
      code: 'ERR_POLICY_INVALID',
      invalidParams: [{ name: 'policies', reason: 'a policy uses ?principal or ?resource slots' }],
    });
  }
  const seen = new Set<string>();
  const policies: ParsedPolicy[] = [];
  const problems: InvalidParam[] = [];
  // Cedar returns the policies sorted by its own ids (`policy0`, `policy1`, `policy10`…, in byte
  // order); undo that sort so `policy<N>` names the N-th policy of the text.
  const cedarIds = parts.policies.map((_, i) => `policy${i}`).sort();
  const inSourceOrder: string[] = new Array(parts.policies.length);
  parts.policies.forEach((policyText, k) => {
    inSourceOrder[Number((cedarIds[k] as string).slice('policy'.length))] = policyText;
  });
  inSourceOrder.forEach((policyText, index) => {
    const json = cedar().policyToJson(policyText);
    if (json.type !== 'success') {
      problems.push(...diagnostics(`policies[${index}]`, json.errors));
      return;
    }
    const annotations = { ...(json.json.annotations ?? {}) };
    const id = annotations.id ?? `policy${index}`;
    if (!ID_RE.test(id)) {
      problems.push({
        name: `policies[${index}]`,
        reason: `policy id ${JSON.stringify(id)} is not a valid id`,
      });
      return;
    }
    if (seen.has(id)) {
      problems.push({ name: `policies.${id}`, reason: `duplicate policy id ${JSON.stringify(id)}` });
      return;
    }
    seen.add(id);
    policies.push({ id, text: policyText, effect: json.json.effect, annotations, json: json.json });
  });
  if (problems.length > 0) {
    throw new InvalidRequestError('the policy set is invalid', {
      code: 'ERR_POLICY_INVALID',
      invalidParams: problems,
    });
  }
  return { policies, sha256: createHash('sha256').update(text, 'utf8').digest('hex') };
}

/** The policies as Cedar's `staticPolicies` record, keyed by Warden's ids. */
export function staticPolicies(policies: readonly ParsedPolicy[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of policies) out[p.id] = p.text;
  return out;
}

/**
 * Parses and validates a policy set against the Warden schema (Cedar's strict validator). Any
 * validation error refuses the whole set with Cedar's diagnostics; warnings are returned.
 */
export function validatePolicySet(text: string): ParsedPolicySet & { warnings: InvalidParam[] } {
  const parsed = parsePolicySet(text);
  const answer = cedar().validate({
    schema: WARDEN_SCHEMA,
    validationSettings: { mode: 'strict' },
    policies: { staticPolicies: staticPolicies(parsed.policies) },
  });
  if (answer.type !== 'success') {
    throw new InvalidRequestError('the policy set cannot be validated', {
      code: 'ERR_POLICY_INVALID',
      invalidParams: diagnostics('policies', answer.errors),
    });
  }
  if (answer.validationErrors.length > 0) {
    throw new InvalidRequestError('the policy set does not validate against the Warden schema', {
      code: 'ERR_POLICY_INVALID',
      invalidParams: answer.validationErrors.map((v) => ({
        name: `policies.${v.policyId}`,
        reason: v.error.help ? `${v.error.message} (${v.error.help})` : v.error.message,
      })),
    });
  }
  const warnings = answer.validationWarnings.map((v) => ({
    name: `policies.${v.policyId}`,
    reason: v.error.message,
  }));
  return { ...parsed, warnings };
}
