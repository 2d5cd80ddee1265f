/**
 * The web page (web/ in the repository, read by node/web_assets.ts): its
 * files served with their Content-Security-Policy, and `POST /session`, by
 * which the page beyond loopback trades the token for a cookie. Both come
 * before the API's routes, as router middleware after the shared checks.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { json, jsonError, readJsonObject } from "../request.ts";
import { digest, type HttpAccess, SESSION_COOKIE } from "../access.ts";
import type { Middleware } from "../router.ts";

/**
 * The page's policy: its own scripts and styles only, no inline script, no
 * connection but to this server, not framed. Peers' text is never HTML in it.
 */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * `POST /session {"token": …}`: the page beyond loopback asks for the token
 * once; a right one comes back as an HttpOnly, SameSite=Strict cookie (no
 * script can read it, no other site's request carries it).
 */
async function startSession(req: Request, token: string): Promise<Response> {
  const body = await readJsonObject(req);
  if (typeof body.token !== "string" || !timingSafeEqual(digest(body.token.trim()), digest(token))) {
    return jsonError(401, "Wrong token: it is in the daemon's --http-token-file");
  }
  return json({ ok: true }, 200, {
    "set-cookie": `${SESSION_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=31536000`,
  });
}

/**
 * Answers `POST /session` (when there is a token) and `GET`/`HEAD` of the
 * page's files; hands everything else on to the routes.
 */
export function page(access: HttpAccess): Middleware {
  return async (req, url, path, next) => {
    if (access.token !== undefined && path === "/session" && req.method === "POST") {
      return await startSession(req, access.token);
    }
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
