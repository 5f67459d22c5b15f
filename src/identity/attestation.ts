import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../audit/index.ts';
import type { TemplateSpec } from './schemas.ts';

/**
 * The claims a provider attests about one agent instance, as Warden reads them from a Client
 * Attestation JWT (draft-ietf-oauth-attestation-based-client-auth). Names follow RFC 7591's
 * `software_version`; `image_digest` is the OCI image digest the instance runs, `model` the model
 * identifier it calls. Other claims in the attestation are ignored.
 */
export const attestedClaimsSchema = z.object({
  software_version: z.string().min(1).max(50).optional(),
  image_digest: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/)
    .optional(),
  model: z.string().min(1).max(200).optional(),
});
export type AttestedClaims = z.infer<typeof attestedClaimsSchema>;

/** The attested claims of a verified attestation payload, or undefined when they are malformed. */
export function attestedClaimsOf(payload: Record<string, unknown>): AttestedClaims | undefined {
  const picked = {
    software_version: payload.software_version,
    image_digest: payload.image_digest,
    model: payload.model,
  };
  const parsed = attestedClaimsSchema.safeParse(picked);
  if (!parsed.success) return undefined;
  // Only the members present: the digest must not depend on how absent ones were spelled.
  return Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== undefined)) as AttestedClaims;
}

/**
 * base64url(SHA-256(canonical JSON of the attested claims)): what access tokens carry in
 * `agent_attestation.digest`. Equal claims give equal digests on every node, so a resource server
 * can compare it with the digest of a build it knows to be good.
 */
export function attestationDigest(claims: AttestedClaims): string {
  return createHash('sha256').update(canonicalJson(claims)).digest('base64url');
}

/**
 * Checks attested claims against a template's attestation requirement. An empty allow-list allows
 * anything; a non-empty one requires the claim to be attested and listed.
 * @returns undefined when allowed, otherwise the refusal reason code.
 */
export function attestationRefusal(
  requirement: TemplateSpec['attestation'],
  claims: AttestedClaims,
): string | undefined {
  if (requirement.image_digests.length > 0) {
    if (!claims.image_digest || !requirement.image_digests.includes(claims.image_digest)) {
      return 'attestation_image_digest_not_allowed';
    }
  }
  if (requirement.models.length > 0) {
    if (!claims.model || !requirement.models.includes(claims.model)) return 'attestation_model_not_allowed';
  }
  if (requirement.min_software_version !== undefined) {
    const have = versionParts(claims.software_version);
    const want = versionParts(requirement.min_software_version);
    if (!have || !want || compareParts(have, want) < 0) return 'attestation_software_version_too_old';
  }
  return undefined;
}

/** `1.2.3`, `v1.2`, `1.2.3-rc1` → numeric release parts; anything else → undefined. */
function versionParts(version: string | undefined): number[] | undefined {
  const match = version ? /^v?(\d+(?:\.\d+)*)/.exec(version) : null;
  return match ? (match[1] as string).split('.').map(Number) : undefined;
}

function compareParts(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
