/**
 * A minimal cookie-keeping browser over fetch for the authorization_code tests that attack single
 * steps (forged forms, replays). It follows redirects by hand and stops at the client's callback,
 * which nothing serves. The full flow is also driven by real Chromium (consent-page.test.ts).
 */
export class JarBrowser {
  readonly #cookies = new Map<string, string>();
  readonly #stopAt: string;

  /** @param stopAt a URL prefix (the redirect URI) where following redirects ends. */
  constructor(stopAt: string) {
    this.#stopAt = stopAt;
  }

  /** Loads a URL and follows redirects; returns where it ended and the last body. */
  async go(url: string): Promise<Landing> {
    return this.#follow(url, { method: 'GET' });
  }

  /** Posts a form (repeated keys allowed) and follows redirects. */
  async post(url: string, form: [string, string][]): Promise<Landing> {
    return this.#follow(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  cookie(name: string): string | undefined {
    return this.#cookies.get(name);
  }

  async #follow(url: string, init: RequestInit): Promise<Landing> {
    let current = url;
    let request = init;
    for (let hops = 0; hops < 10; hops += 1) {
      if (current.startsWith(this.#stopAt))
        return { url: current, status: 0, body: '', headers: new Headers() };
      const res = await fetch(current, {
        ...request,
        redirect: 'manual',
        headers: { ...(request.headers as Record<string, string>), cookie: this.#header() },
      });
      for (const line of res.headers.getSetCookie()) this.#store(line);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current).href;
        request = { method: 'GET' };
        continue;
      }
      return { url: current, status: res.status, body: await res.text(), headers: res.headers };
    }
    throw new Error('too many redirects');
  }

  #header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  #store(line: string): void {
    const [pair, ...attrs] = line.split(';');
    const i = (pair ?? '').indexOf('=');
    if (i < 1) return;
    const name = (pair as string).slice(0, i).trim();
    const value = (pair as string).slice(i + 1).trim();
    const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
    if (gone || value === '') this.#cookies.delete(name);
    else this.#cookies.set(name, value);
  }
}

export interface Landing {
  url: string;
  /** 0 when the browser stopped at the client's callback. */
  status: number;
  body: string;
  headers: Headers;
}

/** The value of a hidden form field in a page. */
export function formField(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no field ${name} in page`);
  return m[1] as string;
}
