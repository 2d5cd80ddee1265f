import assert from "node:assert/strict";
import type { DaemonEvent, MessageJson, PeerLookup } from "../../src/api/types.ts";
import {
  type Api,
  createHandler,
  type HttpAccess,
  isLoopbackBind,
  LOOPBACK_HOSTS,
  MAX_BODY_BYTES,
} from "../../src/api/http.ts";
import { serveHttp } from "../../src/node/http_server.ts";
import { type SearchResult, Store, type StoredMessage, StoreError } from "../../src/storage/store.ts";

const BOB = { id: "b".repeat(32), name: "bob@h2", hostname: "h2", online: true };

/** An Api over a fake daemon: records what was sent, answers lookups for "bob". */
function fakeApi(overrides: Partial<Api> = {}, access: HttpAccess = {}) {
  const sent: { to: string; text: string }[] = [];
  const listeners = new Set<(e: DaemonEvent) => void>();
  let n = 0;
  const stored = (to: string, text: string): StoredMessage => ({
    cursor: ++n,
    id: String(n).padStart(32, "0"),
    peer: to,
    direction: "out",
    seq: n,
    text,
    sentAt: 0,
    status: "sent",
    gapBefore: 0,
    late: false,
  });
  const api: Api = {
    peersBody: () => new TextEncoder().encode('[\n  {"id": "x"}\n]\n'),
    allPeers: () => [{ id: "x" }, { id: "y", state: "offline" }],
    status: () => ({ id: "me", peers: 1 }),
    metrics: () => "lanchat_peers 1\n",
    lookupPeer: (q): PeerLookup =>
      q === "bob" || q === BOB.id
        ? { ok: true, peer: BOB }
        : q === "b"
        ? { ok: false, reason: "ambiguous", candidates: [BOB, { ...BOB, id: "b2".padEnd(32, "0"), name: "bob@h3" }] }
        : { ok: false, reason: "unknown", candidates: [BOB] },
    onlinePeers: () => [{ id: BOB.id, name: BOB.name }],
    sendMessage: (to, text) => {
      sent.push({ to, text });
      return Promise.resolve(stored(to, text));
    },
    sendMessages: (items) => {
      sent.push(...items);
      return Promise.resolve(items.map(({ to, text }) => stored(to, text)));
    },
    waitDelivered: (id) => Promise.resolve({ ...stored(BOB.id, "x"), id, status: "delivered", rttMs: 1.5 }),
    history: () => [stored(BOB.id, "old")],
    historyRange: () => ({ first: 1, last: 1, count: 1 }),
    cursorAt: (t) => Math.floor(t / 1000),
    search: (q) => ({ messages: [stored(BOB.id, `found ${q.text}`)], complete: true }),
    messageJson: (m) =>
      ({
        id: m.id,
        cursor: m.cursor,
        direction: m.direction,
        peer: { id: m.peer, name: "bob@h2" },
        seq: m.seq,
        text: m.text,
        status: m.status,
        sentAt: new Date(m.sentAt).toISOString(),
        ...(m.rttMs ? { rttMs: m.rttMs } : {}),
      }) as MessageJson,
    onEvent: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    peerName: () => "bob@h2",
    trustPeer: (id) => ({ id, key: "00", name: "bob@h2", firstSeen: 0, trust: "trusted" }),
    verifyPeer: (id) => ({
      peer: { id, name: "bob@h2", fingerprint: "0000:0000:0000:0000" },
      self: { id: "f".repeat(32), name: "me", fingerprint: "ffff:ffff:ffff:ffff" },
      safetyNumber: Array(12).fill("01234").join(" "),
      trust: "tofu",
      state: "not verified",
    }),
    forgetPeer: () => true,
    compactMemory: () => ({ ok: true }),
    setPresence: (presence, note) => ({ presence, ...(note ? { note } : {}) }),
    markRead: () => 0,
    sendSealed: () => Promise.reject(new RangeError("no sealed messages here")),
    openSealed: () => {
      throw new RangeError("no sealed messages here");
    },
    groups: {
      list: () => [],
      lookup: () => ({ ok: false, reason: "unknown", candidates: [] }),
      create: () => Promise.reject(new RangeError("no groups here")),
      add: () => Promise.reject(new RangeError("no groups here")),
      leave: () => Promise.reject(new RangeError("no groups here")),
      send: () => Promise.reject(new RangeError("no groups here")),
      markRead: () => 0,
    },
    ...overrides,
  };
  return { api, sent, listeners, handler: createHandler(api, access) };
}

