import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { AttestedClaims } from './attestation.ts';
import type { IdentityDeps } from './context.ts';
import { isoRequired } from './context.ts';

/** What an agent instance last proved about itself: one row per (agent, instance key). */
export const attestedInstanceSchema = z.object({
  agent_id: z.string(),
  /** RFC 7638 thumbprint of the instance key (the attestation's `cnf.jwk`). */
  instance_id: z.string(),
  provider_id: z.string(),
  /** The provider key that signed the attestation (its `kid`; never key material). */
  provider_kid: z.string(),
  software_version: z.string().nullable(),
  image_digest: z.string().nullable(),
  model: z.string().nullable(),
  /** base64url(SHA-256(canonical JSON of the attested claims)). */
  digest: z.string(),
  attestation_expires_at: z.string(),
  first_attested_at: z.string(),
  last_attested_at: z.string(),
});
export type AttestedInstance = z.infer<typeof attestedInstanceSchema>;

/** Input for {@link AgentInstances.record}. */
export interface InstanceAttestation {
  agentId: string;
  instanceId: string;
  providerId: string;
  providerKid: string;
  claims: AttestedClaims;
  digest: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

type Row = {
  agent_id: string;
  instance_id: string;
  provider_id: string;
  provider_kid: string;
  software_version: string | null;
  image_digest: string | null;
  model: string | null;
  digest: string;
  attestation_expires_at: number;
  first_attested_at: number;
  last_attested_at: number;
};

/**
 * The latest attested claims of each agent instance (an instance is identified by the key its
 * provider attested), so the registry can say which builds and models an agent really ran.
 */
export class AgentInstances {
  readonly #deps: IdentityDeps;

  constructor(deps: IdentityDeps) {
    this.#deps = deps;
  }

  /** Records an attestation (inside the caller's transaction, next to its `token.issued` event). */
  async record(tx: Kysely<any>, a: InstanceAttestation): Promise<void> {
    const now = this.#deps.clock.now();
    const latest = {
      provider_id: a.providerId,
      provider_kid: a.providerKid,
      software_version: a.claims.software_version ?? null,
      image_digest: a.claims.image_digest ?? null,
      model: a.claims.model ?? null,
      digest: a.digest,
      attestation_expires_at: a.expiresAt,
      last_attested_at: now,
    };
    await tx
      .insertInto('agent_instances')
      .values({ agent_id: a.agentId, instance_id: a.instanceId, first_attested_at: now, ...latest })
      .onConflict((oc) => oc.columns(['agent_id', 'instance_id']).doUpdateSet(latest))
      .execute();
  }

  /**
   * Forgets instances not attested for `maxAgeMs` (default 30 days): instance keys are often per
   * container, so rows would otherwise accumulate. The ledger keeps every attestation regardless.
   * @returns how many rows were deleted.
   */
  async purge(maxAgeMs = 30 * 86_400_000): Promise<number> {
    const result = await this.#deps.store.db
      .deleteFrom('agent_instances')
      .where('last_attested_at', '<', this.#deps.clock.now() - maxAgeMs)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** An agent's attested instances, most recently attested first (at most `limit`). */
  async list(agentId: string, limit = 100): Promise<AttestedInstance[]> {
    const rows = (await this.#deps.store.db
      .selectFrom('agent_instances')
      .selectAll()
      .where('agent_id', '=', agentId)
      .orderBy('last_attested_at', 'desc')
      .limit(limit)
      .execute()) as Row[];
    return rows.map((r) => ({
      agent_id: r.agent_id,
      instance_id: r.instance_id,
      provider_id: r.provider_id,
      provider_kid: r.provider_kid,
      software_version: r.software_version,
      image_digest: r.image_digest,
      model: r.model,
      digest: r.digest,
      attestation_expires_at: isoRequired(r.attestation_expires_at),
      first_attested_at: isoRequired(r.first_attested_at),
      last_attested_at: isoRequired(r.last_attested_at),
    }));
  }
}
