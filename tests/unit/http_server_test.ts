/**
 * The HTTP/1.1 server under the API (src/http_server.ts) on real loopback
 * sockets, spoken to byte by byte: keep-alive, framing, the connection cap
 * and its eviction, and the deadlines (made short here so the tests do not
 * wait long).
 */
import assert from "node:assert/strict";
import { connectionCap, type HttpLimits, openFileLimit, serveHttp } from "../../src/node/http_server.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function serve(handler: (req: Request) => Response | Promise<Response>, limits: Partial<HttpLimits> = {}) {
  return serveHttp("127.0.0.1", 0, handler, { limits });
}

async function connect(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

/** Reads until the peer closes (or `ms` pass); returns the text and whether it closed. */
async function readAll(conn: Deno.Conn, ms = 3000): Promise<{ text: string; closed: boolean }> {
  const chunks: string[] = [];
  const buf = new Uint8Array(65536);
  const deadline = Date.now() + ms;
  while (true) {
    const left = deadline - Date.now();
    if (left <= 0) return { text: chunks.join(""), closed: false };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), left)),
    ]);
    clearTimeout(timer);
    if (n === "timeout") return { text: chunks.join(""), closed: false };
    if (n === null) return { text: chunks.join(""), closed: true };
    chunks.push(dec.decode(buf.subarray(0, n)));
  }
}

/** Reads until `text` contains `until`. */
async function readUntil(conn: Deno.Conn, until: RegExp, ms = 3000): Promise<string> {
  let text = "";
  const buf = new Uint8Array(65536);
  const deadline = Date.now() + ms;
  while (!until.test(text)) {
    if (Date.now() > deadline) throw new Error(`no ${until} within ${ms} ms; got ${JSON.stringify(text)}`);
    const n = await conn.read(buf);
    if (n === null) throw new Error(`closed before ${until}; got ${JSON.stringify(text)}`);
    text += dec.decode(buf.subarray(0, n));
  }
  return text;
}