const req = (path: string, init: RequestInit = {}) => new Request(`http://127.0.0.1${path}`, init);
const post = (path: string, body: unknown) =>
  req(path, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) });

Deno.test("http serves the roster, status, health and metrics", async () => {
  const { handler, api } = fakeApi();
  const peers = await handler(req("/peers"));
  assert.equal(peers.status, 200);
  assert.match(peers.headers.get("content-type")!, /application\/json/);
  assert.equal(await peers.text(), new TextDecoder().decode(api.peersBody()));
  assert.deepEqual(await (await handler(req("/status"))).json(), {
    id: "me",
    peers: 1,
    eventStreams: { open: 0, listeners: 0 },
  });
  assert.equal(await (await handler(req("/healthz"))).text(), "ok\n");
  const metrics = await handler(req("/metrics"));
  assert.match(metrics.headers.get("content-type")!, /text\/plain; version=0.0.4/);
  assert.equal((await handler(req("/peers/"))).status, 200, "a trailing slash is forgiven");
});

Deno.test("http answers an unknown path with 404 and a wrong method with 405 and Allow", async () => {
  const { handler } = fakeApi();
  const res = await handler(req("/nope"));
  assert.equal(res.status, 404);
  assert.match((await res.json()).error, /No such endpoint: \/nope/);
  for (const m of ["POST", "PUT", "DELETE"]) {
    const r = await handler(req("/peers", { method: m }));
    assert.equal(r.status, 405);
    assert.equal(r.headers.get("allow"), "GET");
  }
  assert.equal((await handler(req("/messages", { method: "DELETE" }))).headers.get("allow"), "POST, GET");
  const head = await handler(req("/healthz", { method: "HEAD" }));
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
});

Deno.test("http POST /messages sends to the peer named and answers 202, or 200 when it waited for delivery", async () => {
  const { handler, sent } = fakeApi();
  const r1 = await handler(post("/messages", { to: "bob", text: "lunch?" }));
  assert.equal(r1.status, 202);
  assert.equal((await r1.json()).status, "sent");
  const r2 = await handler(post("/messages?wait=2", { to: "bob", text: "now?" }));
  assert.equal(r2.status, 200);
  const b2 = await r2.json();
  assert.equal(b2.status, "delivered");
  assert.equal(b2.rttMs, 1.5);
  assert.deepEqual(sent, [{ to: BOB.id, text: "lunch?" }, { to: BOB.id, text: "now?" }]);
});

Deno.test("http POST /messages rejects bad input with 400/413 and stores nothing", async () => {
  const { handler, sent } = fakeApi();
  const cases: [Request, number, RegExp][] = [
    [post("/messages", "{nope"), 400, /not valid JSON/],
    [post("/messages", "[1]"), 400, /JSON object/],
    [post("/messages", { text: "x" }), 400, /"to"/],
    [post("/messages", { to: "", text: "x" }), 400, /"to"/],
    [post("/messages", { to: "bob" }), 400, /"text"/],
    [post("/messages", { to: "bob", text: 5 }), 400, /"text"/],
    [post("/messages", { to: "bob", text: " \n" }), 400, /empty/],
    [post("/messages", { to: "bob", text: "x".repeat(65_537) }), 413, /limit is 65536/],
    [post("/messages", "x".repeat(MAX_BODY_BYTES + 1)), 413, /limit/],
    [post("/messages?wait=-1", { to: "bob", text: "x" }), 400, /wait/],
    [post("/messages?wait=abc", { to: "bob", text: "x" }), 400, /wait/],
    [req("/messages", { method: "POST", body: new Uint8Array([0x7b, 0xff, 0x7d]) }), 400, /UTF-8/],
  ];
  for (const [r, status, msg] of cases) {
    const res = await handler(r);
    assert.equal(res.status, status, msg.source);
    assert.match((await res.json()).error, msg);
  }
  assert.deepEqual(sent, []);
});

