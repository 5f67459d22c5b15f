import { createHmac } from 'node:crypto';
import type { Auditor } from '../audit/index.ts';
import {
  type Clock,
  ConflictError,
  type Keyring,
  type Logger,
  NotFoundError,
  uuidv7,
} from '../core/index.ts';
import { actorOf, type Caller } from '../identity/index.ts';
import { isUniqueViolation, type Store } from '../store/index.ts';
import { type ApprovalView, type ChannelInput, type ChannelView, channelInputSchema } from './schemas.ts';

type ChannelRow = {
  id: string;
  name: string;
  kind: 'webhook' | 'email' | 'slack';
  config: string;
  sealed_secret: string | null;
  enabled: number;
  created_at: number;
  updated_at: number;
};

/** The header a webhook receiver verifies: `t=<unix seconds>,v1=<hex HMAC-SHA256>`. */
export const SIGNATURE_HEADER = 'warden-signature';

/**
 * Signs a webhook body: HMAC-SHA256 with the channel secret over `<t>.<body>`, where `t` is the
 * Unix time in seconds (also sent, so receivers can refuse stale deliveries and replays).
 */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/** Where an email notification goes for a request: the eligible approvers' addresses. */
export type RecipientResolver = (request: ApprovalView) => Promise<string[]>;

const aad = (id: string) => `approvals.channel:${id}`;

/** The payload every channel carries (the webhook sends it as JSON). */
export function notificationPayload(view: ApprovalView): Record<string, unknown> {
  return {
    type: 'approval.requested',
    approval: {
      id: view.id,
      url: view.url,
      agent: view.agent,
      user_id: view.user_id,
      intent: view.intent,
      binding_message: view.binding_message,
      authorization_details: view.authorization_details,
      approvers: view.approvers,
      expires_at: view.expires_at,
      call_hash: view.call_hash,
    },
  };
}

/** Slack-compatible incoming-webhook message (`text` fallback plus Block Kit `blocks`). */
export function slackPayload(view: ApprovalView): { text: string; blocks: Record<string, unknown>[] } {
  // Slack mrkdwn treats <, > and & specially; escape them so arguments cannot inject links.
  const esc = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  const args = JSON.stringify(view.arguments, null, 2);
  const clipped = args.length > 2500 ? `${args.slice(0, 2500)}…` : args;
  const text = `Approval needed: ${esc(view.binding_message)} (agent ${esc(view.agent.name)}, tool ${esc(view.tool)}) ${view.url}`;
  return {
    text,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: 'Approval needed' } },
      {
        type: 'section',
        text: { type: 'mrkdwn', text: `*${esc(view.binding_message)}*` },
        fields: [
          { type: 'mrkdwn', text: `*Agent*\n${esc(view.agent.name)}` },
          { type: 'mrkdwn', text: `*Tool*\n${esc(view.tool)}` },
          { type: 'mrkdwn', text: `*Intent*\n${esc(view.intent ?? '—')}` },
          { type: 'mrkdwn', text: `*Expires*\n${view.expires_at}` },
        ],
      },
      { type: 'section', text: { type: 'mrkdwn', text: `*Arguments*\n\`\`\`${esc(clipped)}\`\`\`` } },
      {
        type: 'actions',
        elements: [
          {
            type: 'button',
            text: { type: 'plain_text', text: 'Review and decide' },
            url: view.url,
            style: 'primary',
          },
        ],
      },
    ],
  };
}

function emailText(view: ApprovalView): string {
  return [
    `Agent ${view.agent.name} asks for approval.`,
    '',
    `What: ${view.binding_message}`,
    `Tool: ${view.tool}`,
    view.resource ? `Resource: ${view.resource}` : undefined,
    `Intent: ${view.intent ?? '(none declared)'}`,
    `Arguments: ${JSON.stringify(view.arguments)}`,
    `Expires: ${view.expires_at}`,
    '',
    `Review and decide: ${view.url}`,
  ]
    .filter((l) => l !== undefined)
    .join('\n');
}

/**
 * Something a user must act on that is not an approval request, e.g. a connected account the
 * vault marked broken. Carries no secret: ids, names and a reason code.
 */
export interface UserNotice {
  /** Stable event type, e.g. `vault.account_broken`. */
  type: string;
  user_id: string;
  /** One line (email subject, Slack header). */
  title: string;
  /** Plain text body: what happened and what to do. */
  text: string;
  details: Record<string, unknown>;
}