Deno.test("http server answers keep-alive requests in order: bodies with their length, event streams chunked", async () => {
  const server = serve((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/stream") {
      return new Response(
        new ReadableStream({
          async start(c) {
            c.enqueue(enc.encode("one\n"));
            await new Promise((r) => setTimeout(r, 20));
            c.enqueue(enc.encode("two\n"));
            c.close();
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    if (path === "/sized") {
      const parts = ["abc", "def"].map((t) => enc.encode(t));
      return new Response(new ReadableStream({ pull: (c) => parts.length ? c.enqueue(parts.shift()!) : c.close() }), {
        headers: { "content-length": "6" },
      });
    }
    return new Response(`you asked ${req.method} ${path}\n`);
  });
  const conn = await connect(server.addr.port);
  try {
    // Two requests in one write (pipelined), then a stream, then HEAD.
    await conn.write(enc.encode("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
    const two = await readUntil(conn, /GET \/b\n/);
    assert.match(two, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(two, /content-length: 17\r\n\r\nyou asked GET \/a\n/);
    assert.ok(two.indexOf("/a") < two.indexOf("/b"), "answered in order");
    await conn.write(enc.encode("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"));
    const stream = await readUntil(conn, /0\r\n\r\n$/);
    assert.match(stream, /transfer-encoding: chunked\r\n/);
    assert.match(stream, /4\r\none\n\r\n4\r\ntwo\n\r\n0\r\n\r\n$/);
    await conn.write(enc.encode("GET /sized HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.match(await readUntil(conn, /abcdef$/), /content-length: 6\r\n\r\nabcdef$/);
    await conn.write(enc.encode("HEAD /c HTTP/1.1\r\nHost: x\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n"));
    const head = await readUntil(conn, /you asked GET \/d\n/);
    assert.ok(!head.includes("you asked HEAD"), "no body for HEAD");
    assert.equal(server.stats().requests, 6);
    assert.equal(server.stats().open, 1, "one connection served them all");
  } finally {
    conn.close();
    await server.shutdown();
  }
});

Deno.test("http server reads request bodies of any framing and answers Expect: 100-continue", async () => {
  const server = serve(async (req) => new Response(`got ${(await req.text()).length} bytes\n`));
  const conn = await connect(server.addr.port);
  try {
    await conn.write(enc.encode("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
    assert.match(await readUntil(conn, /got \d+ bytes/), /got 5 bytes/);
    await conn.write(
      enc.encode("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
    );
    assert.match(await readUntil(conn, /got \d+ bytes/), /got 5 bytes/);
    await conn.write(enc.encode("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
    assert.match(await readUntil(conn, /100 Continue\r\n\r\n/), /^HTTP\/1\.1 100 Continue/);
    await conn.write(enc.encode("xyz"));
    assert.match(await readUntil(conn, /got \d+ bytes/), /got 3 bytes/);
  } finally {
    conn.close();
    await server.shutdown();
  }
});

Deno.test("http server refuses malformed and ambiguous requests with 4xx and closes the connection", async () => {
  const server = serve(() => new Response("ok"));
  try {
    const cases: [string, RegExp][] = [
      ["NONSENSE\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", /^HTTP\/1\.1 501 /],
      ["GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 400 /],
      [`GET / HTTP/1.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
      // Only HTTP/1.0 and 1.1 are spoken: another version is refused, not answered as 1.1.
      [
        "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n[\s\S]*HTTP\/9\.9 is not supported/,
      ],
      ["GET / HTTP/2.0\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 505 /],
      ["GET / HTTP/1.2\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 505 /],
    ];
    for (const [request, expected] of cases) {
      const conn = await connect(server.addr.port);
      await conn.write(enc.encode(request));
      const { text, closed } = await readAll(conn);
      conn.close();
      assert.match(text, expected, JSON.stringify(request.slice(0, 60)));
      assert.match(text, /connection: close/);
      assert.ok(closed, `closed after ${JSON.stringify(request.slice(0, 40))}`);
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("http server closes a connection that sends no head, or too slow a head, after the header timeout", async () => {
  const server = serve(() => new Response("ok"), { headerTimeoutMs: 300 });
  try {
    const silent = await connect(server.addr.port);
    const slow = await connect(server.addr.port);
    await slow.write(enc.encode("GET / HTTP/1.1\r\n"));
    setTimeout(() => slow.write(enc.encode("Host: x\r\n")).catch(() => {}), 150);
    const [a, b] = await Promise.all([readAll(silent), readAll(slow)]);
    silent.close();
    slow.close();
    assert.ok(a.closed && b.closed, "both closed");
    assert.equal(a.text, "");
    assert.equal(server.stats().closed["header-timeout"], 2);
  } finally {
    await server.shutdown();
  }
});

Deno.test("http server closes an idle keep-alive connection, but not one whose answer is still coming", async () => {
  const server = serve(async (req) => {
    if (new URL(req.url).pathname === "/slow") await new Promise((r) => setTimeout(r, 700));
    return new Response("done\n");
  }, { idleTimeoutMs: 300 });
  try {
    const idle = await connect(server.addr.port);
    await idle.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const slow = await connect(server.addr.port);
    await slow.write(enc.encode("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    const [a, b] = await Promise.all([readAll(idle, 2000), readUntil(slow, /done\n/, 2000)]);
    assert.match(a.text, /done\n/);
    assert.ok(a.closed, "the idle one was closed");
    assert.match(b, /200 OK/, "the slow answer arrived, 700 ms after a 300 ms idle timeout");
    assert.equal(server.stats().closed["idle-timeout"], 1);
    idle.close();
    slow.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("http server closes a connection whose body stalls, after the body timeout", async () => {
  const server = serve(async (req) => new Response(await req.text()), { bodyTimeoutMs: 300 });
  try {
    const conn = await connect(server.addr.port);
    await conn.write(enc.encode("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
    const { closed } = await readAll(conn, 2000);
    conn.close();
    assert.ok(closed);
    assert.equal(server.stats().closed["body-timeout"], 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("http server at its cap closes the longest-idle connection for a new one; all busy, it answers 503", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const server = serve(async (req) => {
    if (new URL(req.url).pathname === "/hold") await gate;
    return new Response("ok\n");
  }, { maxConnections: 3 });
  const conns: Deno.TcpConn[] = [];
  try {
    // Three idle connections fill the cap; each newcomer evicts the oldest.
    for (let i = 0; i < 3; i++) conns.push(await connect(server.addr.port));
    await new Promise((r) => setTimeout(r, 50));
    const fresh = await connect(server.addr.port);
    conns.push(fresh);
    assert.ok((await readAll(conns[0]!, 1000)).closed, "the oldest idle connection was closed");
    await fresh.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.match(await readUntil(fresh, /ok\n/), /200 OK/, "the newcomer is served");
    // Now every connection is busy: a newcomer is refused with a 503.
    for (const c of conns.slice(1)) await c.write(enc.encode("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
    await new Promise((r) => setTimeout(r, 50));
    const refused = await connect(server.addr.port);
    conns.push(refused);
    const r = await readAll(refused, 1000);
    assert.match(r.text, /^HTTP\/1\.1 503 /);
    assert.ok(r.closed);
    release();
    const s = server.stats();
    assert.equal(s.closed.evicted, 1);
    assert.equal(s.closed.refused, 1);
  } finally {
    release();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await server.shutdown();
  }
});

Deno.test("http server cancels a response still streaming when its client goes away", async () => {
  let cancelled!: () => void;
  const wasCancelled = new Promise<void>((r) => cancelled = r);
  const server = serve(() =>
    // Never ends, like an event stream.
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(enc.encode("event\n"));
        },
        cancel: () => cancelled(),
      }),
      { headers: { "content-type": "text/event-stream" } },
    )
  );
  try {
    const conn = await connect(server.addr.port);
    await conn.write(enc.encode("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    await readUntil(conn, /event\n/);
    conn.close();
    await wasCancelled;
    await until(() => server.stats().open === 0);
  } finally {
    await server.shutdown();
  }
});

async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(pred());
}

Deno.test("http connection cap leaves 64 file descriptors to the rest of the daemon", () => {
  const rows: [number, number | undefined, number][] = [
    [256, undefined, 256],
    [256, 1024, 256],
    [256, 256, 192],
    [256, 100, 36],
    [256, 10, 1],
  ];
  for (const [wanted, limit, cap] of rows) assert.equal(connectionCap(wanted, limit), cap, `${wanted} ${limit}`);
  assert.equal(
    openFileLimit(() => "Max open files            1024                 4096                 files\n"),
    1024,
  );
  assert.equal(
    openFileLimit(() => "Max open files            unlimited            unlimited            files\n"),
    undefined,
  );
  assert.equal(
    openFileLimit(() => {
      throw new Error("no /proc");
    }),
    undefined,
  );
});

Deno.test("http server answers HTTP/1.0 and 1.1, and only those", async () => {
  const server = serve(() => new Response("ok"));
  try {
    for (const version of ["1.0", "1.1"]) {
      const conn = await connect(server.addr.port);
      await conn.write(enc.encode(`GET / HTTP/${version}\r\nHost: x\r\nConnection: close\r\n\r\n`));
      const { text } = await readAll(conn);
      conn.close();
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok$/, version);
    }
  } finally {
    await server.shutdown();
  }
});
