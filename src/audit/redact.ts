/**
 * Redaction by construction: every event passes through here before it is hashed and stored, so a
 * secret handed to `record()` by mistake never reaches the ledger or a SIEM.
 */

const SECRET_KEY_RE =
  /(pass(word|phrase)?|secret|token|authorization|cookie|assertion|private|^d$|^p$|^q$|^dp$|^dq$|^qi$|^k$|api[-_]?key|credential|signature|^code$|code_verifier|master[-_]?key)/i;

/** Keys whose values are known to be safe even though their names look secret-ish. */
const ALLOWED_KEYS = new Set([
  'token_type',
  'token_id',
  'token_jti',
  'issued_token_type',
  'subject_token_type',
  'actor_token_type',
  'requested_token_type',
  'token_endpoint_auth_method',
  'secret_id',
  'secret_version',
  'credential_id',
  'credential_type',
  'api_token_id',
]);

const SECRET_VALUE_RES = [
  /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, // JWS/JWT compact
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /\bwdn_[A-Za-z0-9_-]{20,}/g, // Warden API tokens
  /\bwdn1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, // sealed values
  /\b(Bearer|DPoP|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  /\b(gh[pousr]_[A-Za-z0-9]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16})\b/g,
];

export const REDACTED = '[redacted]';

/** Replaces secret-looking substrings of a string. */
export function redactString(value: string): string {
  let out = value;
  for (const re of SECRET_VALUE_RES) out = out.replace(re, REDACTED);
  return out;
}

/** Deep-copies `value`, dropping secret-named fields and masking secret-looking strings. */
export function redact<T>(value: T, depth = 0): T {
  if (depth > 12) return REDACTED as T;
  if (typeof value === 'string') return redactString(value) as T;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      out[k] = SECRET_KEY_RE.test(k) && !ALLOWED_KEYS.has(k) ? REDACTED : redact(v, depth + 1);
    }
    return out as T;
  }
  return value;
}