Deno.test("http POST /messages answers 404 for an unknown peer and 409 for an ambiguous one, with candidates", async () => {
  const { handler, sent } = fakeApi();
  const unknown = await handler(post("/messages", { to: "carol", text: "x" }));
  assert.equal(unknown.status, 404);
  assert.deepEqual((await unknown.json()).candidates.map((c: { name: string }) => c.name), ["bob@h2"]);
  const amb = await handler(post("/messages", { to: "b", text: "x" }));
  assert.equal(amb.status, 409);
  assert.equal((await amb.json()).candidates.length, 2);
  assert.deepEqual(sent, []);
});

Deno.test("http POST /messages with a messages array stores them all at once, in order", async () => {
  const { handler, sent } = fakeApi();
  const res = await handler(post("/messages", { messages: [{ to: "bob", text: "one" }, { to: BOB.id, text: "two" }] }));
  assert.equal(res.status, 202);
  const body = await res.json();
  assert.deepEqual(body.messages.map((m: { text: string; status: string }) => [m.text, m.status]), [
    ["one", "sent"],
    ["two", "sent"],
  ]);
  assert.deepEqual(sent, [{ to: BOB.id, text: "one" }, { to: BOB.id, text: "two" }]);
});

Deno.test("http POST /messages with a messages array refuses the whole batch for one bad item, naming it", async () => {
  const { handler, sent } = fakeApi();
  const cases: [unknown, number, RegExp][] = [
    [[], 400, /1 to 1000/],
    ["x", 400, /1 to 1000/],
    [Array.from({ length: 1001 }, () => ({ to: "bob", text: "x" })), 400, /1 to 1000/],
    [[{ to: "bob", text: "ok" }, { to: "bob", text: "" }], 400, /^messages\[1\]: .*empty/],
    [[{ to: "bob", text: "ok" }, null], 400, /^messages\[1\]: .*"to"/],
    [[{ to: "carol", text: "x" }], 404, /^messages\[0\]: No peer matches "carol"/],
    [[{ to: "bob", text: "ok" }, { to: "b", text: "x" }], 409, /^messages\[1\]: .*matches 2 peers/],
  ];
  for (const [messages, status, msg] of cases) {
    const res = await handler(post("/messages", { messages }));
    assert.equal(res.status, status, msg.source);
    assert.match((await res.json()).error, msg);
  }
  assert.deepEqual(sent, []);
});

Deno.test("http POST /messages with a messages array reports an item that could not be stored (207)", async () => {
  const { handler } = fakeApi({
    sendMessages: (items) =>
      Promise.resolve(
        items.map((it, i) =>
          i === 1 ? new StoreError("Cannot store the message: database or disk is full") : {
            cursor: i + 1,
            id: String(i + 1).padStart(32, "0"),
            peer: it.to,
            direction: "out" as const,
            seq: i + 1,
            text: it.text,
            sentAt: 0,
            status: "sent" as const,
            gapBefore: 0,
            late: false,
          }
        ),
      ),
  });
  const res = await handler(post("/messages", { messages: [{ to: "bob", text: "a" }, { to: "bob", text: "b" }] }));
  assert.equal(res.status, 207);
  const body = await res.json();
  assert.equal(body.messages[0].status, "sent");
  assert.deepEqual(body.messages[1], { error: "Cannot store the message: database or disk is full", status: 507 });
});

Deno.test("http POST /messages answers 507 when the message cannot be stored", async () => {
  const { handler } = fakeApi({
    sendMessage: () => Promise.reject(new StoreError("Cannot store the message: database or disk is full")),
  });
  const res = await handler(post("/messages", { to: "bob", text: "x" }));
  assert.equal(res.status, 507);
  assert.match((await res.json()).error, /disk is full; the message was not stored or sent/);
});

