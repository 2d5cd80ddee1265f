/**
 * The web page (web/ in the repository, read by node/web_assets.ts): its
 * files served with their Content-Security-Policy to the owner (router
 * middleware after the shared checks), and the session routes by which the
 * one-time link of `lanchat web` becomes the page's cookie.
 *
 * @module
 */
import { json } from "../request.ts";
import { type HttpAccess, SESSION_COOKIE } from "../access.ts";
import { type Middleware, Router } from "../router.ts";
import { CODE_TTL_MS, noticePage, sessionValue } from "../web_link.ts";

/**
 * The page's policy: its own scripts and styles only, no inline script, no
 * connection but to this server, not framed. Peers' text is never HTML in it.
 */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** How long the session cookie lasts: a year (replacing the token file ends it sooner). */
const SESSION_MAX_AGE_S = 365 * 24 * 3600;

/**
 * `GET /session?code=…` (the link `lanchat web` prints): a waiting one-time
 * code becomes the session cookie (HttpOnly: no script reads it;
 * SameSite=Strict: no other site's request carries it), and the browser is
 * sent on to `/`, so that the code stays neither in the address bar nor in
 * history, nor goes to anyone as a referrer. Any other code (used, expired,
 * made up) gets the page saying how to get in. `POST /session/link` (the
 * owner's only, as every route) makes a code: `{path, expiresInSeconds}`.
 */
export function sessionRoutes(access: HttpAccess): Router {
  const r = new Router();
  const { token, codes } = access;
  if (token === undefined || codes === undefined) return r;
  return r
    .get("/session", (req, url) => {
      // A HEAD (a link preview, a checker) must not spend the code the person is about to open.
      if (req.method === "HEAD") return new Response(null, { status: 204, headers: { "cache-control": "no-store" } });
      const code = url.searchParams.get("code") ?? "";
      if (!codes.redeem(code)) {
        return noticePage(
          401,
          "This link was used already, or is more than a minute old: run `lanchat web` on this computer for a new one.",
        );
      }
      return new Response(null, {
        status: 303,
        headers: {
          location: "/",
          "set-cookie": `${SESSION_COOKIE}=${sessionValue(token)}; HttpOnly; SameSite=Strict; Path=/; ` +
            `Max-Age=${SESSION_MAX_AGE_S}`,
          "cache-control": "no-store",
          "referrer-policy": "no-referrer",
        },
      });
    })
    .post(
      "/session/link",
      () => json({ path: `/session?code=${codes.issue()}`, expiresInSeconds: CODE_TTL_MS / 1000 }, 201),
    );
}

/** Answers `GET`/`HEAD` of the page's files; hands everything else on to the routes. */
export function page(access: HttpAccess): Middleware {
  return async (req, url, _path, next) => {
    const asset = access.web?.get(url.pathname);
    if (asset && (req.method === "GET" || req.method === "HEAD")) {
      return new Response(req.method === "HEAD" ? null : asset.body as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": asset.type,
          "cache-control": "no-cache",
          "content-security-policy": PAGE_CSP,
          "x-content-type-options": "nosniff",
          "referrer-policy": "no-referrer",
          "x-frame-options": "DENY",
        },
      });
    }
    return await next();
  };
}
