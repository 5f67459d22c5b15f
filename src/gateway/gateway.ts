import type {
  CallToolResult,
  GetPromptResult,
  Prompt,
  ReadResourceResult,
  Resource,
  Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt } from 'jose';
import { Counter, Histogram, type Registry } from 'prom-client';
import {
  APPROVAL_META_KEY,
  ApprovalRefusedError,
  type ApprovalRequestInput,
  type Approvals,
  type ApprovalView,
  type Approvers,
  pendingToolResult,
} from '../approvals/index.ts';
import type { AuditEventInput, AuditIntent, Auditor, AuditRequestMeta } from '../audit/index.ts';
import { type Clock, InvalidRequestError, type Logger, NotFoundError, WardenError } from '../core/index.ts';
import type { Caller, Identity } from '../identity/index.ts';
import type { Store } from '../store/index.ts';
import { TokenRefusal, type TokenVerifier } from './access-token.ts';
import { agentPrincipalEntity } from './agent-entity.ts';
import { AgentGate, type CallPrincipal } from './agent-gate.ts';
import { attestationContext } from './attestation-context.ts';
import { type ChallengeContext, insufficientScope, refused } from './auth-errors.ts';
import { type CredentialInjector, GATEWAY_REQUESTER, noVault } from './credentials.ts';
import {
  type DecisionEntity,
  denyAllDecider,
  type GatewayDecision,
  type GatewayDecisionRequest,
  type PolicyDecider,
} from './decider.ts';
import { DpopVerifier, StoreReplayCache } from './dpop.ts';
import { GatewayDenial } from './gateway-denial.ts';
import { type GatewayOptions, type GatewaySettings, gatewayOptionsSchema } from './options.ts';
import { RateLimiter } from './rate-limiter.ts';
import type { TokenStatus } from './revocations.ts';
import type { Upstream } from './schemas.ts';
import { type Step, StepStats, type StepTimings } from './step-timings.ts';
import { toolDefinitionHash } from './tool-pin.ts';
import { UpstreamConnections } from './upstream-connections.ts';
import { UPSTREAM_CHANNEL, UpstreamRegistry } from './upstream-registry.ts';

export interface GatewayDeps {
  store: Store;
  auditor: Auditor;
  identity: Identity;
  clock: Clock;
  logger: Logger;
  /** Warden's public URL: resource identifiers and DPoP `htu` are built from it. */
  publicUrl: string;
  /** Warden's OAuth issuer (`iss` of its access tokens). */
  issuer: string;
  /** Verifies Warden-issued access tokens. Absent: every call is refused. */
  tokenVerifier?: TokenVerifier | undefined;
  /** Whether a verified token is still in force (the token service's records). */
  tokenStatus?: TokenStatus | undefined;
  /** The decision point. Absent: every call is denied. */
  decider?: PolicyDecider | undefined;
  /** The credential vault. Absent: upstreams that need a credential cannot be called. */
  credentials?: CredentialInjector | undefined;
  /** Human approval of calls the policy permits only with approval. Absent: such calls are refused. */
  approvals?: Approvals | undefined;
  options?: GatewayOptions | undefined;
  /** Prometheus registry for the gateway's call and step metrics. */
  metrics?: Registry | undefined;
}

/** An HTTP request as the gateway's authentication step sees it. */
export interface IncomingCall {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** Every value of the `DPoP` header (from the raw header list). */
  dpop: string[];
  meta: AuditRequestMeta;
}

/** An authenticated, identified caller with the time the first two steps took. */
export interface Authenticated {
  principal: CallPrincipal;
  timings: StepTimings;
  meta: AuditRequestMeta;
}

/** How an MCP `tools/call` takes part in an approval (from its `_meta` and the SDK's request context). */
export interface ToolCallContext {
  /** `_meta["warden/approval"].request_id`: the agent retries a call a person has approved. */
  approvalRequestId?: string | undefined;
  /** Sends an MCP progress notification (set when the client supplied `_meta.progressToken`). */
  progress?: ((progress: number, message: string) => Promise<void>) | undefined;
}

/** Reads `_meta["warden/approval"].request_id` of a call; anything malformed is no id at all. */
export function approvalRequestIdOf(meta: unknown): string | undefined {
  if (!meta || typeof meta !== 'object') return undefined;
  const value = (meta as Record<string, unknown>)[APPROVAL_META_KEY];
  if (!value || typeof value !== 'object') return undefined;
  const id = (value as Record<string, unknown>).request_id;
  return typeof id === 'string' && id.length > 0 && id.length <= 100 ? id : undefined;
}

/** `owner`, `user`, `group:<name>` (the policy's `@approvers`) as an approvals rule. */
function approversOf(decision: GatewayDecision): Approvers | undefined {
  const first = decision.approvers?.[0];
  if (first === 'owner' || first === 'user') return { kind: first };
  if (first?.startsWith('group:') && first.length > 6) return { kind: 'group', group: first.slice(6) };
  return undefined;
}

