import type { ApprovalView } from './schemas.ts';

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** No scripts at all; styles inline; forms only to this origin; never framed. */
export const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE = `body{font:15px/1.45 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d232b}
h1{font-size:1.4rem}dl{display:grid;grid-template-columns:10rem 1fr;gap:.35rem 1rem}dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}pre{background:#f3f5f7;padding:.6rem;overflow:auto;white-space:pre-wrap}
.status{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;background:#e7ecf2}
.msg{padding:.5rem .75rem;background:#fff4d6;border-left:4px solid #e0a800}.err{background:#fde8e8;border-color:#c62828}
label{display:block;margin:.6rem 0 .2rem}input[type=text],input[type=password],textarea{width:100%;box-sizing:border-box;padding:.4rem}
button{padding:.5rem 1.1rem;margin:.6rem .5rem 0 0;font-size:1rem}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #dde3ea;padding:.35rem;text-align:left}`;

function layout(title: string, body: string, who?: { username: string; csrf: string }): string {
  const header = who
    ? `<form method="post" action="/approvals/logout" style="float:right"><input type="hidden" name="csrf" value="${escapeHtml(who.csrf)}">Signed in as <strong>${escapeHtml(who.username)}</strong> <button type="submit">Sign out</button></form>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer"><title>${escapeHtml(title)} · Warden</title><style>${STYLE}</style></head><body>${header}${body}</body></html>`;
}

/** The sign-in form (username and password) in front of every approval page. */
export function renderLogin(options: { next: string; csrf: string; error?: string }): string {
  return layout(
    'Sign in',
    `<h1>Sign in to review an approval request</h1>
${options.error ? `<p class="msg err" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="/approvals/login">
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<input type="hidden" name="next" value="${escapeHtml(options.next)}">
<label for="username">Username</label><input type="text" id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">Sign in</button>
</form>`,
  );
}

/** One request with everything the approver must see, and the decision form when they may decide. */
export function renderRequest(
  view: ApprovalView,
  options: {
    username: string;
    csrf: string;
    canDecide: boolean;
    message?: string;
    /** Display names of the people involved, by user id. */
    names?: Record<string, string>;
  },
): string {
  const person = (id: string | null, fallback: string) =>
    id === null ? fallback : `${escapeHtml(options.names?.[id] ?? id)} <small>(${escapeHtml(id)})</small>`;
  const rows: [string, string][] = [
    ['Status', `<span class="status" id="status">${escapeHtml(view.status)}</span>`],
    ['What', `<strong id="binding-message">${escapeHtml(view.binding_message)}</strong>`],
    ['Agent', `${escapeHtml(view.agent.name)} <small>(${escapeHtml(view.agent.id)})</small>`],
    ['Agent owner', person(view.agent.owner_id, '—')],
    ['On behalf of', `<span id="on-behalf-of">${person(view.user_id, '— (the agent itself)')}</span>`],
    ['Declared intent', `<span id="intent">${escapeHtml(view.intent ?? '— (none declared)')}</span>`],
    ['Action', `<code id="tool">${escapeHtml(view.tool)}</code>`],
    ['Resource', escapeHtml(view.resource ?? '—')],
    ['Arguments', `<pre id="arguments">${escapeHtml(JSON.stringify(view.arguments, null, 2))}</pre>`],
    ['Requested', escapeHtml(view.created_at)],
    ['Expires', `<span id="expires">${escapeHtml(view.expires_at)}</span>`],
    ['Call hash', `<code>${escapeHtml(view.call_hash)}</code>`],
  ];
  if (view.decided_by) {
    rows.push([
      'Decided by',
      `${escapeHtml(view.decided_by.name ?? view.decided_by.id)} at ${escapeHtml(view.decided_at)}`,
    ]);
    if (view.decision_comment) rows.push(['Comment', escapeHtml(view.decision_comment)]);
  }
  const form =
    view.status === 'pending' && options.canDecide
      ? `<form method="post" action="/approvals/${encodeURIComponent(view.id)}/decision">
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<label for="comment">Comment (optional)</label><textarea id="comment" name="comment" maxlength="1000" rows="3"></textarea>
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>`
      : view.status === 'pending'
        ? '<p class="msg">You may not decide this request (it is for another approver, or separation of duties forbids it).</p>'
        : '';
  return layout(
    'Approval request',
    `<h1>Approval request</h1>
${options.message ? `<p class="msg" role="status" id="message">${escapeHtml(options.message)}</p>` : ''}
<dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${v}</dd>`).join('')}</dl>
${form}
<p><a href="/approvals">All requests</a></p>`,
    { username: options.username, csrf: options.csrf },
  );
}

/** The inbox: pending requests first. */
export function renderInbox(views: ApprovalView[], who: { username: string; csrf: string }): string {
  const body = views.length
    ? `<table><thead><tr><th>Status</th><th>What</th><th>Agent</th><th>Expires</th></tr></thead><tbody>${views
        .map(
          (v) =>
            `<tr><td>${escapeHtml(v.status)}</td><td><a href="/approvals/${encodeURIComponent(v.id)}">${escapeHtml(v.binding_message)}</a></td><td>${escapeHtml(v.agent.name)}</td><td>${escapeHtml(v.expires_at)}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '<p>No approval requests.</p>';
  return layout('Approvals', `<h1>Approval requests</h1>${body}`, who);
}

/** A plain error page (the page is for browsers, so not problem+json). */
export function renderError(title: string, detail: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p class="msg err">${escapeHtml(detail)}</p>`);
}
