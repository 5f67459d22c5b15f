export type { Clock } from './clock.ts';
export { epochSeconds, ManualClock, systemClock } from './clock.ts';
export type { WardenConfig } from './config.ts';
export { configSchema, ENV_KEYS, loadConfig, publicUrlOf } from './config.ts';
export type { MasterKey } from './envelope.ts';
export { generateMasterKey, Keyring, masterKeyId, parseMasterKey, SealError } from './envelope.ts';
export type { InvalidParam, ProblemDocument, WardenErrorOptions } from './errors.ts';
export {
  ConfigError,
  ConflictError,
  ForbiddenError,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  RateLimitedError,
  toProblem,
  UnauthenticatedError,
  UnavailableError,
  WardenError,
} from './errors.ts';
export { isUuid, randomToken, uuidv7 } from './ids.ts';
export type { Logger, LoggerConfig } from './logger.ts';
export { createLogger, REDACT_PATHS } from './logger.ts';
export type { LoadedKeyring, MasterKeySource } from './master-key.ts';
export { loadKeyring, masterKeyFile, writeMasterKeyFile } from './master-key.ts';
export { hashPassword, verifyPassword } from './password.ts';