/** One governed call: what is being done, to what, by whom. */
interface CallSpec {
  auth: Authenticated;
  upstream: Upstream;
  kind: 'tool.call' | 'http.call';
  /** MCP method or HTTP method + path, for the audit event. */
  operation: string;
  action: string;
  resource: DecisionEntity;
  /** Rate-limit key of the tool or endpoint. */
  limitKey: string;
  /** Template ceiling and intent rules apply to MCP tools. */
  toolName?: string | undefined;
  args?: Record<string, unknown> | undefined;
  intent?: AuditIntent | undefined;
  http?: { method: string; host: string; path: string } | undefined;
  /** A refusal known before anything is decided (unknown or withheld tool): recorded, never forwarded. */
  blocked?: GatewayDenial | undefined;
  /** Set for MCP tool calls: they can wait for, or retry with, a person's approval. */
  approval?: ToolCallContext | undefined;
}

const refusingVerifier: TokenVerifier = {
  verify: async () => {
    throw new TokenRefusal(
      'ERR_TOKEN_SERVICE_UNAVAILABLE',
      'no access-token verifier is configured on this node',
    );
  },
};

/** `cnf.jkt` of a token, read before its signature is checked (used only once it is). */
function boundKeyOf(token: string): string | undefined {
  try {
    const cnf = (decodeJwt(token) as { cnf?: { jkt?: unknown } }).cnf;
    return typeof cnf?.jkt === 'string' ? cnf.jkt : undefined;
  } catch {
    return undefined;
  }
}

function matches(pattern: string, name: string): boolean {
  if (pattern === '*' || pattern === name) return true;
  if (pattern.endsWith('.*') || pattern.endsWith('/*')) return name.startsWith(`${pattern.slice(0, -2)}.`);
  return false;
}

function elapsed(start: number): number {
  return Math.round((performance.now() - start) * 1000) / 1000;
}

/** Reads an intent declaration (MCP `_meta["warden/intent"]` or the `X-Warden-Intent` header). */
export function parseIntent(value: unknown): AuditIntent | undefined {
  const clip = (v: unknown, n: number) =>
    typeof v === 'string' && v.trim() ? v.trim().slice(0, n) : undefined;
  if (typeof value === 'string') {
    const text = clip(value, 4000);
    return text ? { text } : undefined;
  }
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const intent: AuditIntent = {};
    const text = clip(o.text, 4000);
    const taskId = clip(o.task_id, 200);
    const goal = clip(o.goal, 1000);
    if (text) intent.text = text;
    if (taskId) intent.task_id = taskId;
    if (goal) intent.goal = goal;
    return Object.keys(intent).length > 0 ? intent : undefined;
  }
  return undefined;
}

/**
 * The enforcement point: every agent call through MCP or the HTTP proxy takes the one path —
 * authenticate (token + DPoP) → identify (agent active, provider trusted, delegation) → decide
 * (policy) → approve (a person approves the exact call: held open, or answered as pending and
 * retried with the request id) → inject (vault)
 * → forward → record (one audit event with a per-step timing breakdown). Any failure denies.
 */
export class Gateway {
  readonly settings: GatewaySettings;
  readonly upstreams: UpstreamRegistry;
  readonly connections: UpstreamConnections;
  readonly stats = new StepStats();
  readonly mcpResource: string;
  readonly #deps: GatewayDeps;
  readonly #verifier: TokenVerifier;
  readonly #decider: PolicyDecider;
  readonly #credentials: CredentialInjector;
  readonly #dpop: DpopVerifier;
  readonly #gate: AgentGate;
  readonly #limiter: RateLimiter;
  readonly #withheld = new Set<string>();
  readonly #toolHashes = new WeakMap<Tool, string>();
  #catalog: { list: Upstream[]; at: number } | undefined;
  readonly #unsubscribe: () => void;
  readonly #calls: Counter<'kind' | 'outcome'> | undefined;
  readonly #steps: Histogram<'step'> | undefined;

