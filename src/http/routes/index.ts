import type { AnyRoute } from '../route.ts';
import type { Warden } from '../warden.ts';
import { approvalsRoutes } from './approvals.ts';
import { auditRoutes } from './audit.ts';
import { exportRoutes } from './export.ts';
import { gatewayRoutes } from './gateway.ts';
import { grantRoutes } from './grants.ts';
import { identityRoutes } from './identity.ts';
import { oauthAdminRoutes } from './oauth-admin.ts';
import { policyRoutes } from './policy.ts';
import { vaultRoutes } from './vault.ts';

/** Every part's admin API routes. Add a part's routes here (one line each). */
export function allRoutes(warden: Warden): AnyRoute[] {
  return [
    ...identityRoutes(warden),
    ...auditRoutes(warden),
    ...oauthAdminRoutes(warden),
    ...grantRoutes(warden),
    ...policyRoutes(warden),
    ...vaultRoutes(warden),
    ...exportRoutes(warden),
    ...gatewayRoutes(warden),
    ...approvalsRoutes(warden),
  ];
}
