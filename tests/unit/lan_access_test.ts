/**
 * The page and API on the LAN (`lanchat web --lan`) answer the LAN
 * session's cookie only: every route but `/healthz` and the one-time link
 * is 401 without it, with the owner's bearer token or with the loopback
 * cookie; a forged Host or another site's Origin is 403; a LAN code works
 * once, on the LAN only, and a code used, guessed, expired or of the other
 * scope opens nothing. Routes come from the router's own table.
 */
import assert from "node:assert/strict";
import {
  type Api,
  CODE_TTL_MS,
  createHandler,
  LOOPBACK_HOSTS,
  OneTimeCodes,
  SESSION_COOKIE,
} from "../../src/api/http.ts";
import { LAN_UNAUTHORIZED_TEXT } from "../../src/api/access.ts";
import { sessionValue } from "../../src/api/web_link.ts";

const TOKEN = "owner-token-lan-0123456789";
const LAN = "198.18.0.2";
const api = new Proxy({}, { get: () => () => [] }) as unknown as Api;
const PAGE = new TextEncoder().encode("<!doctype html><title>lanchat</title>");

function setup(now = () => Date.now()) {
  const codes = new OneTimeCodes(now);
  const web = new Map([["/", { body: PAGE, type: "text/html; charset=utf-8" }]]);
  let opened = 0;
  const local = createHandler(api, {
    token: TOKEN,
    codes,
    allowedHosts: LOOPBACK_HOSTS,
    web,
    openLan: () => {
      opened++;
      return Promise.resolve([`http://${LAN}:47476`]);
    },
  });
  const lan = createHandler(api, { token: TOKEN, codes, allowedHosts: [LAN], web, lan: true });
  return { local, lan, codes, opened: () => opened };
}

const at = (host: string) => (path: string, init: RequestInit = {}) =>
  new Request(`http://${host}${path}`, { ...init, headers: { host, ...init.headers } });
const onLan = at(`${LAN}:47476`);
const onLoopback = at("127.0.0.1:47476");
const lanCookie = { cookie: `${SESSION_COOKIE}=${sessionValue(TOKEN, "lan")}` };
const localCookie = { cookie: `${SESSION_COOKIE}=${sessionValue(TOKEN)}` };

async function lanLink(local: (r: Request) => Promise<Response>): Promise<{ path: string; urls: string[] }> {
  const res = await local(onLoopback("/session/link", {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ lan: true }),
  }));
  assert.equal(res.status, 201);
  const body = await res.json();
  assert.match(body.path, /^\/session\?code=[\w-]{43}$/);
  assert.deepEqual(body.urls, [`http://${LAN}:47476${body.path}`]);
  return body;
}

Deno.test("on the LAN every route but /healthz and the link is 401 without the LAN cookie: the token and the loopback cookie open nothing", async () => {
  const { lan } = setup();
  const open = new Set(["GET /healthz", "GET /session"]);
  const routes = lan.routes().filter((r) => !open.has(r));
  assert.ok(routes.length > 25);
  const attempts: Record<string, string>[] = [
    {},
    { authorization: `Bearer ${TOKEN}` }, // the real token: refused over the LAN
    localCookie,
    { cookie: `${SESSION_COOKIE}=${TOKEN}` },
    { cookie: `${SESSION_COOKIE}=${sessionValue("another-token", "lan")}` },
  ];
  for (const route of routes) {
    const [method, pattern] = route.split(" ") as [string, string];
    for (const headers of attempts) {
      const res = await lan(onLan(pattern.replace(/:\w+/g, "x"), {
        method,
        headers,
        body: method === "GET" ? undefined : "{}",
      }));
      assert.equal(res.status, 401, `${route} ${JSON.stringify(headers)}`);
      assert.equal((await res.json()).error, LAN_UNAUTHORIZED_TEXT);
      assert.equal(res.headers.get("www-authenticate"), null, "no bearer realm offered on the LAN");
    }
  }
  const page = await lan(onLan("/"));
  assert.equal(page.status, 401);
  assert.match(await page.text(), /Run `lanchat web --lan` on the computer that runs lanchat/);
  assert.equal((await lan(onLan("/healthz"))).status, 200);
  // With the LAN cookie, the routes answer.
  assert.equal((await lan(onLan("/peers", { headers: lanCookie }))).status, 200);
  assert.equal((await lan(onLan("/", { headers: lanCookie }))).status, 200);
});

