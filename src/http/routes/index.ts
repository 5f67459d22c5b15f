import type { AnyRoute } from '../route.ts';
import type { Warden } from '../warden.ts';
import { approvalsRoutes } from './approvals.ts';
import { identityRoutes } from './identity.ts';
import { vaultRoutes } from './vault.ts';

/** Every part's admin API routes. Add a part's routes here (one line each). */
export function allRoutes(warden: Warden): AnyRoute[] {
  return [...identityRoutes(warden), ...vaultRoutes(warden), ...approvalsRoutes(warden)];
}