/** One notification as each channel kind renders it. */
interface Message {
  webhook: Record<string, unknown>;
  slack: { text: string; blocks?: Record<string, unknown>[] };
  subject: string;
  text: string;
  /** Who `notify_approvers` adds to an email channel's fixed recipients. */
  concerned: () => Promise<string[]>;
}

/**
 * Notification channels (signed webhook, SMTP email, Slack incoming webhook). Secrets are sealed
 * in the store and opened only to deliver; they never appear in a view, a log line or an event.
 */
export class NotificationChannels {
  readonly #store: Store;
  readonly #keyring: Keyring;
  readonly #auditor: Auditor;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #recipients: RecipientResolver;
  readonly #userEmail: (userId: string) => Promise<string | undefined>;
  readonly #timeoutMs: number;

  constructor(deps: {
    store: Store;
    keyring: Keyring;
    auditor: Auditor;
    clock: Clock;
    logger: Logger;
    recipients: RecipientResolver;
    /** An active user's email address, if any. */
    userEmail: (userId: string) => Promise<string | undefined>;
    timeoutMs: number;
  }) {
    this.#store = deps.store;
    this.#keyring = deps.keyring;
    this.#auditor = deps.auditor;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#recipients = deps.recipients;
    this.#userEmail = deps.userEmail;
    this.#timeoutMs = deps.timeoutMs;
  }

