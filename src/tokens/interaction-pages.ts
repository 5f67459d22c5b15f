/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/**
 * No scripts at all; styles inline; never framed. Forms go to this origin only — plus the origin of
 * the client's (registered, already validated) redirect URI: browsers apply `form-action` to the
 * redirects that follow a form post too, and the last one takes the person back to the client.
 */
export function interactionPageCsp(redirectUri?: string): string {
  let extra = '';
  if (redirectUri) {
    try {
      const origin = new URL(redirectUri).origin;
      if (/^https?:\/\/[A-Za-z0-9.:[\]-]+$/.test(origin)) extra = ` ${origin}`;
    } catch {
      // not a URL: no extra origin
    }
  }
  return `default-src 'none'; style-src 'unsafe-inline'; form-action 'self'${extra}; frame-ancestors 'none'; base-uri 'none'`;
}

const STYLE = `body{font:15px/1.45 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1d232b}
h1{font-size:1.4rem}dl{display:grid;grid-template-columns:9rem 1fr;gap:.35rem 1rem}dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}.msg{padding:.5rem .75rem;background:#fff4d6;border-left:4px solid #e0a800}
.err{background:#fde8e8;border-color:#c62828}label{display:block;margin:.6rem 0 .2rem}
input[type=text],input[type=password],select{width:100%;box-sizing:border-box;padding:.4rem}
fieldset{border:1px solid #dde3ea;margin:.8rem 0}.scope label{display:inline;margin-left:.3rem}
button{padding:.5rem 1.1rem;margin:.6rem .5rem 0 0;font-size:1rem}`;

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer"><title>${escapeHtml(title)} · Warden</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

/** The sign-in form of an authorization request (username and password). */
export function renderLoginPage(options: {
  uid: string;
  csrf: string;
  clientName: string;
  error?: string | undefined;
}): string {
  return layout(
    'Sign in',
    `<h1>Sign in to Warden</h1>
<p>to continue to <strong id="client-name">${escapeHtml(options.clientName)}</strong></p>
${options.error ? `<p class="msg err" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="/interaction/${encodeURIComponent(options.uid)}/login">
<input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}">
<label for="username">Username</label><input type="text" id="username" name="username" autocomplete="username" required maxlength="64">
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required maxlength="1024">
<button type="submit" id="sign-in">Sign in</button>
</form>`,
  );
}

/** What the consent screen shows about the agent asking for delegated access. */
export interface ConsentView {
  uid: string;
  csrf: string;
  username: string;
  agent: { id: string; name: string; purpose: string };
  owner: string;
  provider: string;
  template: { name: string; version: number };
  /** What the agent says it needs the access for (the `purpose` parameter). */
  purpose: string;
  resource: string;
  /** Requested scopes the template allows; the only ones that can be granted. */
  scopes: string[];
  /** Requested scopes outside the template: shown as not grantable. */
  refused: string[];
  /** Duration choices in seconds, longest last. */
  durations: number[];
  error?: string | undefined;
}

/** A human reading of a duration in seconds. */
export function describeDuration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? '' : 's'}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  return `${Math.round(seconds / 60)} minutes`;
}

/** The delegation consent screen: who asks, for what, for how long; approve or deny. */
export function renderConsentPage(view: ConsentView): string {
  const rows: [string, string][] = [
    [
      'Agent',
      `<strong id="agent-name">${escapeHtml(view.agent.name)}</strong> <small>(${escapeHtml(view.agent.id)})</small>`,
    ],
    ['Owner', `<span id="agent-owner">${escapeHtml(view.owner)}</span>`],
    ['Provider', `<span id="agent-provider">${escapeHtml(view.provider)}</span>`],
    [
      'Template',
      `<span id="agent-template">${escapeHtml(view.template.name)} v${escapeHtml(view.template.version)}</span>`,
    ],
    ['Agent purpose', escapeHtml(view.agent.purpose)],
    ['Asks access for', `<strong id="purpose">${escapeHtml(view.purpose)}</strong>`],
    ['Resource', `<code id="resource">${escapeHtml(view.resource)}</code>`],
  ];
  const scopes = view.scopes
    .map(
      (s, i) =>
        `<div class="scope"><input type="checkbox" id="scope-${i}" name="scope" value="${escapeHtml(s)}" checked><label for="scope-${i}"><code>${escapeHtml(s)}</code></label></div>`,
    )
    .join('');
  const refused = view.refused.length
    ? `<p class="msg" id="refused-scopes">Not grantable (outside the agent's template): ${view.refused.map((s) => `<code>${escapeHtml(s)}</code>`).join(' ')}</p>`
    : '';
  const durations = view.durations
    .map(
      (d, i) =>
        `<option value="${d}"${i === 0 ? ' selected' : ''}>${escapeHtml(describeDuration(d))}</option>`,
    )
    .join('');
  return layout(
    'Delegate access',
    `<h1>Allow an agent to act for you?</h1>
<p>Signed in as <strong id="signed-in-as">${escapeHtml(view.username)}</strong></p>
${view.error ? `<p class="msg err" role="alert">${escapeHtml(view.error)}</p>` : ''}
<dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${v}</dd>`).join('')}</dl>
<form method="post" action="/interaction/${encodeURIComponent(view.uid)}/consent">
<input type="hidden" name="csrf" value="${escapeHtml(view.csrf)}">
<fieldset><legend>It may, on your behalf</legend>${scopes}</fieldset>
${refused}
<label for="duration">For</label><select id="duration" name="duration">${durations}</select>
<button type="submit" name="decision" value="approve" id="approve">Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>`,
  );
}

/** A plain error page (the interaction pages are for browsers, so not problem+json). */
export function renderInteractionError(title: string, detail: string): string {
  return layout(
    title,
    `<h1>${escapeHtml(title)}</h1><p class="msg err" role="alert">${escapeHtml(detail)}</p>`,
  );
}
