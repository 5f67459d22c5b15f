import { UnavailableError } from '../core/index.ts';

/** Who needs an upstream credential: the agent, its template, the person it acts for. */
export interface CredentialRequest {
  connectionOrCredentialId: string;
  agentId: string;
  templateId: string;
  userId?: string | undefined;
  requestId?: string | undefined;
}

/** The headers to add to the upstream request (lower-case names). */
export interface InjectedCredential {
  headers: Record<string, string>;
  expiresAt?: number;
}

/** The vault as the gateway sees it: mints the credential an upstream call carries. */
export interface CredentialInjector {
  getCredential(request: CredentialRequest): Promise<InjectedCredential>;
}

/** Used when no vault is wired: an upstream that needs a credential cannot be called. */
export const noVault: CredentialInjector = {
  getCredential: async () => {
    throw new UnavailableError(
      'no credential vault is configured on this node; the upstream cannot be called',
      {
        code: 'ERR_VAULT_UNAVAILABLE',
      },
    );
  },
};

/** The requester the gateway uses for its own tool discovery (not on any agent's behalf). */
export const GATEWAY_REQUESTER = { agentId: 'warden:gateway', templateId: 'warden:gateway' } as const;
