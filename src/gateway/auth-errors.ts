import { ForbiddenError, UnauthenticatedError } from '../core/index.ts';

/** How a resource server names itself in challenges (RFC 9728 §5.1, RFC 6750 §3, RFC 9449 §7.1). */
export interface ChallengeContext {
  /** URL of this resource's protected resource metadata document. */
  resourceMetadata: string;
  /** Signing algorithms accepted for DPoP proofs. */
  dpopAlgs: readonly string[];
}

/** OAuth error codes a resource server puts in `WWW-Authenticate`. */
export type ResourceErrorCode = 'invalid_token' | 'invalid_dpop_proof' | 'invalid_request' | undefined;

function quote(v: string): string {
  return `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/**
 * Builds the `WWW-Authenticate` challenges for a refused request: a DPoP challenge (the scheme this
 * gateway wants) and a Bearer challenge pointing at the resource metadata, as the MCP
 * authorization spec requires. Error descriptions never contain the token.
 */
export function challenge(
  ctx: ChallengeContext,
  error: ResourceErrorCode,
  description: string | undefined,
  extra: Record<string, string> = {},
): string {
  const params = (scheme: 'DPoP' | 'Bearer'): string => {
    const p: string[] = [];
    if (error && (scheme === 'DPoP' || error !== 'invalid_dpop_proof')) p.push(`error=${quote(error)}`);
    if (error && description && (scheme === 'DPoP' || error !== 'invalid_dpop_proof')) {
      p.push(`error_description=${quote(description)}`);
    }
    if (scheme === 'DPoP') p.push(`algs=${quote(ctx.dpopAlgs.join(' '))}`);
    p.push(`resource_metadata=${quote(ctx.resourceMetadata)}`);
    for (const [k, v] of Object.entries(extra)) p.push(`${k}=${quote(v)}`);
    return `${scheme} ${p.join(', ')}`;
  };
  return `${params('DPoP')}, ${params('Bearer')}`;
}

/** A 401 for the agent: no token, a bad token or a bad DPoP proof. */
export function refused(
  ctx: ChallengeContext,
  error: ResourceErrorCode,
  code: string,
  description: string,
): UnauthenticatedError {
  return new UnauthenticatedError(description, {
    code,
    headers: { 'www-authenticate': challenge(ctx, error, description) },
  });
}

/** A 403 `insufficient_scope` naming the scopes the request needs (RFC 6750 §3.1). */
export function insufficientScope(ctx: ChallengeContext, needed: string[]): ForbiddenError {
  const description = `this request needs the scope ${needed.join(' ')}`;
  return new ForbiddenError(description, {
    code: 'ERR_INSUFFICIENT_SCOPE',
    headers: {
      'www-authenticate': `Bearer error="insufficient_scope", scope="${needed.join(' ')}", resource_metadata="${ctx.resourceMetadata}", error_description="${description}"`,
    },
    extensions: { required_scopes: needed },
  });
}
