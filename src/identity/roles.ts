import { z } from 'zod';

/**
 * Admin roles. `admin` may do everything; `security_analyst` reads everything and may suspend
 * agents and distrust providers (the kill switch); `auditor` reads the audit ledger only;
 * `approver` decides approval requests; `agent_owner` registers and manages their own agents.
 */
export const ROLES = ['admin', 'security_analyst', 'auditor', 'approver', 'agent_owner'] as const;
export type Role = (typeof ROLES)[number];
export const roleSchema = z.enum(ROLES);
