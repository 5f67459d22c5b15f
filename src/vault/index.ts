export {
  type AccessRule,
  type AccessRuleInput,
  accessRuleSchema,
  type CredentialRequester,
  checkAccessRule,
} from './access-rule.ts';
export { vaultMigrations } from './migrations.ts';
export { rewrapVaultSecrets } from './rewrap.ts';
export { type ScanFinding, type ScanOptions, type ScanResult, scanForSecrets } from './scan.ts';
export {
  accountViewSchema,
  type ConnectionInput,
  type ConnectionPatch,
  type CredentialInput,
  connectionInputSchema,
  connectionPatchSchema,
  connectionViewSchema,
  credentialInputSchema,
  credentialViewSchema,
  vaultNameSchema,
} from './schemas.ts';
export type { ClientAuthMethod } from './upstream.ts';
export {
  type AccountBrokenNotice,
  type AccountView,
  type ConnectionView,
  type CredentialRequest,
  type CredentialView,
  type MintedCredential,
  Vault,
  type VaultOptions,
  type VaultSettings,
  vaultSettingsSchema,
} from './vault.ts';
