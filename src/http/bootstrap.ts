import { randomToken } from '../core/index.ts';
import { ROLES } from '../identity/index.ts';
import type { Warden } from './warden.ts';

/** What the first start prints once: how to sign in as the bootstrap administrator. */
export interface BootstrapCredentials {
  username: string;
  /** Generated password (shown once; only its argon2id hash is stored). */
  password: string;
  /** The API token: WARDEN_ADMIN_TOKEN when set, else generated. */
  token: string;
  tokenFromEnv: boolean;
}

/**
 * On an empty registry, creates the administrator `admin` holding every role, with a password and
 * an admin API token. Later starts find a user and do nothing.
 */
export async function bootstrapAdmin(warden: Warden): Promise<BootstrapCredentials | undefined> {
  if ((await warden.identity.users.count()) > 0) return undefined;
  const password = randomToken(18);
  const user = await warden.identity.users.create(
    { username: 'admin', display_name: 'Bootstrap administrator', roles: [...ROLES], password },
    undefined,
  );
  const preset = warden.config.adminToken;
  const { token } = await warden.identity.users.createToken(
    { name: 'bootstrap', role: 'admin', expires_in: 365 * 24 * 3600, user_id: user.id },
    undefined,
    preset,
  );
  return { username: user.username, password, token, tokenFromEnv: preset !== undefined };
}
