export {
  APPROVALS_CHANNEL,
  type ApprovalSettings,
  Approvals,
  type ApprovalsDeps,
  type Approver,
  approvalSettingsSchema,
  type GateOutcome,
  type RequestOutcome,
} from './approvals.ts';
export {
  authorizationDetailsOf,
  callHash,
  type GatedCall,
  type ToolCallAuthorizationDetail,
  toolMatches,
} from './call.ts';
export {
  NotificationChannels,
  notificationPayload,
  SIGNATURE_HEADER,
  signWebhook,
  slackPayload,
} from './channels.ts';
export { type ApprovalRefusal, ApprovalRefusedError } from './errors.ts';
export { ApproverGroups } from './groups.ts';
export { APPROVAL_META_KEY, approvalMeta, pendingToolResult } from './mcp-result.ts';
export { approvalsMigrations } from './migrations.ts';
export { escapeHtml, PAGE_CSP, renderError, renderInbox, renderLogin, renderRequest } from './page-html.ts';
export {
  cookie,
  LOGIN_COOKIE,
  type PageSession,
  PageSessions,
  parseCookies,
  SESSION_COOKIE,
  sameToken,
} from './page-session.ts';
export * from './schemas.ts';
