/**
 * The local API answers its owner only: every route but `/healthz` and the
 * one-time link wants the token or the page's cookie; the one-time link
 * works once, within a minute, and leaves neither code nor token in a URL.
 * Routes come from the router's own table, so a new route is covered.
 */
import assert from "node:assert/strict";
import {
  type Api,
  CODE_TTL_MS,
  createHandler,
  LOOPBACK_HOSTS,
  NO_SESSION_TEXT,
  OneTimeCodes,
  SESSION_COOKIE,
  UNAUTHORIZED_TEXT,
} from "../../src/api/http.ts";
import { escapeHtml, MAX_CODES, sessionValue } from "../../src/api/web_link.ts";

const TOKEN = "owner-token-0123456789abcdef";
const PAGE = new TextEncoder().encode("<!doctype html><title>lanchat</title>");
/** An Api whose every method answers an empty list: enough for a route to answer 200 once let in. */
const api = new Proxy({}, { get: () => () => [] }) as unknown as Api;

function setup(now = () => Date.now()) {
  const codes = new OneTimeCodes(now);
  const handler = createHandler(api, {
    token: TOKEN,
    codes,
    allowedHosts: LOOPBACK_HOSTS,
    web: new Map([["/", { body: PAGE, type: "text/html; charset=utf-8" }], ["/app.js", {
      body: new Uint8Array(1),
      type: "text/javascript",
    }]]),
  });
  return { handler, codes };
}

const req = (path: string, init: RequestInit = {}) =>
  new Request(`http://127.0.0.1:47476${path}`, { ...init, headers: { host: "127.0.0.1:47476", ...init.headers } });

/** A concrete request for each `METHOD /path` of the router's table. */
function requestFor(route: string, headers: Record<string, string> = {}): Request {
  const [method, pattern] = route.split(" ") as [string, string];
  const path = pattern.replace(/:\w+/g, "x");
  return req(path, { method, headers, body: method === "GET" ? undefined : "{}" });
}

async function link(handler: (r: Request) => Promise<Response>): Promise<string> {
  const res = await handler(req("/session/link", { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } }));
  assert.equal(res.status, 201);
  const body = await res.json();
  assert.match(body.path, /^\/session\?code=[\w-]{43}$/);
  assert.equal(body.expiresInSeconds, 60);
  return body.path;
}

Deno.test("every route but /healthz and the one-time link answers 401 without the token, and says how to get in", async () => {
  const { handler } = setup();
  const routes = handler.routes();
  assert.ok(routes.length > 25, `the router lists its routes: ${routes.join(", ")}`);
  const open = new Set(["GET /healthz", "GET /session"]);
  for (const route of routes.filter((r) => !open.has(r))) {
    const attempts: Record<string, string>[] = [{}, { authorization: "Bearer wrong" }, {
      cookie: `${SESSION_COOKIE}=${TOKEN}`,
    }];
    for (const headers of attempts) {
      const res = await handler(requestFor(route, headers));
      assert.equal(res.status, 401, `${route} ${JSON.stringify(headers)}`);
      assert.equal((await res.json()).error, UNAUTHORIZED_TEXT);
    }
  }
  assert.match(UNAUTHORIZED_TEXT, /lanchat web/);
  assert.match(UNAUTHORIZED_TEXT, /bearer token/);
  // The page's files too; the page itself says, as HTML, how to open it.
  const script = await handler(req("/app.js"));
  assert.equal(script.status, 401);
  await script.body?.cancel();
  const page = await handler(req("/"));
  assert.equal(page.status, 401);
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  assert.match(page.headers.get("content-security-policy")!, /default-src 'none'/);
  const html = await page.text();
  assert.ok(html.includes(escapeHtml(NO_SESSION_TEXT)), html);
  assert.match(html, /Run `lanchat web` on this computer to open lanchat/);
  assert.doesNotMatch(html, /<script|lanchat<\/title>.*<img/);
  const head = await handler(req("/", { method: "HEAD" }));
  assert.equal(head.status, 401);
  assert.equal(head.body, null, "HEAD: no body");
  // With the token, a route answers.
  const ok = await handler(req("/peers?all=1", { headers: { authorization: `Bearer ${TOKEN}` } }));
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), []);
});

