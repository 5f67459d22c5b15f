export type { Change, ChangeHandler } from './change-feed.ts';
export { ChangeFeed } from './change-feed.ts';
export { isUniqueViolation } from './errors.ts';
export { getMeta, setMeta } from './meta.ts';
export { autoIdType, isPostgres, storeMigrations } from './migrations.ts';
export { decodeCursor, encodeCursor, type Page, type PageRequest, pageOf } from './paging.ts';
export type { StoreDialect, StoreOptions } from './store.ts';
export { Store } from './store.ts';