  constructor(deps: GatewayDeps) {
    this.#deps = deps;
    if (deps.metrics) {
      this.#calls = new Counter({
        name: 'warden_gateway_calls_total',
        help: 'Agent calls through the gateway by kind (tool.call, http.call) and outcome',
        labelNames: ['kind', 'outcome'],
        registers: [deps.metrics],
      });
      this.#steps = new Histogram({
        name: 'warden_gateway_step_seconds',
        help: 'Time per step of the gateway path (auth, identify, policy, vault, upstream, audit, total)',
        labelNames: ['step'],
        buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
        registers: [deps.metrics],
      });
    }
    this.settings = gatewayOptionsSchema.parse(deps.options ?? {});
    this.#verifier = deps.tokenVerifier ?? refusingVerifier;
    this.#decider = deps.decider ?? denyAllDecider;
    this.#credentials = deps.credentials ?? noVault;
    this.#dpop = new DpopVerifier({
      clock: deps.clock,
      replay: new StoreReplayCache(deps.store, deps.clock),
      windowSeconds: this.settings.dpopWindowSeconds,
    });
    this.#gate = new AgentGate(deps.identity, deps.store, deps.clock);
    this.#limiter = new RateLimiter(() => deps.clock.now());
    this.upstreams = new UpstreamRegistry(deps.store, deps.auditor, deps.clock);
    this.connections = new UpstreamConnections({
      logger: deps.logger.child({ component: 'gateway' }),
      toolsTtlMs: this.settings.toolsTtlMs,
      now: () => deps.clock.now(),
    });
    this.mcpResource = `${deps.publicUrl}${this.settings.mcpPath}`;
    const missing = Object.entries(this.wiring)
      .filter(([, wired]) => !wired)
      .map(([part]) => part);
    if (missing.length > 0) {
      deps.logger.warn(
        { missing },
        'gateway parts not wired on this node; the gateway fails closed for them',
      );
    }
    this.#unsubscribe = deps.store.changes.subscribe(UPSTREAM_CHANNEL, (c) => {
      this.#catalog = undefined;
      void this.connections.drop(String(c.payload.name ?? ''));
    });
  }

  /** Which parts are wired on this node (the others fail closed). */
  get wiring(): { tokens: boolean; policy: boolean; vault: boolean; approvals: boolean } {
    return {
      tokens: this.#deps.tokenVerifier !== undefined,
      policy: this.#deps.decider !== undefined,
      vault: this.#deps.credentials !== undefined,
      approvals: this.#deps.approvals !== undefined,
    };
  }

  get publicUrl(): string {
    return this.#deps.publicUrl;
  }

  get issuer(): string {
    return this.#deps.issuer;
  }

  /** The resource identifier (token audience) of an HTTP proxy upstream. */
  proxyResource(name: string): string {
    return `${this.#deps.publicUrl}/proxy/${name}`;
  }

  /** The RFC 9728 metadata URL for a resource path (`/mcp`, `/proxy/x`). */
  metadataUrl(resourcePath: string): string {
    return `${this.#deps.publicUrl}/.well-known/oauth-protected-resource${resourcePath}`;
  }

  challengeFor(resourcePath: string): ChallengeContext {
    return { resourceMetadata: this.metadataUrl(resourcePath), dpopAlgs: this.#dpop.algorithms };
  }

  /** Approved upstreams (cached briefly; cleared by the change feed on any change). */
  async catalog(): Promise<Upstream[]> {
    const now = this.#deps.clock.now();
    if (this.#catalog && now - this.#catalog.at < 5000) return this.#catalog.list;
    const list = (await this.upstreams.list()).filter((u) => u.status === 'approved');
    this.#catalog = { list, at: now };
    return list;
  }

  async #upstream(name: string, kind: 'mcp' | 'http'): Promise<Upstream | undefined> {
    return (await this.catalog()).find((u) => u.name === name && u.kind === kind);
  }

  // ---------------------------------------------------------------- 1-2. authenticate, identify

  /**
   * Authenticates an agent request for a resource: `Authorization: DPoP <JWT>` with a proof, or
   * (only for a token that is not DPoP-bound, which this gateway does not accept) Bearer.
   * @throws UnauthenticatedError with RFC 6750/9449 challenges.
   */
  async authenticate(call: IncomingCall, resourcePath: string, audience: string): Promise<Authenticated> {
    const ctx = this.challengeFor(resourcePath);
    const t0 = performance.now();
    const header = call.headers.authorization;
    const auth = Array.isArray(header) ? header[0] : header;
    if (!auth) throw refused(ctx, undefined, 'ERR_TOKEN_MISSING', 'an access token is required');
    const m = /^(DPoP|Bearer) ([A-Za-z0-9._~+/-]+=*)$/i.exec(auth);
    if (!m) {
      return this.#refuse(
        call,
        ctx,
        'invalid_request',
        new TokenRefusal('ERR_TOKEN_MALFORMED', 'the Authorization header must be "DPoP <token>"'),
      );
    }
    const scheme = (m[1] as string).toLowerCase();
    const token = m[2] as string;
    // The proof is checked while the token signature is (both are asymmetric verifications and
    // the proof's replay claim is a database write): the proof is bound to the key named in the
    // token, and nothing is trusted until both checks have passed.
    const hint = boundKeyOf(token);
    const proofCheck =
      scheme === 'dpop' && hint
        ? this.#dpop
            .verify({
              proofs: call.dpop,
              method: call.method,
              url: `${this.#deps.publicUrl}${call.url}`,
              accessToken: token,
              jkt: hint,
            })
            .then(
              () => undefined,
              (e: unknown) => e ?? new Error('DPoP check failed'),
            )
        : undefined;
    let claims: Awaited<ReturnType<TokenVerifier['verify']>>;
    try {
      claims = await this.#verifier.verify(token, audience);
    } catch (e) {
      await proofCheck;
      return this.#refuse(call, ctx, 'invalid_token', e);
    }
    const jkt = claims.cnf?.jkt;
    if (!jkt) {
      return this.#refuse(
        call,
        ctx,
        'invalid_token',
        new TokenRefusal('ERR_TOKEN_NOT_DPOP_BOUND', 'this resource accepts only DPoP-bound access tokens'),
      );
    }
    if (scheme !== 'dpop') {
      return this.#refuse(
        call,
        ctx,
        'invalid_token',
        new TokenRefusal(
          'ERR_DPOP_SCHEME',
          'a DPoP-bound access token must be sent with the DPoP scheme, not Bearer',
        ),
      );
    }
    const proofError =
      jkt === hint
        ? await proofCheck
        : new TokenRefusal('ERR_DPOP_INVALID', 'the DPoP proof could not be checked');
    if (proofError) return this.#refuse(call, ctx, 'invalid_dpop_proof', proofError);
    const authMs = elapsed(t0);
    const t1 = performance.now();
    let principal: CallPrincipal;
    try {
      await this.#deps.tokenStatus?.check(claims);
      principal = await this.#gate.identify(claims);
    } catch (e) {
      return this.#refuse(call, ctx, 'invalid_token', e, claims.client_id);
    }
    return { principal, timings: { auth: authMs, identify: elapsed(t1) }, meta: call.meta };
  }

  async #refuse(
    call: IncomingCall,
    ctx: ChallengeContext,
    error: 'invalid_token' | 'invalid_dpop_proof' | 'invalid_request',
    e: unknown,
    agentId?: string,
  ): Promise<never> {
    const refusal =
      e instanceof TokenRefusal
        ? e
        : new TokenRefusal('ERR_TOKEN_INVALID', 'the request could not be authenticated');
    if (!(e instanceof TokenRefusal))
      this.#deps.logger.warn({ err: { message: (e as Error)?.message } }, 'gateway authentication failed');
    await this.#deps.auditor.record({
      type: 'auth.request_refused',
      actor: agentId ? { type: 'agent', id: agentId } : { type: 'anonymous', id: 'unknown' },
      action: `${call.method} ${call.url.split('?')[0]}`,
      outcome: 'denied',
      error_code: refusal.code,
      request: call.meta,
      details: { reason: refusal.message },
    });
    throw refused(ctx, error, refusal.code, refusal.message);
  }

  /** 403 `insufficient_scope` unless the token carries every scope the upstream requires. */
  checkScopes(auth: Authenticated, upstream: Upstream, resourcePath: string): void {
    const missing = upstream.scopes.filter((s) => !auth.principal.scopes.includes(s));
    if (missing.length > 0) throw insufficientScope(this.challengeFor(resourcePath), upstream.scopes);
  }

  // ---------------------------------------------------------------- 3. decide

  async #decide(spec: Omit<CallSpec, 'kind' | 'operation' | 'limitKey'>): Promise<GatewayDecision> {
    const p = spec.auth.principal;
    const request: GatewayDecisionRequest = {
      principal: agentPrincipalEntity(p.resolved.agent),
      action: spec.action,
      resource: spec.resource,
      context: {
        ...(spec.intent ? { intent: spec.intent } : {}),
        ...(spec.args ? { args: spec.args } : {}),
        delegation: { ...(p.onBehalfOf ? { user: p.onBehalfOf } : {}), agents: p.chain },
        scopes: p.scopes,
        ...(spec.auth.meta.source_ip ? { source_ip: spec.auth.meta.source_ip } : {}),
        ...(spec.http ? { http: spec.http } : {}),
        ...attestationContext(p.claims, p.resolved.provider.id),
      },
    };
    try {
      return await this.#decider.decide(request);
    } catch (e) {
      this.#deps.logger.error({ err: { message: (e as Error).message } }, 'policy decision failed');
      return {
        decision: 'deny',
        approval_required: false,
        reason:
          e instanceof WardenError
            ? `the decision request was refused: ${e.message}`
            : 'the decision point failed; the call is denied',
        determining_policies: [],
      };
    }
  }

  /**
   * The approve step: asks the approvals part about this exact call. Granted (a held call was
   * approved, or a retry used its one-time grant) returns normally; `pending` is returned for the
   * caller to answer with; a refusal (denied, expired, used, altered) is a denial. Only MCP tool
   * calls can take approvals: anything else that needs one is refused, as when approvals is absent.
   */
  async #approve(
    spec: CallSpec,
    decision: GatewayDecision,
    extra: Record<string, unknown>,
  ): Promise<{ status: 'granted' | 'pending'; request: ApprovalView }> {
    const approvals = this.#deps.approvals;
    if (!approvals || !spec.approval || spec.toolName === undefined)
      throw GatewayDenial.approvalRequired(decision);
    const p = spec.auth.principal;
    const intent = spec.intent?.text ?? spec.intent?.goal;
    const approvers = approversOf(decision);
    const input: ApprovalRequestInput = {
      agent_id: p.resolved.agent.id,
      ...(p.onBehalfOf ? { user_id: p.onBehalfOf } : {}),
      ...(intent ? { intent: intent.slice(0, 2000) } : {}),
      tool: spec.toolName,
      arguments: spec.args ?? {},
      ...(approvers ? { approvers } : {}),
      ...(this.settings.approvalTtlSeconds ? { ttl_seconds: this.settings.approvalTtlSeconds } : {}),
      policies: decision.determining_policies.map((x) => x.id.slice(0, 200)).slice(0, 50),
    };
    const retry = spec.approval.approvalRequestId;
    const mode = this.settings.approvalMode;
    let ticker: NodeJS.Timeout | undefined;
    try {
      let gate: Awaited<ReturnType<Approvals['authorizeCall']>>;
      if (!retry && mode === 'hold' && spec.approval.progress) {
        // Hold with progress: open the request first so the agent's client is told at once what it
        // waits for (and its request timeout is reset), then on every tick while it waits.
        const send = spec.approval.progress;
        const { request } = await approvals.request(input, spec.auth.meta);
        extra.approval_request_id = request.id;
        const note = `awaiting approval of "${request.binding_message}" (${request.id}) at ${request.url}`;
        let n = 0;
        const tick = () => void send(++n, note).catch(() => undefined);
        tick();
        ticker = setInterval(tick, this.settings.approvalProgressSeconds * 1000);
        const view = await approvals.waitForDecision(request.id, this.settings.approvalWaitSeconds * 1000);
        const call = {
          agentId: input.agent_id,
          userId: input.user_id,
          tool: input.tool,
          arguments: input.arguments,
        };
        gate =
          view.status === 'pending'
            ? { status: 'pending', request: view }
            : { status: 'granted', request: await approvals.consume(request.id, call, spec.auth.meta) };
      } else {
        gate = await approvals.authorizeCall(input, {
          mode,
          waitMs: this.settings.approvalWaitSeconds * 1000,
          retryRequestId: retry,
          meta: spec.auth.meta,
        });
      }
      extra.approval_request_id = gate.request.id;
      extra.approval_status = gate.status === 'granted' ? 'consumed' : gate.request.status;
      return gate;
    } catch (e) {
      if (e instanceof ApprovalRefusedError) {
        extra.approval_request_id = e.requestId;
        extra.approval_status = e.reason;
        throw GatewayDenial.approvalRefused(e.message, e.code, decision);
      }
      if (e instanceof WardenError) {
        if (retry) extra.approval_request_id = retry;
        throw GatewayDenial.approvalRefused(
          `the approval could not be obtained: ${e.message}`,
          e.code,
          decision,
        );
      }
      throw e;
    } finally {
      if (ticker) clearInterval(ticker);
    }
  }

  /** The template's ceiling: a tool outside `allowed_tools` is never callable. */
  #templateAllows(p: CallPrincipal, tool: string): boolean {
    return p.resolved.template.spec.allowed_tools.some((pattern) => matches(pattern, tool));
  }

  // ---------------------------------------------------------------- the one path

  async #govern<T>(
    spec: CallSpec,
    forward: (headers: Record<string, string>) => Promise<T>,
    outcomeOf: (r: T) => 'success' | 'failure' = () => 'success',
  ): Promise<T> {
    const start = performance.now();
    const timings: StepTimings = { ...spec.auth.timings };
    const p = spec.auth.principal;
    let decision: GatewayDecision | undefined;
    let outcome: 'success' | 'failure' | 'denied' = 'denied';
    let errorCode: string | undefined;
    let failure: unknown;
    let result: T | undefined;
    const extra: Record<string, unknown> = {};
    const agentKey = `agent:${p.resolved.agent.id}`;
    const toolKey = `tool:${spec.limitKey}`;
    try {
      if (spec.blocked) throw spec.blocked;
      const missingScopes = spec.upstream.scopes.filter((sc) => !p.scopes.includes(sc));
      if (missingScopes.length > 0) {
        throw GatewayDenial.denied(
          `the token lacks the scope ${missingScopes.join(' ')}`,
          undefined,
          'ERR_INSUFFICIENT_SCOPE',
        );
      }
      const agentWait = this.#limiter.take(agentKey, toBucket(this.settings.agentRateLimit));
      if (agentWait > 0) throw GatewayDenial.rateLimited('the agent exceeded its call rate', agentWait);
      const toolWait = this.#limiter.take(
        toolKey,
        toBucket(spec.upstream.rate_limit ?? this.settings.toolRateLimit),
      );
      if (toolWait > 0)
        throw GatewayDenial.rateLimited(`the call rate of ${spec.limitKey} is exceeded`, toolWait);
      if (spec.toolName !== undefined) {
        if (!this.#templateAllows(p, spec.toolName)) {
          throw GatewayDenial.denied(
            `${spec.toolName} is not among the tools the agent's template allows`,
            undefined,
            'ERR_TOOL_NOT_IN_TEMPLATE',
          );
        }
        const needsIntent = p.resolved.template.spec.require_intent.some((pattern) =>
          matches(pattern, spec.toolName as string),
        );
        if (needsIntent && !spec.intent) {
          throw GatewayDenial.denied(
            `${spec.toolName} requires a declared intent (_meta["warden/intent"] or X-Warden-Intent)`,
            undefined,
            'ERR_INTENT_REQUIRED',
          );
        }
      }
      const t = performance.now();
      decision = await this.#decide(spec);
      timings.policy = elapsed(t);
      if (decision.decision !== 'permit') throw GatewayDenial.denied(decision.reason, decision);
      let pending: ApprovalView | undefined;
      if (decision.approval_required) {
        const ta = performance.now();
        try {
          const gate = await this.#approve(spec, decision, extra);
          if (gate.status === 'pending') pending = gate.request;
        } finally {
          timings.approval = elapsed(ta);
        }
      }
      if (pending) {
        // Not forwarded: the agent gets the request id and retries once a person approved.
        outcome = 'denied';
        errorCode = 'ERR_APPROVAL_PENDING';
        result = pendingToolResult(pending) as T;
      } else {
        let headers: Record<string, string> = {};
        if (spec.upstream.credential) {
          const tv = performance.now();
          try {
            const minted = await this.#credentials.getCredential({
              connectionOrCredentialId: spec.upstream.credential,
              agentId: p.resolved.agent.id,
              templateId: p.resolved.agent.template_id,
              userId: p.onBehalfOf,
              requestId: spec.auth.meta.request_id,
            });
            headers = minted.headers;
          } catch (e) {
            throw GatewayDenial.credential(e);
          } finally {
            timings.vault = elapsed(tv);
          }
        }
        const tu = performance.now();
        try {
          result = await forward(headers);
          outcome = outcomeOf(result);
          if (outcome === 'failure') errorCode = 'ERR_UPSTREAM_TOOL_ERROR';
        } catch (e) {
          throw GatewayDenial.upstream(e, spec.upstream);
        } finally {
          timings.upstream = elapsed(tu);
        }
      }
    } catch (e) {
      failure = e instanceof GatewayDenial ? e : GatewayDenial.internal(e, this.#deps.logger);
      const d = failure as GatewayDenial;
      outcome = d.outcome;
      errorCode = d.code;
      if (d.code === 'ERR_RATE_LIMITED') {
        // A refused call must not also drain the other bucket.
        if (d.message.startsWith('the call rate')) this.#limiter.refund(agentKey);
      }
      extra.reason = d.message;
    }
    const ta = performance.now();
    const event: AuditEventInput = {
      type: spec.kind,
      actor: {
        type: 'agent',
        id: p.resolved.agent.id,
        name: p.resolved.agent.name,
        ...(p.onBehalfOf ? { on_behalf_of: { type: 'user' as const, id: p.onBehalfOf } } : {}),
        chain: p.chain.map((id) => ({ type: 'agent' as const, id })),
      },
      action: spec.operation,
      resource: { type: spec.resource.type.toLowerCase(), id: spec.resource.id, name: spec.upstream.name },
      intent: spec.intent,
      decision: decision
        ? {
            effect: decision.decision,
            approval_required: decision.approval_required,
            policies: decision.determining_policies.map((x) => x.id),
            reason: decision.reason,
          }
        : undefined,
      outcome,
      error_code: errorCode,
      request: spec.auth.meta,
      latency_ms: elapsed(start) + (timings.auth ?? 0) + (timings.identify ?? 0),
      details: {
        upstream: spec.upstream.name,
        token_jti: p.claims.jti,
        template_id: p.resolved.agent.template_id,
        template_version: p.resolved.agent.template_version,
        scopes: p.scopes,
        ...(spec.args ? { argument_names: Object.keys(spec.args) } : {}),
        ...(spec.http ? { http: spec.http } : {}),
        ...extra,
        timings_ms: timings,
      },
    };
    try {
      await this.#deps.auditor.record(event);
    } finally {
      timings.audit = elapsed(ta);
      timings.total = elapsed(start) + (timings.auth ?? 0) + (timings.identify ?? 0);
      this.stats.add(timings);
      this.#calls?.inc({ kind: spec.kind, outcome });
      if (this.#steps)
        for (const [step, ms] of Object.entries(timings)) this.#steps.observe({ step }, ms / 1000);
    }
    if (failure) throw failure;
    return result as T;
  }

  // ---------------------------------------------------------------- MCP operations

  /** Tools the agent may call: approved upstreams whose scopes it holds, definitions unchanged, permitted by the template and policy. */
  async listTools(auth: Authenticated): Promise<Tool[]> {
    const out: Tool[] = [];
    for (const u of await this.catalog()) {
      if (u.kind !== 'mcp' || u.scopes.some((s) => !auth.principal.scopes.includes(s))) continue;
      let tools: Tool[];
      try {
        tools = await this.#tools(u);
      } catch (e) {
        this.#deps.logger.warn(
          { upstream: u.name, err: { message: (e as Error).message } },
          'upstream tools unavailable',
        );
        continue;
      }
      for (const tool of tools) {
        if (!(await this.#pinned(u, tool))) continue;
        const name = `${u.name}.${tool.name}`;
        if (!this.#templateAllows(auth.principal, name)) continue;
        const d = await this.#decide({
          auth,
          upstream: u,
          action: 'call_tool',
          resource: toolEntity(u, tool.name),
        });
        if (d.decision === 'permit') out.push({ ...tool, name });
      }
    }
    return out;
  }

  /** True when the tool's definition is the one an admin approved; otherwise records it (once) and withholds it. */
  async #pinned(u: Upstream, tool: Tool): Promise<boolean> {
    // Tool objects are reused from the connection's cached list until it is refreshed: hash each once.
    let hash = this.#toolHashes.get(tool);
    if (hash === undefined) {
      hash = toolDefinitionHash(tool);
      this.#toolHashes.set(tool, hash);
    }
    const pinned = u.pins[tool.name];
    if (pinned === hash) return true;
    const key = `${u.id}:${tool.name}:${hash}`;
    if (!this.#withheld.has(key)) {
      this.#withheld.add(key);
      await this.#deps.auditor.record({
        type: 'upstream.tool_withheld',
        actor: { type: 'system', id: 'gateway' },
        action: 'gateway.tools.verify',
        resource: { type: 'tool', id: `${u.name}.${tool.name}`, name: u.name },
        outcome: 'denied',
        error_code: pinned ? 'ERR_TOOL_DEFINITION_CHANGED' : 'ERR_TOOL_NOT_APPROVED',
        details: { upstream: u.name, tool: tool.name, approved_sha256: pinned ?? null, offered_sha256: hash },
      });
    }
    return false;
  }

  async #resolveTool(name: string): Promise<{ upstream: Upstream; tool: string }> {
    const dot = name.indexOf('.');
    const upstream = dot > 0 ? await this.#upstream(name.slice(0, dot), 'mcp') : undefined;
    if (!upstream) throw GatewayDenial.unknown(`no tool named ${name}`);
    return { upstream, tool: name.slice(dot + 1) };
  }

  /** `tools/call` through the one path. */
  async callTool(
    auth: Authenticated,
    name: string,
    args: Record<string, unknown> | undefined,
    intent: AuditIntent | undefined,
    context: ToolCallContext = {},
  ): Promise<CallToolResult> {
    const { upstream, tool } = await this.#resolveTool(name);
    const spec: CallSpec = {
      auth,
      upstream,
      kind: 'tool.call',
      operation: 'tools/call',
      action: 'call_tool',
      resource: toolEntity(upstream, tool),
      limitKey: name,
      toolName: name,
      args: args ?? {},
      intent,
      approval: context,
    };
    // The definition is checked before anything is decided: a changed tool is not callable.
    const current = (await this.#tools(upstream).catch(() => [] as Tool[])).find((t) => t.name === tool);
    if (!current) spec.blocked = GatewayDenial.unknown(`no tool named ${name}`);
    else if (!(await this.#pinned(upstream, current))) spec.blocked = GatewayDenial.withheld(name);
    return this.#govern(
      spec,
      async (headers) => {
        const client = await this.connections.client(upstream);
        return UpstreamConnections.withHeaders(headers, () =>
          client.callTool({ name: tool, arguments: args ?? {} }, undefined, { timeout: upstream.timeout_ms }),
        ) as Promise<CallToolResult>;
      },
      (r) => (r.isError ? 'failure' : 'success'),
    );
  }

  /** Resources of every approved upstream, their URIs wrapped as `warden://<upstream>/<uri>`. */
  async listResources(auth: Authenticated): Promise<Resource[]> {
    const out: Resource[] = [];
    for (const u of await this.catalog()) {
      if (u.kind !== 'mcp' || u.scopes.some((s) => !auth.principal.scopes.includes(s))) continue;
      try {
        const client = await this.connections.client(u);
        if (!client.getServerCapabilities()?.resources) continue;
        const headers = await this.#discoveryHeaders(u);
        const page = await UpstreamConnections.withHeaders(headers, () =>
          client.listResources({}, { timeout: u.timeout_ms }),
        );
        for (const r of page.resources)
          out.push({ ...r, uri: wrapUri(u.name, r.uri), name: `${u.name}.${r.name}` });
      } catch (e) {
        this.#deps.logger.warn(
          { upstream: u.name, err: { message: (e as Error).message } },
          'upstream resources unavailable',
        );
      }
    }
    return out;
  }

  /** `resources/read` through the one path. */
  async readResource(
    auth: Authenticated,
    uri: string,
    intent: AuditIntent | undefined,
  ): Promise<ReadResourceResult> {
    const parsed = unwrapUri(uri);
    const upstream = parsed ? await this.#upstream(parsed.upstream, 'mcp') : undefined;
    if (!parsed || !upstream) throw GatewayDenial.unknown(`no resource ${uri}`);
    return this.#govern(
      {
        auth,
        upstream,
        kind: 'tool.call',
        operation: 'resources/read',
        action: 'read_resource',
        resource: {
          type: 'Resource',
          id: `${upstream.name}:${parsed.uri}`.slice(0, 500),
          parents: [{ type: 'Server', id: upstream.name }],
          attrs: { uri: parsed.uri.slice(0, 2000) },
        },
        limitKey: `${upstream.name}:resources`,
        intent,
      },
      async (headers) => {
        const client = await this.connections.client(upstream);
        const r = await UpstreamConnections.withHeaders(headers, () =>
          client.readResource({ uri: parsed.uri }, { timeout: upstream.timeout_ms }),
        );
        return {
          ...r,
          contents: r.contents.map((c) => ({ ...c, uri: wrapUri(upstream.name, c.uri) })),
        } as ReadResourceResult;
      },
    );
  }

  async listPrompts(auth: Authenticated): Promise<Prompt[]> {
    const out: Prompt[] = [];
    for (const u of await this.catalog()) {
      if (u.kind !== 'mcp' || u.scopes.some((s) => !auth.principal.scopes.includes(s))) continue;
      try {
        const client = await this.connections.client(u);
        if (!client.getServerCapabilities()?.prompts) continue;
        const headers = await this.#discoveryHeaders(u);
        const page = await UpstreamConnections.withHeaders(headers, () =>
          client.listPrompts({}, { timeout: u.timeout_ms }),
        );
        for (const p of page.prompts) out.push({ ...p, name: `${u.name}.${p.name}` });
      } catch (e) {
        this.#deps.logger.warn(
          { upstream: u.name, err: { message: (e as Error).message } },
          'upstream prompts unavailable',
        );
      }
    }
    return out;
  }

  /** `prompts/get` through the one path. */
  async getPrompt(
    auth: Authenticated,
    name: string,
    args: Record<string, string> | undefined,
    intent: AuditIntent | undefined,
  ): Promise<GetPromptResult> {
    const dot = name.indexOf('.');
    const upstream = dot > 0 ? await this.#upstream(name.slice(0, dot), 'mcp') : undefined;
    if (!upstream) throw GatewayDenial.unknown(`no prompt named ${name}`);
    const prompt = name.slice(dot + 1);
    return this.#govern(
      {
        auth,
        upstream,
        kind: 'tool.call',
        operation: 'prompts/get',
        action: 'get_prompt',
        resource: { type: 'Prompt', id: name, parents: [{ type: 'Server', id: upstream.name }] },
        limitKey: name,
        args,
        intent,
      },
      async (headers) => {
        const client = await this.connections.client(upstream);
        return UpstreamConnections.withHeaders(headers, () =>
          client.getPrompt({ name: prompt, arguments: args }, { timeout: upstream.timeout_ms }),
        ) as Promise<GetPromptResult>;
      },
    );
  }

  /** An upstream's tool list, asked for with the gateway's own credential. */
  async #tools(u: Upstream): Promise<Tool[]> {
    const headers = await this.#discoveryHeaders(u);
    return UpstreamConnections.withHeaders(headers, () => this.connections.tools(u));
  }

  /** The credential the gateway's own discovery requests carry (vault access rule must allow `warden:gateway`). */
  async #discoveryHeaders(u: Upstream): Promise<Record<string, string>> {
    if (!u.credential) return {};
    const minted = await this.#credentials.getCredential({
      connectionOrCredentialId: u.credential,
      ...GATEWAY_REQUESTER,
    });
    return minted.headers;
  }

  // ---------------------------------------------------------------- HTTP proxy

  /** Governs one proxied HTTP request; `forward` streams it once everything allowed it. */
  governHttp<T>(
    auth: Authenticated,
    upstream: Upstream,
    endpoint: string,
    params: Record<string, string>,
    http: { method: string; host: string; path: string },
    intent: AuditIntent | undefined,
    forward: (headers: Record<string, string>) => Promise<T>,
    outcomeOf: (r: T) => 'success' | 'failure',
    blocked?: GatewayDenial,
  ): Promise<T> {
    return this.#govern(
      {
        blocked,
        auth,
        upstream,
        kind: 'http.call',
        operation: `${http.method} ${http.path}`.slice(0, 500),
        action: 'http_request',
        resource: {
          type: 'Endpoint',
          id: endpoint,
          parents: [{ type: 'Api', id: upstream.name }],
          attrs: { method: http.method, path: http.path.slice(0, 2000) },
        },
        limitKey: `${upstream.name}:${endpoint}`,
        args: params,
        intent,
        http,
      },
      forward,
      outcomeOf,
    );
  }

  /** Finds an approved HTTP upstream for the proxy. */
  async httpUpstream(name: string): Promise<Upstream> {
    const u = await this.#upstream(name, 'http');
    if (!u)
      throw new NotFoundError(`no approved HTTP upstream named ${name}`, { code: 'ERR_UPSTREAM_NOT_FOUND' });
    return u;
  }

  // ---------------------------------------------------------------- admin

  /** Approves an upstream: asks it for its tools now and pins the hash of each definition. */
  async approveUpstream(ref: string, caller: Caller): Promise<ReturnType<UpstreamRegistry['approve']>> {
    const u = await this.upstreams.get(ref);
    const pins: Record<string, string> = {};
    if (u.kind === 'mcp') {
      await this.connections.drop(u.name);
      let tools: Tool[];
      try {
        const headers = await this.#discoveryHeaders(u);
        tools = await UpstreamConnections.withHeaders(headers, () => this.connections.tools(u));
      } catch (e) {
        throw new InvalidRequestError(
          `the upstream ${u.name} could not be asked for its tools: ${(e as Error).message}`,
          {
            code: 'ERR_UPSTREAM_UNREACHABLE',
          },
        );
      } finally {
        await this.connections.drop(u.name);
      }
      for (const t of tools) pins[t.name] = toolDefinitionHash(t);
    }
    return this.upstreams.approve(u.id, pins, caller);
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    this.#gate.close();
    await this.connections.close();
  }
}

function toolEntity(u: Upstream, tool: string): DecisionEntity {
  return { type: 'Tool', id: `${u.name}.${tool}`, parents: [{ type: 'Server', id: u.name }] };
}

function toBucket(b: { capacity: number; per_second: number }) {
  return { capacity: b.capacity, perSecond: b.per_second };
}

/** `warden://<upstream>/<encoded original uri>`: resource URIs of different upstreams never collide. */
export function wrapUri(upstream: string, uri: string): string {
  return `warden://${upstream}/${encodeURIComponent(uri)}`;
}

export function unwrapUri(uri: string): { upstream: string; uri: string } | undefined {
  const m = /^warden:\/\/([a-z0-9][a-z0-9_-]*)\/(.+)$/.exec(uri);
  if (!m) return undefined;
  try {
    return { upstream: m[1] as string, uri: decodeURIComponent(m[2] as string) };
  } catch {
    return undefined;
  }
}

export type { Step };
