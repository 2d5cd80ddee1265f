import assert from "node:assert/strict";
import { createHandler, serveHttp } from "../../src/http.ts";

const source = {
  peersJson: () => '[\n  {"id": "x"}\n]\n',
  status: () => ({ id: "me", peers: 1 }),
  metrics: () => "lanchat_peers 1\n",
};
const handler = createHandler(source);
const get = (path: string, method = "GET") => handler(new Request(`http://127.0.0.1${path}`, { method }));

Deno.test("http serves the roster, status, health and metrics", async () => {
  const peers = await get("/peers");
  assert.equal(peers.status, 200);
  assert.match(peers.headers.get("content-type")!, /application\/json/);
  assert.equal(await peers.text(), source.peersJson());
  const status = await get("/status");
  assert.deepEqual(await status.json(), { id: "me", peers: 1 });
  assert.equal(await (await get("/healthz")).text(), "ok\n");
  const metrics = await get("/metrics");
  assert.match(metrics.headers.get("content-type")!, /text\/plain; version=0.0.4/);
  assert.equal(await metrics.text(), "lanchat_peers 1\n");
  assert.equal((await get("/peers/")).status, 200, "a trailing slash is forgiven");
});

Deno.test("http answers an unknown path with a 404 JSON error", async () => {
  const res = await get("/nope");
  assert.equal(res.status, 404);
  const body = await res.json();
  assert.equal(body.status, 404);
  assert.match(body.error, /No such endpoint: \/nope/);
});

Deno.test("http answers a wrong method with 405 and an Allow header", async () => {
  for (const m of ["POST", "PUT", "DELETE"]) {
    const res = await get("/peers", m);
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET");
    assert.equal((await res.json()).status, 405);
  }
  const head = await get("/healthz", "HEAD");
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
});

Deno.test("http turns a failing source into a 500 JSON error", async () => {
  const h = createHandler({
    ...source,
    status: () => {
      throw new Error("boom");
    },
  });
  const res = await h(new Request("http://127.0.0.1/status"));
  assert.equal(res.status, 500);
  assert.match((await res.json()).error, /boom/);
});

Deno.test("http serves on an ephemeral loopback port and says why a bind fails", async () => {
  const server = serveHttp("127.0.0.1", 0, handler);
  try {
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/healthz`);
    assert.equal(await res.text(), "ok\n");
    assert.throws(
      () => serveHttp("127.0.0.1", server.addr.port, handler),
      /Cannot serve HTTP on 127\.0\.0\.1:\d+: address already in use/,
    );
  } finally {
    await server.shutdown();
  }
});
