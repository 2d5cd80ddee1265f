/**
 * How the web page gets its session without the token ever entering a URL:
 * `lanchat web` (which holds the token) asks for a one-time code, and the
 * link `/session?code=…` trades it, once and within {@link CODE_TTL_MS},
 * for the session cookie. The cookie holds a value derived from the token
 * ({@link sessionValue}), not the token: it opens the page and the API
 * from the browser, outlives a restart of the daemon, and ends for every
 * browser when the token file is replaced.
 *
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** How long a one-time code may wait to be used. */
export const CODE_TTL_MS = 60_000;
/** Codes waiting at most: asking for more drops the oldest (so memory stays bounded whatever the owner runs). */
export const MAX_CODES = 16;

const base64url = (b: Uint8Array) =>
  btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
const hash = (s: string) => createHash("sha256").update(s).digest("hex");

/**
 * Where a session or a code is good: `local`, the loopback address (this
 * computer's browser), or `lan`, the LAN listeners `lanchat web --lan`
 * opens (a phone). Each has its own cookie value and its own codes: a LAN
 * cookie, which crosses the LAN in clear text, opens nothing on loopback,
 * and the owner's loopback cookie never needs to cross the LAN.
 */
export type SessionScope = "local" | "lan";

const LABELS: Record<SessionScope, string> = {
  local: "lanchat web session v1",
  lan: "lanchat web lan session v1",
};

/** The session cookie's value for `token` (HMAC-SHA-256 of a fixed label, one per scope, under the token). */
export function sessionValue(token: string, scope: SessionScope = "local"): string {
  return base64url(createHmac("sha256", token).update(LABELS[scope]).digest());
}

/** Whether `value` is the session value for `token` in `scope` (constant time). */
export function sessionMatches(value: string, token: string, scope: SessionScope = "local"): boolean {
  const a = createHash("sha256").update(value).digest();
  const b = createHash("sha256").update(sessionValue(token, scope)).digest();
  return timingSafeEqual(a, b);
}

/** One-time codes: made on the owner's request, good once, for {@link CODE_TTL_MS}, in one scope. */
export class OneTimeCodes {
  /** SHA-256 of each waiting code → when it expires and where it is good; only hashes are kept. */
  readonly #waiting = new Map<string, { until: number; scope: SessionScope }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A new code (32 random bytes, base64url), good in `scope` only. */
  issue(scope: SessionScope = "local"): string {
    this.#expire();
    while (this.#waiting.size >= MAX_CODES) this.#waiting.delete(this.#waiting.keys().next().value!);
    const code = base64url(crypto.getRandomValues(new Uint8Array(32)));
    this.#waiting.set(hash(code), { until: this.now() + CODE_TTL_MS, scope });
    return code;
  }

  /**
   * True, once, for a code of `scope` issued less than {@link CODE_TTL_MS}
   * ago; false for any other string. A code tried in the other scope is
   * spent all the same: it had one try.
   */
  redeem(code: string, scope: SessionScope = "local"): boolean {
    this.#expire();
    const key = hash(code);
    const ok = this.#waiting.get(key)?.scope === scope;
    this.#waiting.delete(key);
    return ok;
  }

  /** Codes waiting (for tests and /status). */
  get size(): number {
    this.#expire();
    return this.#waiting.size;
  }

  #expire(): void {
    const now = this.now();
    for (const [key, { until }] of this.#waiting) if (until <= now) this.#waiting.delete(key);
  }
}

/** Escapes text for HTML (element content and quoted attributes). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What the page says to a browser without a session. */
export const NO_SESSION_TEXT = "Run `lanchat web` on this computer to open lanchat.";

/**
 * A short HTML page saying `text` (escaped), for a browser without a
 * session or with a spent link: no script, no style, nothing to load.
 */
export function noticePage(status: number, text: string): Response {
  const body = `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>lanchat</title>` +
    `<meta name="viewport" content="width=device-width"></head>\n<body><h1>lanchat</h1>\n<p>${escapeHtml(text)}</p>` +
    `\n<p>Only the user who runs this lanchat can open it.</p></body></html>\n`;
  return new Response(body, {
    status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "x-frame-options": "DENY",
    },
  });
}
