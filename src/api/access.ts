/**
 * The checks every request passes before any route, in one place: the
 * `Host` a loopback bind answers to, the bearer token (or the web page's
 * session cookie), and no change from another site's page (`Origin`,
 * `Sec-Fetch-Site`). {@link accessChecks} is them as the router's middleware;
 * what the token does not guard (`/healthz`, and the one-time link that
 * opens a session) is named there too. The daemon always has a token: the
 * API answers its owner only, on loopback too, as any local user can reach
 * 127.0.0.1. Body size is checked where a route reads the
 * body (`readBody` in request.ts), as only the route knows its limit.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { jsonError } from "./request.ts";
import type { Middleware } from "./router.ts";
import { NO_SESSION_TEXT, noticePage, type OneTimeCodes, sessionMatches, type SessionScope } from "./web_link.ts";

/** A file of the web page, as served. */
export interface WebAsset {
  body: Uint8Array;
  type: string;
}

/** Who may use the API. */
export interface HttpAccess {
  /**
   * A bearer token every route but `/healthz` requires (compared in
   * constant time); the daemon always sets it (security/http_token.ts).
   * Without it (unit tests of routes) every request is let in.
   */
  token?: string;
  /** The web page's one-time codes (web_link.ts); with a token, `POST /session/link` makes them. */
  codes?: OneTimeCodes;
  /**
   * Host names (without port) a request's `Host` header may carry. Set on
   * loopback binds: a web page that rebinds its own DNS name to 127.0.0.1
   * still sends its own name as Host, and is refused.
   */
  allowedHosts?: readonly string[];
  /** The web page's files by path ("/", "/app.js", …). */
  web?: ReadonlyMap<string, WebAsset>;
  /**
   * This handler serves the LAN (`lanchat web --lan`): only the LAN
   * session's cookie lets a request in; the bearer token is refused (it
   * must never cross the LAN in clear text), and no code is made here.
   */
  lan?: boolean;
  /**
   * On the loopback handler: opens the LAN listeners (if not open yet) and
   * gives their origins (`http://198.18.0.2:47476`), for `POST /session/link
   * {"lan": true}`; throws an Error saying why when it cannot.
   */
  openLan?: () => Promise<string[]>;
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
  // A name, or a bracketed IPv6 address, then at most a port: nothing may follow (`[::1].evil` is not `[::1]`).
  const m = /^(\[[^\]]*\]|[^:\[\]]*)(?::\d+)?$/.exec(host);
  return m !== null && allowed.includes(m[1]!.toLowerCase());
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

/** The cookie the web page's session is kept in (its value derived from the token: web_link.ts). */
export const SESSION_COOKIE = "lanchat_session";

/** Whether a `Cookie` header carries the session of `scope` (compared in constant time). */
function cookieMatches(header: string | null, token: string, scope: SessionScope): boolean {
  const m = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([^;]+)`).exec(header ?? "");
  return m !== null && sessionMatches(m[1]!, token, scope);
}

/** What a browser on the LAN without the LAN session is told. */
const LAN_NO_SESSION_TEXT = "Run `lanchat web --lan` on the computer that runs lanchat, and open its link (or scan " +
  "its QR code) here within a minute.";

/** What a request from the LAN without the LAN session is told. */
export const LAN_UNAUTHORIZED_TEXT = "This lanchat answers its owner only: on the LAN, through the page opened with " +
  "the one-time link of `lanchat web --lan` (a bearer token is not accepted over the LAN)";

/** What a request without the token is told: who may use this API and how. */
export const UNAUTHORIZED_TEXT = "Missing or wrong bearer token: this lanchat answers its owner only. " +
  "Run `lanchat web` on this computer to open the page, or send Authorization: Bearer and the token in " +
  "http_token in the daemon's data directory (the owner's CLI reads it, or $LANCHAT_HTTP_TOKEN)";

/**
 * Whether `req` is the owner's: the bearer token or the page's session
 * cookie; on the LAN (`lan`), the LAN session's cookie only.
 */
export function isOwner(req: Request, token: string, lan = false): boolean {
  if (lan) return cookieMatches(req.headers.get("cookie"), token, "lan");
  // Both checked, whatever the first says: the time taken does not tell which one failed.
  const bearer = tokenMatches(req.headers.get("authorization"), token);
  const cookie = cookieMatches(req.headers.get("cookie"), token, "local");
  return bearer || cookie;
}

/**
 * The shared checks, in order: `Host` (403), the token unless the request
 * is one that needs none (401: the page's HTML for a browser opening the
 * page, JSON otherwise), another site's page changing something (403).
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
    const read = req.method === "GET" || req.method === "HEAD";
    // Open to all: the health check, and the one-time link (its code is the proof; routes/page.ts).
    const open = path === "/healthz" || (path === "/session" && read);
    if (access.token !== undefined && !open && !isOwner(req, access.token, access.lan)) {
      const res = read && access.web?.get(url.pathname)?.type.startsWith("text/html")
        ? noticePage(401, access.lan ? LAN_NO_SESSION_TEXT : NO_SESSION_TEXT)
        : access.lan
        ? jsonError(401, LAN_UNAUTHORIZED_TEXT)
        : jsonError(401, UNAUTHORIZED_TEXT, { "www-authenticate": 'Bearer realm="lanchat"' });
      // HEAD: the head alone, as the routes answer it (router.ts).
      return req.method === "HEAD" ? new Response(null, { status: res.status, headers: res.headers }) : res;
    }
    const cross = crossOrigin(req);
    if (cross) return jsonError(403, cross);
    return await next();
  };
}
