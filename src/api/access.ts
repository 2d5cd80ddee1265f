/**
 * The checks every request passes before any route, in one place: the
 * `Host` a loopback bind answers to, the bearer token (or the web page's
 * session cookie), and no change from another site's page (`Origin`,
 * `Sec-Fetch-Site`). {@link accessChecks} is them as the router's middleware;
 * what the token does not guard (`/healthz`, the page's files, asking for a
 * session) is named there too. Body size is checked where a route reads the
 * body (`readBody` in request.ts), as only the route knows its limit.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { jsonError } from "./request.ts";
import type { Middleware } from "./router.ts";

/** A file of the web page, as served. */
export interface WebAsset {
  body: Uint8Array;
  type: string;
}

/** Who may use the API. */
export interface HttpAccess {
  /**
   * A bearer token every route but `/healthz` requires (compared in
   * constant time). Required whenever the server listens beyond loopback.
   */
  token?: string;
  /**
   * Host names (without port) a request's `Host` header may carry. Set on
   * loopback binds: a web page that rebinds its own DNS name to 127.0.0.1
   * still sends its own name as Host, and is refused.
   */
  allowedHosts?: readonly string[];
  /** The web page's files by path ("/", "/app.js", …). */
  web?: ReadonlyMap<string, WebAsset>;
}

/** Host names accepted on a loopback bind. */
export const LOOPBACK_HOSTS: readonly string[] = ["127.0.0.1", "localhost", "::1", "[::1]"];

/** True when `hostname` (an address to bind) only accepts connections from this host. */
export function isLoopbackBind(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** SHA-256 of a text: what the constant-time comparisons compare, so that both sides have one length. */
export const digest = (s: string) => createHash("sha256").update(s).digest();

/** Constant-time check of an `Authorization: Bearer …` header against the token. */
function tokenMatches(header: string | null, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  // Both sides hashed to 32 bytes: timingSafeEqual needs equal lengths, and
  // the time taken then says nothing about the token's length either.
  return timingSafeEqual(digest(m?.[1] ?? ""), digest(token)) && m !== null;
}

function hostAllowed(host: string | null, allowed: readonly string[]): boolean {
  if (!host) return false;
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
  return allowed.includes(name.toLowerCase());
}

/**
 * Why a request that changes something is refused as coming from another
 * site's page (a browser says so: `Origin` not this server, or
 * `Sec-Fetch-Site: cross-site`), or undefined. Any page open in the user's
 * browser can POST to 127.0.0.1 (a form, or `fetch` with `mode: "no-cors"`);
 * the Host check does not see it, as the Host is ours. Reads are safe:
 * without CORS headers the other page cannot read the answer. Clients that
 * are not browsers (the CLI, curl) send neither header.
 */
export function crossOrigin(req: Request): string | undefined {
  if (req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS") return undefined;
  const site = req.headers.get("sec-fetch-site");
  const origin = req.headers.get("origin");
  let sameHost = false;
  try {
    sameHost = origin !== null && new URL(origin).host === req.headers.get("host");
  } catch { /* "null" or malformed: not this server */ }
  if ((origin !== null && !sameHost) || (site !== null && site !== "same-origin" && site !== "none")) {
    return `Cross-origin request refused: a page from ${origin ?? "another site"} may not ${req.method} here`;
  }
  return undefined;
}

/** The cookie the web page's session keeps the token in. */
export const SESSION_COOKIE = "lanchat_token";

/** Whether a `Cookie` header carries the token (compared in constant time). */
function cookieMatches(header: string | null, token: string): boolean {
  const m = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([^;]+)`).exec(header ?? "");
  return m !== null && timingSafeEqual(digest(decodeURIComponent(m[1]!)), digest(token));
}

/**
 * The shared checks, in order: `Host` (403), the token unless the request
 * is one that needs none (401), another site's page changing something (403).
 */
export function accessChecks(access: HttpAccess): Middleware {
  return async (req, url, path, next) => {
    if (access.allowedHosts && !hostAllowed(req.headers.get("host"), access.allowedHosts)) {
      return jsonError(
        403,
        `Host "${req.headers.get("host") ?? ""}" is not allowed: this endpoint answers only to ${
          access.allowedHosts.join(", ")
        }`,
      );
    }
    // The page's own files carry no secret: served to anyone who may reach the server, so that the
    // page can ask for the token (POST /session). The token then travels in an HttpOnly,
    // SameSite=Strict cookie.
    const asset = access.web?.get(url.pathname);
    const open = path === "/healthz" || (asset !== undefined && (req.method === "GET" || req.method === "HEAD")) ||
      (path === "/session" && req.method === "POST");
    if (
      access.token !== undefined && !open && !tokenMatches(req.headers.get("authorization"), access.token) &&
      !cookieMatches(req.headers.get("cookie"), access.token)
    ) {
      return jsonError(
        401,
        "Missing or wrong bearer token: send Authorization: Bearer TOKEN (the daemon's --http-token-file; the CLI reads $LANCHAT_HTTP_TOKEN)",
        { "www-authenticate": 'Bearer realm="lanchat"' },
      );
    }
    const cross = crossOrigin(req);
    if (cross) return jsonError(403, cross);
    return await next();
  };
}
