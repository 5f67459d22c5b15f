/** True when `error` is a unique-constraint violation from SQLite or PostgreSQL. */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown; errcode?: unknown };
  if (e?.code === '23505') return true;
  return typeof e?.message === 'string' && e.message.includes('UNIQUE constraint failed');
}
