import assert from "node:assert/strict";
import { Router } from "../../src/api/router.ts";
import { HttpError } from "../../src/api/request.ts";

const req = (path: string, method = "GET") => new Request(`http://127.0.0.1${path}`, { method });
const text = (s: string) => () => new Response(s);

function app() {
  const items = new Router()
    .get("/items", text("list"))
    .post("/items", text("made"))
    .get("/items/:id", (_req, _url, p) => new Response(`item ${p.id}`))
    .post("/items/:id/drop", (_req, _url, p) => new Response(`dropped ${p.id}`))
    .get("/items/new", text("the form"));
  const other = new Router()
    .get("/fails", () => {
      throw new HttpError(409, "Taken", { candidates: ["a"] });
    })
    .get("/breaks", () => {
      throw new Error("boom");
    });
  return new Router().route(items).route(other);
}

Deno.test("router answers by method and path, a :name segment as it came, an exact path before a pattern", async () => {
  const r = app();
  assert.equal(await (await r.handle(req("/items"))).text(), "list");
  assert.equal(await (await r.handle(req("/items", "POST"))).text(), "made");
  assert.equal(await (await r.handle(req("/items/a%2Fb"))).text(), "item a%2Fb");
  assert.equal(await (await r.handle(req("/items/x/drop", "POST"))).text(), "dropped x");
  assert.equal(await (await r.handle(req("/items/new"))).text(), "the form");
  assert.equal(await (await r.handle(req("/items//"))).text(), "list", "trailing slashes are forgiven");
  assert.equal((await r.handle(req("/items/x/y"))).status, 404, "a :name is one segment");
});

Deno.test("router: 404 lists the exact paths in the order added, 405 names the path's methods, HEAD is GET without a body", async () => {
  const r = app();
  const missing = await r.handle(req("/nope/"));
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), {
    error: "No such endpoint: /nope/; try /items, /items/new, /fails, /breaks",
    status: 404,
  });
  const wrong = await r.handle(req("/items/", "PUT"));
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "GET, POST");
  assert.equal((await wrong.json()).error, "Method PUT not allowed on /items; use GET, POST");
  assert.equal((await r.handle(req("/items/x/drop"))).headers.get("allow"), "POST");
  const head = await r.handle(req("/items/x", "HEAD"));
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  assert.equal((await r.handle(req("/items/x/drop", "HEAD"))).status, 405, "HEAD needs a GET");
});

Deno.test("router turns a route's HttpError into its JSON error and anything else into a 500", async () => {
  const r = app();
  const taken = await r.handle(req("/fails"));
  assert.equal(taken.status, 409);
  assert.deepEqual(await taken.json(), { error: "Taken", status: 409, candidates: ["a"] });
  const broken = await r.handle(req("/breaks"));
  assert.equal(broken.status, 500);
  assert.equal((await broken.json()).error, "Internal error: boom");
});

Deno.test("router runs middleware in order before the routes; one may answer, and its errors are its own", async () => {
  const seen: string[] = [];
  const r = app()
    .use(async (_req, _url, path, next) => {
      seen.push(`first ${path}`);
      return await next();
    })
    .use(async (req, _url, path, next) => {
      seen.push("second");
      if (path === "/gate") return new Response("gated", { status: 403 });
      if (req.method === "DELETE") throw new Error("refused");
      return await next();
    });
  assert.equal(await (await r.handle(req("/items/"))).text(), "list");
  assert.deepEqual(seen, ["first /items", "second"]);
  const gated = await r.handle(req("/gate"));
  assert.equal(gated.status, 403);
  await assert.rejects(r.handle(req("/items", "DELETE")), /refused/);
});