Deno.test("the one-time link sets an HttpOnly, SameSite=Strict cookie that is not the token, and leaves for a clean URL", async () => {
  const { handler } = setup();
  const path = await link(handler);
  const res = await handler(req(path));
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/", "on to a URL without the code");
  assert.equal(res.headers.get("referrer-policy"), "no-referrer");
  assert.equal(res.headers.get("cache-control"), "no-store");
  const cookie = res.headers.get("set-cookie")!;
  assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=[\\w-]{43}; HttpOnly; SameSite=Strict; Path=/; Max-Age=\\d+$`));
  assert.ok(!cookie.includes(TOKEN), "the browser never holds the token");
  const session = cookie.split(";")[0]!;
  assert.equal(session, `${SESSION_COOKIE}=${sessionValue(TOKEN)}`);
  // The cookie opens the page and the API…
  const page = await handler(req("/", { headers: { cookie: session } }));
  assert.equal(page.status, 200);
  assert.deepEqual(new Uint8Array(await page.arrayBuffer()), PAGE);
  const peers = await handler(req("/peers?all=1", { headers: { cookie: `a=b; ${session}` } }));
  assert.equal(peers.status, 200);
  assert.deepEqual(await peers.json(), []);
  // …but not a change from another site's page.
  const forged = await handler(
    req("/messages", { method: "POST", body: "{}", headers: { cookie: session, origin: "http://evil.example" } }),
  );
  assert.equal(forged.status, 403);
  await forged.body?.cancel();
  // A cookie for another token opens nothing.
  const other = await handler(
    req("/peers", { headers: { cookie: `${SESSION_COOKIE}=${sessionValue("x".repeat(20))}` } }),
  );
  assert.equal(other.status, 401);
  await other.body?.cancel();
});

Deno.test("a used, replayed, expired or made-up code is refused with the page saying what to do", async () => {
  let now = 1_000_000;
  const { handler, codes } = setup(() => now);
  const refused = async (path: string, why: string) => {
    const res = await handler(req(path));
    assert.equal(res.status, 401, why);
    assert.equal(res.headers.get("set-cookie"), null, why);
    assert.match(await res.text(), /used already, or is more than a minute old: run `lanchat web`/, why);
  };
  const used = await link(handler);
  const peek = await handler(req(used, { method: "HEAD" }));
  assert.equal(peek.status, 204, "a HEAD (a link preview) answers without a cookie…");
  assert.equal(peek.headers.get("set-cookie"), null);
  assert.equal((await handler(req(used))).status, 303, "…and does not spend the code");
  await refused(used, "used");
  await refused(used, "replayed again");
  const late = await link(handler);
  now += CODE_TTL_MS;
  await refused(late, "expired");
  const inTime = await link(handler);
  now += CODE_TTL_MS - 1;
  assert.equal((await handler(req(inTime))).status, 303, "a code just in time");
  for (const path of ["/session", "/session?code=", "/session?code=x", `/session?code=${TOKEN}`, "/session?code=%ff"]) {
    await refused(path, path);
  }
  assert.equal(codes.size, 0, "nothing waits after use or expiry");
  // Making codes needs the token, and never keeps more than MAX_CODES waiting.
  const stranger = await handler(req("/session/link", { method: "POST" }));
  assert.equal(stranger.status, 401);
  await stranger.body?.cancel();
  const many: string[] = [];
  for (let i = 0; i < MAX_CODES + 5; i++) many.push(await link(handler));
  assert.equal(codes.size, MAX_CODES);
  await refused(many[0]!, "the oldest made way");
  assert.equal((await handler(req(many.at(-1)!))).status, 303);
});

Deno.test("the one-time link still passes the Host check (a rebinding page cannot use it)", async () => {
  const { handler } = setup();
  const path = await link(handler);
  const res = await handler(new Request(`http://127.0.0.1:47476${path}`, { headers: { host: "evil.example" } }));
  assert.equal(res.status, 403);
  await res.body?.cancel();
  assert.equal((await handler(req(path))).status, 303, "the refused request did not spend the code");
});
