/**
 * Warden's typed errors. Every failure that reaches a caller is one of these classes, carrying a
 * stable string code (`ERR_…`) and an HTTP status. They are rendered once, as RFC 9457
 * problem+json, by the HTTP layer; nothing else decides how an error looks on the wire.
 */

/** One field-level problem, as reported by input validation. */
export interface InvalidParam {
  /** JSON pointer-ish path of the offending field, e.g. `body.jwks.keys[0].d`. */
  name: string;
  reason: string;
}

export interface WardenErrorOptions {
  /** Extra members for the problem document (never secrets). */
  extensions?: Record<string, unknown>;
  invalidParams?: InvalidParam[];
  cause?: unknown;
  /** Headers the HTTP layer should add (e.g. `WWW-Authenticate`, `Retry-After`). */
  headers?: Record<string, string>;
}

/** Base class: never thrown directly, use one of the subclasses. */
export class WardenError extends Error {
  /** Stable machine-readable code, part of the public API. */
  readonly code: string;
  /** HTTP status the error maps to. */
  readonly status: number;
  /** Short, human-readable summary of the problem type (RFC 9457 `title`). */
  readonly title: string;
  readonly extensions: Record<string, unknown>;
  readonly invalidParams: InvalidParam[] | undefined;
  readonly headers: Record<string, string>;

  constructor(code: string, status: number, title: string, detail: string, options: WardenErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.title = title;
    this.extensions = options.extensions ?? {};
    this.invalidParams = options.invalidParams;
    this.headers = options.headers ?? {};
  }
}

/** The request is malformed or fails validation (400). */
export class InvalidRequestError extends WardenError {
  constructor(detail: string, options: WardenErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'ERR_INVALID_REQUEST', 400, 'Invalid request', detail, options);
  }
}

/** No valid credentials were presented (401). */
export class UnauthenticatedError extends WardenError {
  constructor(detail: string, options: WardenErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'ERR_UNAUTHENTICATED', 401, 'Authentication required', detail, options);
  }
}

/** The caller is known but not allowed to do this (403). */
export class ForbiddenError extends WardenError {
  constructor(detail: string, options: WardenErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'ERR_FORBIDDEN', 403, 'Forbidden', detail, options);
  }
}

/** The named thing does not exist, or the caller may not know it exists (404). */
export class NotFoundError extends WardenError {
  constructor(detail: string, options: WardenErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'ERR_NOT_FOUND', 404, 'Not found', detail, options);
  }
}

/** The request conflicts with current state: duplicate name, illegal lifecycle move (409). */
export class ConflictError extends WardenError {
  constructor(detail: string, options: WardenErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'ERR_CONFLICT', 409, 'Conflict', detail, options);
  }
}

/** The caller sent too many requests (429); `retryAfter` is in seconds. */
export class RateLimitedError extends WardenError {
  constructor(detail: string, retryAfter: number, options: WardenErrorOptions = {}) {
    super('ERR_RATE_LIMITED', 429, 'Too many requests', detail, {
      ...options,
      headers: { ...options.headers, 'retry-after': String(Math.max(1, Math.ceil(retryAfter))) },
    });
  }
}

/** Warden cannot serve the request right now: dependency down, ledger unwritable (503). */
export class UnavailableError extends WardenError {
  constructor(detail: string, options: WardenErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'ERR_UNAVAILABLE', 503, 'Service unavailable', detail, options);
  }
}

/** Invalid configuration: raised at start-up, names the offending key. */
export class ConfigError extends WardenError {
  constructor(detail: string, options: WardenErrorOptions = {}) {
    super('ERR_CONFIG', 500, 'Invalid configuration', detail, options);
  }
}

/** A bug or an unexpected failure. Its detail is never shown to a client. */
export class InternalError extends WardenError {
  constructor(detail: string, options: WardenErrorOptions = {}) {
    super('ERR_INTERNAL', 500, 'Internal error', detail, options);
  }
}

/** An RFC 9457 problem details document. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  'invalid-params'?: InvalidParam[];
  [extension: string]: unknown;
}

/**
 * Renders any thrown value as a problem document. Unknown errors become a generic 500 whose
 * detail says nothing about the cause: stack traces, SQL and secrets never reach a client.
 */
export function toProblem(error: unknown, instance?: string): ProblemDocument {
  const e =
    error instanceof WardenError
      ? error
      : new InternalError('An unexpected error occurred; it has been logged.');
  const detail = e instanceof InternalError ? 'An unexpected error occurred; it has been logged.' : e.message;
  const problem: ProblemDocument = {
    ...e.extensions,
    type: `https://warden.dev/problems/${e.code.toLowerCase().replace(/^err_/, '').replaceAll('_', '-')}`,
    title: e.title,
    status: e.status,
    detail,
    code: e.code,
  };
  if (instance !== undefined) problem.instance = instance;
  if (e.invalidParams?.length) problem['invalid-params'] = e.invalidParams;
  return problem;
}