Deno.test("http GET /messages validates peer, since and limit", async () => {
  const { handler } = fakeApi();
  assert.equal((await handler(req("/messages?peer=bob&since=3&limit=10"))).status, 200);
  assert.equal((await handler(req("/messages?since=2026-11-24T00:00:00Z"))).status, 200);
  assert.equal((await handler(req("/messages?peer=carol"))).status, 404);
  assert.equal((await handler(req("/messages?since=yesterday"))).status, 400);
  assert.equal((await handler(req("/messages?limit=0"))).status, 400);
  assert.equal((await handler(req("/messages?limit=10001"))).status, 400);
  const body = await (await handler(req("/messages"))).json();
  assert.equal(body[0].text, "old");
});

Deno.test("http POST /broadcast sends to every peer online and reports each", async () => {
  const { handler, sent } = fakeApi();
  const res = await handler(post("/broadcast?wait=1", { text: "all" }));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.peers, 1);
  assert.equal(body.results[0].status, "delivered");
  assert.deepEqual(sent, [{ to: BOB.id, text: "all" }]);
});

Deno.test("http GET /events streams events and ends when the handler's streams are closed", async () => {
  const { handler, listeners } = fakeApi();
  const res = await handler(req("/events"));
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.match((await reader.read()).value!, /^: lanchat events/);
  for (const l of listeners) {
    l({ type: "message", message: { ...({} as StoredMessage), id: "m1", peer: BOB.id, text: "hi", sentAt: 0 } });
  }
  const chunk = (await reader.read()).value!;
  assert.match(chunk, /^event: message\ndata: \{.*"text":"hi".*\}\n\n$/);
  handler.closeStreams();
  assert.equal((await reader.read()).done, true);
  assert.equal(listeners.size, 0, "the listener is removed");
});

