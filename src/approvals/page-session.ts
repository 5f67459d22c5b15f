import { timingSafeEqual } from 'node:crypto';
import { type Clock, type Keyring, randomToken, SealError } from '../core/index.ts';

/** The approval page's sign-in session, carried sealed in an HttpOnly cookie. */
export interface PageSession {
  userId: string;
  username: string;
  /** Expiry, epoch milliseconds. */
  exp: number;
  /** The synchronizer token every form of this session must echo. */
  csrf: string;
}

export const SESSION_COOKIE = 'warden_approval_session';
export const LOGIN_COOKIE = 'warden_approval_login';
const AAD = 'approvals.page-session';

/** Constant-time string comparison (CSRF tokens). */
export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Parses a Cookie header into name → value (first occurrence wins). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 1) continue;
    const name = part.slice(0, i).trim();
    if (!(name in out)) out[name] = part.slice(i + 1).trim();
  }
  return out;
}

/** A Set-Cookie value: HttpOnly, SameSite=Lax, path-scoped, Secure over https. */
export function cookie(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${name}=${value}`,
    'Path=/approvals',
    `Max-Age=${maxAgeSeconds}`,
    'HttpOnly',
    'SameSite=Lax',
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

/**
 * Short-lived sessions for the approval page, sealed (AES-256-GCM, bound to their purpose) with
 * the keyring: the cookie can be neither read nor forged without the master key.
 */
export class PageSessions {
  readonly ttlSeconds: number;
  readonly #keyring: Keyring;
  readonly #clock: Clock;

  constructor(keyring: Keyring, clock: Clock, ttlSeconds = 900) {
    this.#keyring = keyring;
    this.#clock = clock;
    this.ttlSeconds = ttlSeconds;
  }

  /** A new session for a signed-in person: the cookie value and the session. */
  issue(user: { id: string; username: string }): { value: string; session: PageSession } {
    const session: PageSession = {
      userId: user.id,
      username: user.username,
      exp: this.#clock.now() + this.ttlSeconds * 1000,
      csrf: randomToken(24),
    };
    return { value: this.#keyring.seal(JSON.stringify(session), AAD), session };
  }

  /** The session in a cookie value, or undefined when absent, forged, tampered or expired. */
  read(value: string | undefined): PageSession | undefined {
    if (!value) return undefined;
    try {
      const session = JSON.parse(this.#keyring.openText(value, AAD)) as PageSession;
      return session.exp > this.#clock.now() ? session : undefined;
    } catch (e) {
      if (e instanceof SealError || e instanceof SyntaxError) return undefined;
      throw e;
    }
  }
}
