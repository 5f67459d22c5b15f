export { type BootstrapCredentials, bootstrapAdmin } from './bootstrap.ts';
export { allMigrations } from './migrations.ts';
export { buildOpenApi } from './openapi.ts';
export { type AnyRoute, defineRoute, type HttpMethod, type RouteContext, type RouteSpec } from './route.ts';
export { allRoutes } from './routes/index.ts';
export { buildServer, sendProblem } from './server.ts';
export { type CreateWardenOptions, createWarden, rewrapCoreSecrets, type Warden } from './warden.ts';