Deno.test("the LAN cookie opens nothing on loopback, and a LAN session cannot make links", async () => {
  const { local, lan } = setup();
  assert.equal((await local(onLoopback("/peers", { headers: lanCookie }))).status, 401);
  assert.equal((await local(onLoopback("/peers", { headers: localCookie }))).status, 200);
  const res = await lan(onLan("/session/link", { method: "POST", headers: lanCookie, body: "{}" }));
  assert.equal(res.status, 403);
  assert.match((await res.json()).error, /made on the computer that runs lanchat only/);
});

Deno.test("a forged Host or another site's Origin from the LAN is refused, cookie or not", async () => {
  const { lan } = setup();
  for (const host of ["evil.example", "evil.example:47476", "127.0.0.1:47476", `${LAN}.evil`, `[${LAN}]`, ""]) {
    const res = await lan(new Request(`http://${LAN}:47476/peers`, { headers: { host, ...lanCookie } }));
    assert.equal(res.status, 403, host);
  }
  const post = (headers: Record<string, string>) =>
    lan(onLan("/messages", { method: "POST", headers: { ...lanCookie, ...headers }, body: "{}" }));
  assert.equal((await post({ origin: "http://evil.example" })).status, 403);
  assert.equal((await post({ origin: `http://${LAN}:1` })).status, 403, "another port is another origin");
  assert.equal((await post({ "sec-fetch-site": "cross-site" })).status, 403);
  assert.equal((await post({ "sec-fetch-site": "same-site" })).status, 403);
  // The page's own requests pass the checks (then the body is what is wrong).
  assert.equal((await post({ origin: `http://${LAN}:47476`, "sec-fetch-site": "same-origin" })).status, 400);
});

Deno.test("a LAN link works once, on the LAN only; reused, guessed, expired or loopback codes open nothing", async () => {
  let now = 1_000_000;
  const { local, lan, opened } = setup(() => now);
  const { path } = await lanLink(local);
  assert.equal(opened(), 1, "the LAN listeners were opened");
  // On loopback a LAN code is refused, and spent.
  const wrongPlace = await local(onLoopback(path));
  assert.equal(wrongPlace.status, 401);
  assert.equal((await lan(onLan(path))).status, 401, "spent by the try on loopback");

  const { path: path2 } = await lanLink(local);
  const res = await lan(onLan(path2));
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/");
  const cookie = res.headers.get("set-cookie")!;
  assert.match(
    cookie,
    new RegExp(`^${SESSION_COOKIE}=${sessionValue(TOKEN, "lan")}; HttpOnly; SameSite=Strict; Path=/`),
  );
  assert.ok(
    !cookie.includes(TOKEN) && !cookie.includes(sessionValue(TOKEN)),
    "neither the token nor the loopback cookie",
  );
  // Reused.
  const again = await lan(onLan(path2));
  assert.equal(again.status, 401);
  assert.match(await again.text(), /used already, or is more than a minute old: run `lanchat web --lan`/);
  // Guessed: made-up codes, of every shape.
  for (const code of ["", "x", "A".repeat(43), path2.slice(-43, -1) + "Z", "../../", "%00"]) {
    assert.equal((await lan(onLan(`/session?code=${code}`))).status, 401, code);
  }
  // A loopback code on the LAN.
  const localLink = await (await local(onLoopback("/session/link", {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
  }))).json();
  assert.equal((await lan(onLan(localLink.path))).status, 401);
  // Expired.
  const { path: path3 } = await lanLink(local);
  now += CODE_TTL_MS;
  assert.equal((await lan(onLan(path3))).status, 401);
  // A HEAD (a link preview) does not spend it.
  const { path: path4 } = await lanLink(local);
  assert.equal((await lan(onLan(path4, { method: "HEAD" }))).status, 204);
  assert.equal((await lan(onLan(path4))).status, 303);
});

Deno.test("a LAN link from a daemon that cannot serve the LAN says why; a bad body is 400", async () => {
  const codes = new OneTimeCodes();
  const wide = createHandler(api, { token: TOKEN, codes });
  const post = (h: typeof wide, body: string) =>
    h(onLoopback("/session/link", { method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body }));
  const res = await post(wide, JSON.stringify({ lan: true }));
  assert.equal(res.status, 409);
  assert.match((await res.json()).error, /not on loopback/);
  const failing = createHandler(api, {
    token: TOKEN,
    codes,
    openLan: () => Promise.reject(new Error("This host has no LAN address to serve the page on")),
  });
  const none = await post(failing, JSON.stringify({ lan: true }));
  assert.equal(none.status, 409);
  assert.match((await none.json()).error, /no LAN address/);
  assert.equal((await post(failing, "{not json")).status, 400);
  assert.equal((await post(failing, "")).status, 201, "no body: a loopback link, as before");
});