Deno.test("http GET /events: after 300 clients came and went (read and hung up, hung up before the answer, aborted), no stream or listener is left", async () => {
  const { handler, listeners, api } = fakeApi();
  api.eventListeners = () => listeners.size;
  const server = serveHttp("127.0.0.1", 0, handler);
  const port = server.addr.port;
  const request = new TextEncoder().encode(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  const status = async () => (await (await fetch(`http://127.0.0.1:${port}/status`)).json()).eventStreams;
  try {
    const open: Deno.TcpConn[] = [];
    for (let i = 0; i < 300; i++) {
      if (i % 3 === 2) {
        const ac = new AbortController();
        const res = await fetch(`http://127.0.0.1:${port}/events`, { signal: ac.signal });
        const reader = res.body!.getReader();
        await reader.read();
        ac.abort();
        await reader.read().catch(() => {});
        continue;
      }
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(request);
      if (i % 3 === 0) {
        const buf = new Uint8Array(4096);
        let text = "";
        while (!text.includes("lanchat events")) {
          const n = await conn.read(buf);
          if (n === null) break;
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
      }
      // Some held open a while, so that several streams are open at once.
      open.push(conn);
      if (open.length >= 30) { for (const c of open.splice(0)) c.close(); }
    }
    const during = await status();
    assert.ok(during.open > 0 && during.open === during.listeners, JSON.stringify(during));
    for (const c of open.splice(0)) c.close();
    let after = await status();
    for (let i = 0; i < 200 && (after.open > 0 || after.listeners > 0); i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await status();
    }
    assert.deepEqual(after, { open: 0, listeners: 0 });
    assert.equal(listeners.size, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("http serves on an ephemeral loopback port and says why a bind fails", async () => {
  const { handler } = fakeApi();
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

Deno.test("http with a token answers 401 without the right bearer token, except /healthz", async () => {
  const token = "s3cret-token-0123456789";
  const { handler, sent } = fakeApi({}, { token });
  for (const path of ["/peers", "/status", "/metrics", "/messages"]) {
    const res = await handler(req(path));
    assert.equal(res.status, 401, path);
    assert.match(res.headers.get("www-authenticate")!, /^Bearer/);
    assert.match((await res.json()).error, /bearer token/);
  }
  const wrong = await handler(
    req("/messages", { method: "POST", body: '{"to":"bob","text":"x"}', headers: { authorization: "Bearer nope" } }),
  );
  assert.equal(wrong.status, 401);
  const prefix = await handler(req("/peers", { headers: { authorization: `Bearer ${token.slice(0, -1)}` } }));
  assert.equal(prefix.status, 401, "a prefix of the token is not the token");
  assert.equal(sent.length, 0, "nothing was sent without the token");
  assert.equal((await handler(req("/healthz"))).status, 200);
  const ok = await handler(req("/peers", { headers: { authorization: `Bearer ${token}` } }));
  assert.equal(ok.status, 200);
});

Deno.test("http on a loopback bind refuses a Host header that is not loopback (DNS rebinding)", async () => {
  const { handler } = fakeApi({}, { allowedHosts: LOOPBACK_HOSTS });
  const evil = await handler(
    new Request("http://evil.example:47476/peers", { headers: { host: "evil.example:47476" } }),
  );
  assert.equal(evil.status, 403);
  assert.match((await evil.json()).error, /not allowed/);
  for (const host of ["127.0.0.1:47476", "localhost:47476", "[::1]:47476", "localhost"]) {
    const res = await handler(new Request(`http://${host}/peers`, { headers: { host } }));
    assert.equal(res.status, 200, host);
  }
  assert.ok(isLoopbackBind("127.0.0.1") && isLoopbackBind("::1") && !isLoopbackBind("0.0.0.0"));
  assert.ok(!isLoopbackBind("198.18.0.1"));
});

Deno.test("a loopback Host with anything after the name or the bracketed address is refused", async () => {
  const { handler } = fakeApi({}, { allowedHosts: LOOPBACK_HOSTS });
  for (
    const host of [
      "[::1].evil",
      "[::1]x:47476",
      "[::1]:47476.evil",
      "localhost:47476:1",
      "127.0.0.1.evil.com",
      ":47476",
    ]
  ) {
    const res = await handler(new Request("http://127.0.0.1:47476/peers", { headers: { host } }));
    assert.equal(res.status, 403, host);
    await res.body?.cancel();
  }
});

Deno.test("http trust and forget name a peer and report what changed", async () => {
  const forgotten: string[] = [];
  const { handler } = fakeApi({ forgetPeer: (id) => (forgotten.push(id), true) });
  const t = await handler(post("/trust", { peer: "bob" }));
  assert.equal(t.status, 200);
  assert.equal((await t.json()).trust, "trusted");
  const f = await handler(post("/forget", { peer: "bob" }));
  assert.equal(f.status, 200);
  assert.deepEqual(forgotten, [BOB.id]);
  assert.equal((await handler(post("/trust", {}))).status, 400);
  assert.equal((await handler(post("/forget", { peer: "carol" }))).status, 404);
});

Deno.test("a page of thousands of messages goes out in slices, and reads as the same JSON a small page would", async () => {
  const store = await Store.open(Deno.makeTempDirSync({ prefix: "lanchat-http-page-" }));
  try {
    store.startGroupCommit(() => {});
    for (let i = 1; i <= 1234; i++) {
      store.insertOutgoing({ id: String(i).padStart(32, "0"), peer: BOB.id, text: `line ${i}\n"quoted"`, sentAt: i });
    }
    store.commit();
    let slices = 0;
    const { handler, api } = fakeApi({
      history: (q) => {
        slices++;
        return store.history(q);
      },
      historyRange: (q) => store.historyRange(q),
    });
    const server = serveHttp("127.0.0.1", 0, handler);
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      const res = await fetch(`${base}/messages?before=1200&limit=1000`);
      assert.equal(res.headers.get("transfer-encoding"), "chunked");
      assert.equal(
        res.headers.get("link"),
        '</messages?limit=1000&before=200>; rel="prev", </messages?limit=1000&after=1199>; rel="next"',
      );
      const text = await res.text();
      const expected = store.history({ before: 1200, limit: 1000 }).map((m) => api.messageJson(m));
      assert.equal(text, JSON.stringify(expected, null, 2) + "\n", "byte for byte what json() would send");
      assert.equal(slices, 4, "read 250 at a time");
      assert.deepEqual((JSON.parse(text) as MessageJson[]).map((m) => m.cursor).slice(0, 2), [200, 201]);
      // Forward past the end, an empty page, a search page: all well-formed.
      assert.equal((await (await fetch(`${base}/messages?after=1000&limit=10000`)).json()).length, 234);
      assert.deepEqual(await (await fetch(`${base}/messages?after=5000`)).json(), []);
      const found = await (await fetch(`${base}/messages/search?q=old`)).json();
      assert.deepEqual(Object.keys(found), ["query", "complete", "messages"]);
    } finally {
      await server.shutdown();
    }
  } finally {
    store.close();
  }
});

Deno.test("POST /memory/compact compacts and shows the memory; too soon is 429 with Retry-After, impossible is 501", async () => {
  let answer: ReturnType<Api["compactMemory"]> = { ok: true };
  const { handler } = fakeApi({
    compactMemory: () => answer,
    status: () => ({ memory: { rssBytes: 1, heapUsedBytes: 2 } }),
  });
  const ok = await handler(req("/memory/compact", { method: "POST" }));
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { rssBytes: 1, heapUsedBytes: 2 });
  answer = { ok: false, retryAfterMs: 4200 };
  const soon = await handler(req("/memory/compact", { method: "POST" }));
  assert.equal(soon.status, 429);
  assert.equal(soon.headers.get("retry-after"), "5");
  answer = undefined;
  const no = await handler(req("/memory/compact", { method: "POST" }));
  assert.equal(no.status, 501);
  assert.match((await no.json()).error, /--expose-gc/);
  assert.equal((await handler(req("/memory/compact"))).status, 405);
});

Deno.test("http refuses a message posted by another site's page open in the browser (Origin or Sec-Fetch-Site), and nothing is sent", async () => {
  const { handler, sent } = fakeApi({}, { allowedHosts: LOOPBACK_HOSTS });
  const body = JSON.stringify({ to: "bob", text: "sent by evil.example" });
  const from = (headers: Record<string, string>) =>
    handler(
      new Request("http://127.0.0.1:47476/messages", {
        method: "POST",
        body,
        headers: { host: "127.0.0.1:47476", "content-type": "text/plain", ...headers },
      }),
    );
  for (
    const headers of <Record<string, string>[]> [
      { origin: "http://evil.example" },
      { origin: "null" },
      { origin: "http://127.0.0.1:8080" }, // another port is another origin
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
    ]
  ) {
    const res = await from(headers);
    assert.equal(res.status, 403, JSON.stringify(headers));
    assert.match((await res.json()).error, /Cross-origin request refused/);
  }
  assert.equal(sent.length, 0);
  // The page the daemon serves itself, the CLI and curl (no Origin) go through.
  assert.equal((await from({ origin: "http://127.0.0.1:47476", "sec-fetch-site": "same-origin" })).status, 202);
  assert.equal((await from({})).status, 202);
  // Reads stay open: another page cannot read the answer anyway (no CORS headers).
  const read = await handler(
    new Request("http://127.0.0.1:47476/peers", {
      headers: { host: "127.0.0.1:47476", origin: "http://evil.example" },
    }),
  );
  assert.equal(read.status, 200);
  assert.equal(read.headers.get("access-control-allow-origin"), null);
});

Deno.test("GET /messages/search passes q through as it came, and says where a search that stopped early goes on", async () => {
  const asked: string[] = [];
  let answer: SearchResult = { messages: [], complete: false, partial: "scanned", next: 1001 };
  const { handler } = fakeApi({
    search: (q) => {
      asked.push(q.text);
      return answer;
    },
  });
  const r = await handler(req(`/messages/search?q=${encodeURIComponent("%%%\u0000_")}&limit=5`));
  assert.equal(r.status, 200);
  assert.deepEqual(asked, ["%%%\u0000_"], "the text as typed: no wildcard, no cut at the NUL");
  assert.equal(r.headers.get("link"), '</messages/search?q=%25%25%25%00_&limit=5&before=1001>; rel="next"');
  const body = await r.json();
  assert.deepEqual([body.complete, body.next, body.messages], [false, 1001, []]);
  assert.match(body.note, /^Searched back to #1001 only \(one search looks at 5000 messages .*before=1001/);
  // Nothing more to look at: no next, no link.
  answer = { messages: [], complete: true };
  const done = await handler(req("/messages/search?q=x"));
  assert.equal(done.headers.get("link"), null);
  assert.deepEqual(await done.json(), { query: "x", complete: true, messages: [] });
});
