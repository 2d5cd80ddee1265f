/**
 * The web page (web/ in the repository, read by node/web_assets.ts): its
 * files served with their Content-Security-Policy to the owner (router
 * middleware after the shared checks), and the session routes by which the
 * one-time link of `lanchat web` becomes the page's cookie.
 *
 * @module
 */
import { HttpError, json, readBody } from "../request.ts";
import { type HttpAccess, SESSION_COOKIE } from "../access.ts";
import { type Middleware, Router } from "../router.ts";
import { CODE_TTL_MS, noticePage, sessionValue } from "../web_link.ts";

/** What a spent, expired or made-up link is told, where. */
const SPENT = {
  local: "This link was used already, or is more than a minute old: run `lanchat web` on this computer for a new one.",
  lan: "This link was used already, or is more than a minute old: run `lanchat web --lan` on the computer that runs " +
    "lanchat for a new one.",
};

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
 * owner's only, as every route) makes a code: `{path, expiresInSeconds}`;
 * with `{"lan": true}` a code for the LAN listeners, which it opens, and
 * their `urls`. On the LAN handler (`access.lan`) codes and cookies are
 * the LAN's, and no link is made.
 */
export function sessionRoutes(access: HttpAccess): Router {
  const r = new Router();
  const { token, codes } = access;
  if (token === undefined || codes === undefined) return r;
  const scope = access.lan ? "lan" : "local";
  return r
    .get("/session", (req, url) => {
      // A HEAD (a link preview, a checker) must not spend the code the person is about to open.
      if (req.method === "HEAD") return new Response(null, { status: 204, headers: { "cache-control": "no-store" } });
      const code = url.searchParams.get("code") ?? "";
      if (!codes.redeem(code, scope)) return noticePage(401, SPENT[scope]);
      return new Response(null, {
        status: 303,
        headers: {
          location: "/",
          "set-cookie": `${SESSION_COOKIE}=${sessionValue(token, scope)}; HttpOnly; SameSite=Strict; Path=/; ` +
            `Max-Age=${SESSION_MAX_AGE_S}`,
          "cache-control": "no-store",
          "referrer-policy": "no-referrer",
        },
      });
    })
    .post("/session/link", async (req) => {
      // A LAN session is a phone's page: it opens lanchat, it does not hand out links (the owner's CLI does).
      if (access.lan) throw new HttpError(403, "One-time links are made on the computer that runs lanchat only");
      const text = await readBody(req);
      let lan = false;
      try {
        lan = text.trim() !== "" && JSON.parse(text)?.lan === true;
      } catch {
        throw new HttpError(400, "Body is not valid JSON");
      }
      const expiresInSeconds = CODE_TTL_MS / 1000;
      if (!lan) return json({ path: `/session?code=${codes.issue()}`, expiresInSeconds }, 201);
      if (!access.openLan) {
        throw new HttpError(
          409,
          "This daemon's HTTP API is not on loopback (--http): it answers on the LAN already, to the token; " +
            "lanchat web --lan is for a daemon on loopback",
        );
      }
      let origins: string[];
      try {
        origins = await access.openLan();
      } catch (e) {
        throw new HttpError(409, (e as Error).message);
      }
      const path = `/session?code=${codes.issue("lan")}`;
      return json({ path, urls: origins.map((o) => `${o}${path}`), expiresInSeconds }, 201);
    });
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