  #view(row: ChannelRow): ChannelView {
    return {
      id: row.id,
      name: row.name,
      kind: row.kind,
      enabled: Number(row.enabled) === 1,
      config: JSON.parse(row.config) as Record<string, unknown>,
      has_secret: row.sealed_secret !== null,
      created_at: new Date(Number(row.created_at)).toISOString(),
      updated_at: new Date(Number(row.updated_at)).toISOString(),
    };
  }

  async list(): Promise<ChannelView[]> {
    const rows = (await this.#store.db
      .selectFrom('approval_channels')
      .selectAll()
      .orderBy('name')
      .execute()) as ChannelRow[];
    return rows.map((r) => this.#view(r));
  }

  /** Adds a channel; its secret is sealed before it reaches the database. */
  async create(input: ChannelInput, caller: Caller): Promise<ChannelView> {
    const parsed = channelInputSchema.parse(input);
    const id = uuidv7(this.#clock);
    const now = this.#clock.now();
    let config: Record<string, unknown>;
    let secret: string | undefined;
    switch (parsed.kind) {
      case 'webhook':
        config = { url: parsed.url };
        secret = parsed.secret;
        break;
      case 'email':
        config = {
          host: parsed.host,
          port: parsed.port,
          secure: parsed.secure,
          from: parsed.from,
          to: parsed.to,
          notify_approvers: parsed.notify_approvers,
          username: parsed.username,
        };
        secret = parsed.password;
        break;
      case 'slack': {
        const u = new URL(parsed.webhook_url);
        config = { host: u.host };
        secret = parsed.webhook_url;
        break;
      }
    }
    const row: ChannelRow = {
      id,
      name: parsed.name,
      kind: parsed.kind,
      config: JSON.stringify(config),
      sealed_secret: secret === undefined ? null : this.#keyring.seal(secret, aad(id)),
      enabled: parsed.enabled ? 1 : 0,
      created_at: now,
      updated_at: now,
    };
    try {
      await this.#auditor.transact(
        (tx) => tx.insertInto('approval_channels').values(row).execute(),
        () => ({
          type: 'approval.settings_changed',
          actor: actorOf(caller),
          action: 'approvals.channels.create',
          resource: { type: 'approval_channel', id, name: parsed.name },
          outcome: 'success',
          request: caller.request,
          details: { kind: parsed.kind },
        }),
      );
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new ConflictError(`a channel named ${parsed.name} exists`, { code: 'ERR_CHANNEL_EXISTS' });
      }
      throw e;
    }
    return this.#view(row);
  }

  async delete(ref: string, caller: Caller): Promise<void> {
    await this.#auditor.transact(
      async (tx) => {
        const res = await tx
          .deleteFrom('approval_channels')
          .where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)]))
          .executeTakeFirst();
        if (Number(res.numDeletedRows) === 0) {
          throw new NotFoundError(`channel ${ref} does not exist`, { code: 'ERR_CHANNEL_NOT_FOUND' });
        }
      },
      () => ({
        type: 'approval.settings_changed',
        actor: actorOf(caller),
        action: 'approvals.channels.delete',
        resource: { type: 'approval_channel', name: ref },
        outcome: 'success',
        request: caller.request,
      }),
    );
  }

  /** Re-wraps every channel secret under the current master key. */
  async rewrap(): Promise<number> {
    const rows = (await this.#store.db
      .selectFrom('approval_channels')
      .select(['id', 'sealed_secret'])
      .where('sealed_secret', 'is not', null)
      .execute()) as { id: string; sealed_secret: string }[];
    for (const r of rows) {
      await this.#store.db
        .updateTable('approval_channels')
        .set({ sealed_secret: this.#keyring.rewrap(r.sealed_secret) })
        .where('id', '=', r.id)
        .execute();
    }
    return rows.length;
  }

  /**
   * Sends a request to every enabled channel. A failing channel is logged (name and error code
   * only) and does not stop the others; delivery never blocks or fails the request itself.
   * @returns the names of the channels that delivered.
   */
  notify(view: ApprovalView): Promise<string[]> {
    return this.#deliver({
      webhook: notificationPayload(view),
      slack: slackPayload(view),
      subject: `Approval needed: ${view.binding_message}`,
      text: emailText(view),
      concerned: () => this.#recipients(view),
    });
  }

  /**
   * Tells a user about something they must act on (webhook `type` = the notice's type; email to
   * the user's own address where the channel has `notify_approvers`). Same delivery rules as
   * {@link notify}. @returns the names of the channels that delivered.
   */
  notifyUser(notice: UserNotice): Promise<string[]> {
    const esc = (v: string) => v.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
    return this.#deliver({
      webhook: { type: notice.type, user_id: notice.user_id, title: notice.title, details: notice.details },
      slack: { text: `${esc(notice.title)}\n${esc(notice.text)}` },
      subject: notice.title,
      text: notice.text,
      concerned: async () => {
        const email = await this.#userEmail(notice.user_id);
        return email ? [email] : [];
      },
    });
  }

  async #deliver(message: Message): Promise<string[]> {
    const rows = (await this.#store.db
      .selectFrom('approval_channels')
      .selectAll()
      .where('enabled', '=', 1)
      .execute()) as ChannelRow[];
    const delivered: string[] = [];
    await Promise.all(
      rows.map(async (row) => {
        try {
          await this.#send(row, message);
          delivered.push(row.name);
        } catch (e) {
          this.#logger.warn(
            { channel: row.name, kind: row.kind, code: (e as { code?: string }).code ?? 'ERR_DELIVERY' },
            'approvals: notification not delivered',
          );
        }
      }),
    );
    return delivered;
  }

  #secret(row: ChannelRow): string | undefined {
    return row.sealed_secret === null ? undefined : this.#keyring.openText(row.sealed_secret, aad(row.id));
  }

  async #post(url: string, body: string, headers: Record<string, string>): Promise<void> {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { code: `ERR_HTTP_${res.status}` });
  }

  async #send(row: ChannelRow, message: Message): Promise<void> {
    const config = JSON.parse(row.config) as Record<string, unknown>;
    switch (row.kind) {
      case 'webhook': {
        const body = JSON.stringify(message.webhook);
        const t = Math.floor(this.#clock.now() / 1000);
        await this.#post(config.url as string, body, {
          [SIGNATURE_HEADER]: signWebhook(this.#secret(row) as string, t, body),
          'warden-delivery': uuidv7(this.#clock),
        });
        return;
      }
      case 'slack':
        await this.#post(this.#secret(row) as string, JSON.stringify(message.slack), {});
        return;
      case 'email': {
        const to = new Set(config.to as string[]);
        if (config.notify_approvers) for (const a of await message.concerned()) to.add(a);
        if (to.size === 0) return;
        const host = config.host as string;
        const loopback = ['127.0.0.1', 'localhost', '::1'].includes(host);
        const password = this.#secret(row);
        // Loaded on first use, so a node without email channels never pays for it.
        const { default: nodemailer } = await import('nodemailer');
        const transport = nodemailer.createTransport({
          host,
          port: config.port as number,
          secure: config.secure as boolean,
          // STARTTLS is mandatory except to a local relay on the same machine.
          requireTLS: !(config.secure as boolean) && !loopback,
          ignoreTLS: loopback && !(config.secure as boolean),
          connectionTimeout: this.#timeoutMs,
          greetingTimeout: this.#timeoutMs,
          socketTimeout: this.#timeoutMs,
          ...(config.username && password
            ? { auth: { user: config.username as string, pass: password } }
            : {}),
        });
        try {
          await transport.sendMail({
            from: config.from as string,
            to: [...to],
            subject: message.subject.replace(/[\r\n]+/g, ' ').slice(0, 200),
            text: message.text,
          });
        } finally {
          transport.close();
        }
        return;
      }
    }
  }
}
