/**
 * Pictures between real daemons on loopback: a file of a transfer served by
 * what its first bytes say (an SVG or HTML file named .png, a polyglot and
 * text as bytes to save, never inline), hostile names in
 * Content-Disposition, a file changed, removed or replaced by a symbolic
 * link since it came refused with a 4xx, an index out of range, a huge
 * picture; and the auto-accept-images setting: kept across restarts, the
 * flag, never for a peer whose key is not verified or changed, and an
 * offer that would not fit left waiting rather than refused.
 */
import assert from "node:assert/strict";
import type { SettingsJson, TransferJson } from "../../src/api/types.ts";
import { type DaemonProcess, freeUdpPort, startLoopbackDaemon, tempDataDir, until } from "../support/daemon_process.ts";
import { cleanUp, made, sha } from "../support/transfer_files.ts";
import { fillUp, mountTmpfs, removeTmpfs, tmpfsUnavailable } from "../support/tmpfs.ts";
import { Buffer } from "node:buffer";
import { IpmsgSender } from "../support/ipmsg_sender.ts";
import { IPMSG_FILE } from "../../src/wire/ipmsg_files.ts";

/** A 1×1 PNG. */
const PNG = new Uint8Array(Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
));
const text = (s: string) => new TextEncoder().encode(s);

async function call<T>(
  d: DaemonProcess,
  path: string,
  init?: { method?: string; body?: unknown },
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${d.httpUrl}${path}`, {
    method: init?.method ?? (init?.body === undefined ? "GET" : "POST"),
    ...(init?.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  return { status: res.status, body: await res.json() };
}

async function waitState(d: DaemonProcess, id: string, state: string, ms = 15_000): Promise<TransferJson> {
  let t: TransferJson | undefined;
  await until(`transfer ${id} to be ${state}`, async () => {
    t = (await call<TransferJson>(d, `/transfers/${id}`).catch(() => undefined))?.body;
    return t?.state === state;
  }, ms).catch((e) => {
    throw new Error(`${e.message}; it is ${JSON.stringify(t)}; its log:\n${d.rawStderr.slice(-12).join("\n")}`);
  });
  return t!;
}

async function pair(o: { bExtra?: string[]; downloads?: string } = {}) {
  const port = freeUdpPort();
  const downloads = o.downloads ?? Deno.makeTempDirSync({ prefix: "lanchat-dl-" });
  const src = Deno.makeTempDirSync({ prefix: "lanchat-src-" });
  const aDir = tempDataDir();
  const bDir = tempDataDir();
  made.push(src, aDir, bDir, ...(o.downloads ? [] : [downloads]));
  const startB = (extra: string[] = []) =>
    startLoopbackDaemon(port, "bob", {
      dataDir: bDir,
      extra: ["--downloads", downloads, ...(o.bExtra ?? []), ...extra],
    }).started();
  const a = await startLoopbackDaemon(port, "alice", { dataDir: aDir }).started();
  const b = await startB();
  await a.joined(b.id, 5000);
  await b.joined(a.id, 5000);
  return { a, b, downloads, src, port, startB };
}

/** Offers `files` (name → bytes, written in a fresh folder under src) from a to b; the outgoing transfer. */
async function offer(a: DaemonProcess, src: string, files: Record<string, Uint8Array>): Promise<TransferJson> {
  const dir = await Deno.makeTempDir({ dir: src });
  for (const [name, bytes] of Object.entries(files)) await Deno.writeFile(`${dir}/${name}`, bytes);
  const r = await call<TransferJson>(a, "/files", {
    body: { to: "bob", paths: Object.keys(files).map((n) => `${dir}/${n}`) },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body;
}

/** Offers from a, accepts on b, waits until done; b's transfer. */
async function sendAndReceive(a: DaemonProcess, b: DaemonProcess, src: string, files: Record<string, Uint8Array>) {
  const out = await offer(a, src, files);
  await waitState(b, out.id, "offered");
  assert.equal((await call(b, `/transfers/${out.id}/accept`, { body: {} })).status, 200);
  return { out, inc: await waitState(b, out.id, "done") };
}

async function get(d: DaemonProcess, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${d.httpUrl}${path}`, { headers });
  const body = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, text: new TextDecoder().decode(body) };
}

Deno.test("a file is served by what its first bytes say: a PNG inline, an SVG or HTML named .png, a polyglot and text as bytes to save", async () => {
  try {
    const { a, b, src } = await pair();
    const files = {
      "real.png": PNG,
      "svg.png": text('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'),
      "page.png": text("<!doctype html><html><body><script>alert(3)</script></body></html>"),
      "gifar.gif": text("GIF89a/*<html><script>alert(4)</script></html>*/"),
      "note.txt": text("hello"),
      "riff.webp": text("RIFF\u0000\u0000\u0000\u0000WAVEfmt "),
      "empty.jpg": new Uint8Array(),
    };
    const { out, inc } = await sendAndReceive(a, b, src, files);
    // Both sides list the same pictures (the polyglot is a real GIF head: it is served as a GIF, which no browser runs).
    const listed = (t: TransferJson) => t.images?.map((i) => `${i.n} ${i.name} ${i.type} ${i.size}`);
    const want = [`0 real.png image/png ${PNG.length}`, `3 gifar.gif image/gif ${files["gifar.gif"].length}`];
    assert.deepEqual(listed(out), want);
    assert.deepEqual(listed(inc), want);
    assert.equal(inc.images![0]!.url, `/transfers/${out.id}/files/0`);
    assert.deepEqual([inc.images![0]!.width, inc.images![0]!.height, out.images![0]!.width], [1, 1, 1]);

    for (const d of [a, b]) {
      const png = await get(d, `/transfers/${out.id}/files/0`);
      assert.equal(png.status, 200);
      assert.equal(sha(png.body), sha(PNG));
      assert.equal(png.headers.get("content-type"), "image/png");
      assert.equal(png.headers.get("content-disposition"), "inline; filename*=UTF-8''real.png");
      assert.equal(png.headers.get("x-content-type-options"), "nosniff");
      assert.equal(png.headers.get("content-security-policy"), "default-src 'none'; sandbox");
      for (const n of [1, 2, 4, 5, 6]) {
        const r = await get(d, `/transfers/${out.id}/files/${n}`);
        assert.equal(r.status, 200, `${n}: ${r.text}`);
        assert.equal(r.headers.get("content-type"), "application/octet-stream", `file ${n}`);
        assert.match(r.headers.get("content-disposition")!, /^attachment; filename\*=UTF-8''/);
        assert.equal(r.headers.get("x-content-type-options"), "nosniff");
        assert.equal(r.headers.get("content-security-policy"), "default-src 'none'; sandbox");
      }
      const gif = await get(d, `/transfers/${out.id}/files/3`);
      assert.equal(gif.headers.get("content-type"), "image/gif");
      // Seen again: not sent again.
      const again = await get(d, `/transfers/${out.id}/files/0`, { "if-none-match": png.headers.get("etag")! });
      assert.equal(again.status, 304);
      const head = await fetch(`${d.httpUrl}/transfers/${out.id}/files/0`, { method: "HEAD" });
      await head.body?.cancel();
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-type"), "image/png");
    }
  } finally {
    await cleanUp();
  }
});

Deno.test("a hostile name reaches Content-Disposition percent-encoded: no CR, LF, quote or bidi override gets through", async () => {
  try {
    const { a, b, src } = await pair();
    const name = 'a"b\r\nSet-Cookie: x=1;\u202Egnp.exe\u0007 é.png';
    const { out, inc } = await sendAndReceive(a, b, src, { [name]: PNG });
    for (const d of [a, b]) {
      const r = await get(d, `/transfers/${out.id}/files/0`);
      assert.equal(r.status, 200);
      const cd = r.headers.get("content-disposition")!;
      assert.match(cd, /^inline; filename\*=UTF-8''[A-Za-z0-9!#$&+\-.^_`|~%]+$/, cd);
      assert.equal(r.headers.get("set-cookie"), null);
      const back = decodeURIComponent(cd.slice(cd.indexOf("''") + 2));
      assert.ok(![...'\r\n"\u202E\u0007'].some((c) => back.includes(c)), back);
      assert.ok(back.endsWith(" é.png"), back);
    }
    assert.doesNotMatch(inc.images![0]!.name, /[\r\n\u202E]/);
  } finally {
    await cleanUp();
  }
});

Deno.test("a file changed, removed or replaced by a link since it came, an index out of range and a bad id are each a clear 4xx", async () => {
  try {
    const { a, b, src, downloads } = await pair();
    const { out, inc } = await sendAndReceive(a, b, src, {
      "one.png": PNG,
      "two.png": PNG.map((x, i) => i === 40 ? x ^ 1 : x),
      "three.png": PNG,
      "four.png": PNG,
    });
    assert.equal(inc.images?.length, 4);
    const status = async (d: DaemonProcess, path: string) => {
      const r = await get(d, path);
      return `${r.status} ${r.status === 200 ? "" : JSON.parse(r.text).error}`;
    };
    const base = `/transfers/${out.id}/files`;
    assert.match(
      await status(b, `${base}/4`),
      /^404 Transfer [0-9a-f]{8} has 4 files: 4 is not the index of one \(0 to 3\)/,
    );
    assert.match(await status(b, `${base}/99999999999`), /^400 /);
    assert.match(await status(b, `${base}/-1`), /^400 /);
    assert.match(await status(b, `${base}/1e2`), /^400 /);
    assert.match(await status(b, `${base}/..%2F..%2Fetc%2Fpasswd`), /^400 /);
    assert.match(await status(b, `/transfers/ffffffffffff/files/0`), /^404 /);
    assert.match(await status(b, `/transfers/zz/files/0`), /^400 /);

    // Served (and its SHA-256 remembered), then changed with its size kept: its SHA-256 tells.
    assert.match(await status(b, `${base}/0`), /^200/);
    const bytes = await Deno.readFile(`${downloads}/one.png`);
    bytes[20]! ^= 0xff;
    await Deno.writeFile(`${downloads}/one.png`, bytes);
    assert.match(
      await status(b, `${base}/0`),
      /^409 File 0 of transfer [0-9a-f]{8} changed since it was received \(its SHA-256 differs\)/,
    );
    // Grown.
    await Deno.writeFile(`${downloads}/two.png`, new Uint8Array(10), { append: true });
    assert.match(await status(b, `${base}/1`), /^409 .*changed since it was received \(\d+ bytes, not \d+\)/);
    // Replaced by a link to another file (a secret of the owner's, say).
    await Deno.writeTextFile(`${src}/secret`, "private key");
    await Deno.remove(`${downloads}/three.png`);
    await Deno.symlink(`${src}/secret`, `${downloads}/three.png`);
    assert.match(await status(b, `${base}/2`), /^403 File 2 .* a symbolic link now stands in its path/);
    // Removed.
    await Deno.remove(`${downloads}/four.png`);
    assert.match(await status(b, `${base}/3`), /^410 File 3 .* was removed or moved since/);
    // The sender's side: its source changed since it was offered.
    const srcDir = (await Array.fromAsync(Deno.readDir(src))).find((e) => e.isDirectory)!.name;
    await Deno.writeFile(`${src}/${srcDir}/one.png`, PNG.map((x, i) => i === 30 ? x ^ 1 : x));
    assert.match(await status(a, `${base}/0`), /^409 .*changed since it was offered/);
    assert.match(await status(a, `${base}/2`), /^200/);

    // Not received yet: an offer waiting.
    const waiting = await offer(a, src, { "later.png": PNG });
    await waitState(b, waiting.id, "offered");
    assert.match(await status(b, `/transfers/${waiting.id}/files/0`), /^409 File 0 .* is not received yet/);
    // The daemons are still there.
    assert.equal((await call(b, "/status")).status, 200);
    assert.equal((await call(a, "/status")).status, 200);
  } finally {
    await cleanUp();
  }
});

Deno.test("a folder of the download replaced by a link out of it is not followed", async () => {
  try {
    const { a, b, src, downloads } = await pair();
    const dir = await Deno.makeTempDir({ dir: src });
    await Deno.mkdir(`${dir}/album`);
    await Deno.writeFile(`${dir}/album/p.png`, PNG);
    const out = (await call<TransferJson>(a, "/files", { body: { to: "bob", paths: [`${dir}/album`] } })).body;
    await waitState(b, out.id, "offered");
    await call(b, `/transfers/${out.id}/accept`, { body: {} });
    await waitState(b, out.id, "done");
    assert.equal((await get(b, `/transfers/${out.id}/files/0`)).status, 200);
    // Elsewhere, the same picture: the bytes would pass every check but the path's.
    const elsewhere = await Deno.makeTempDir({ dir: src });
    await Deno.writeFile(`${elsewhere}/p.png`, PNG);
    await Deno.rename(`${downloads}/album`, `${downloads}/album-moved`);
    await Deno.symlink(elsewhere, `${downloads}/album`);
    const r = await get(b, `/transfers/${out.id}/files/0`);
    assert.equal(r.status, 403, r.text);
  } finally {
    await cleanUp();
  }
});

Deno.test("a huge picture is streamed with its length, checked by size and mtime, and never auto-accepted", async () => {
  try {
    const { a, b, src } = await pair();
    await call(b, "/trust", { body: { peer: a.id } });
    await call(b, "/settings", { method: "PUT", body: { autoAcceptImages: { enabled: true } } });
    const dir = await Deno.makeTempDir({ dir: src });
    const path = `${dir}/huge.png`;
    {
      using f = await Deno.open(path, { write: true, create: true });
      await f.write(PNG.subarray(0, 16));
      await f.truncate(80 * 1024 * 1024);
    }
    const out = (await call<TransferJson>(a, "/files", { body: { to: "bob", paths: [path] } })).body;
    assert.equal(out.images?.[0]?.type, "image/png");
    const res = await fetch(`${a.httpUrl}/transfers/${out.id}/files/0`);
    assert.equal(res.headers.get("content-length"), String(80 * 1024 * 1024));
    let got = 0;
    for await (const chunk of res.body!) got += chunk.length;
    assert.equal(got, 80 * 1024 * 1024);
    // Over the setting's 10 MiB: it waits for a person.
    await waitState(b, out.id, "offered");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await call<TransferJson>(b, `/transfers/${out.id}`)).body.state, "offered");
    // Touched (its mtime moved): no longer the file offered.
    await Deno.utime(path, new Date(), new Date(Date.now() - 86_400_000));
    assert.equal((await get(a, `/transfers/${out.id}/files/0`)).status, 409);
  } finally {
    await cleanUp();
  }
});

Deno.test("auto-accept pictures: off by default, kept across restarts, only from a verified key, only pictures, only up to maxBytes", async () => {
  try {
    const { a, b, src, port, startB } = await pair();
    const s = await call<SettingsJson>(b, "/settings");
    assert.deepEqual(s.body, { autoAcceptImages: { enabled: false, maxBytes: 10 * 1024 * 1024 } });
    for (
      const bad of [
        { autoAcceptImages: { enabled: "yes" } },
        { autoAcceptImages: { enabled: true, maxBytes: 0 } },
        { autoAcceptImages: { enabled: true, maxBytes: 65 * 1024 * 1024 } },
        { autoAcceptImages: { enabled: true, maxBytes: 1.5 } },
        { autoAcceptImages: { enabled: true, sizes: 1 } },
        { autoAcceptImages: [] },
        { somethingElse: 1 },
      ]
    ) {
      const r = await call<{ error: string }>(b, "/settings", { method: "PUT", body: bad });
      assert.equal(r.status, 400, JSON.stringify(bad));
    }
    const on = await call<SettingsJson>(b, "/settings", {
      method: "PUT",
      body: { autoAcceptImages: { enabled: true, maxBytes: 1000 } },
    });
    assert.deepEqual(on.body, { autoAcceptImages: { enabled: true, maxBytes: 1000 } });

    // alice's key is pinned on first use, not verified: her picture waits.
    const unverified = await offer(a, src, { "cat.png": PNG });
    await waitState(b, unverified.id, "offered");

    assert.equal((await call(b, "/trust", { body: { peer: a.id } })).status, 200);
    const verified = await offer(a, src, { "cat.png": PNG, "dog.JPG": PNG });
    await waitState(b, verified.id, "done");
    // A picture with something else, a folder, and more than maxBytes: each waits.
    const mixed = await offer(a, src, { "cat.png": PNG, "notes.txt": text("x") });
    const big = await offer(a, src, { "big.png": new Uint8Array(1001).fill(1) });
    const folderDir = await Deno.makeTempDir({ dir: src });
    await Deno.mkdir(`${folderDir}/pics.png`);
    await Deno.writeFile(`${folderDir}/pics.png/a.png`, PNG);
    const folder = (await call<TransferJson>(a, "/files", { body: { to: "bob", paths: [`${folderDir}/pics.png`] } }))
      .body;
    for (const t of [mixed, big, folder]) await waitState(b, t.id, "offered");

    // Kept across a restart; the flag replaces it at start.
    await b.kill();
    let b2 = await startB();
    assert.deepEqual((await call<SettingsJson>(b2, "/settings")).body.autoAcceptImages, {
      enabled: true,
      maxBytes: 1000,
    });
    await b2.kill();
    b2 = await startB(["--auto-accept-images", "off"]);
    assert.equal((await call<SettingsJson>(b2, "/settings")).body.autoAcceptImages.enabled, false);
    await b2.kill();
    b2 = await startB(["--auto-accept-images", "2M"]);
    assert.deepEqual((await call<SettingsJson>(b2, "/settings")).body.autoAcceptImages, {
      enabled: true,
      maxBytes: 2 * 1024 * 1024,
    });
    await b2.joined(a.id, 5000);

    // Another node under alice's name (a new key): pinned as a conflict at bob, its picture waits.
    const impostor = await startLoopbackDaemon(port, "alice", { dataDir: tempDataDir() }).started();
    await impostor.joined(b2.id, 5000);
    await b2.joined(impostor.id, 5000);
    await until("bob to pin the impostor as a conflict", async () => {
      const peers = (await call<{ id: string; trust?: string }[]>(b2, "/peers")).body;
      return peers.find((p) => p.id === impostor.id)?.trust === "conflict";
    }, 5000);
    const dir = await Deno.makeTempDir({ dir: src });
    await Deno.writeFile(`${dir}/trust-me.png`, PNG);
    const forged =
      (await call<TransferJson>(impostor, "/files", { body: { to: b2.id, paths: [`${dir}/trust-me.png`] } }))
        .body;
    await waitState(b2, forged.id, "offered");
    // While the real alice's still comes in.
    const real = await offer(a, src, { "real.png": PNG });
    await waitState(b2, real.id, "done");
    assert.equal((await call<TransferJson>(b2, `/transfers/${forged.id}`)).body.state, "offered");
  } finally {
    await cleanUp();
  }
});

Deno.test({
  name:
    "a picture auto-accepted onto a full disk waits to be accepted (nothing refused, nothing lost), and comes once there is room",
  ignore: tmpfsUnavailable !== undefined,
  async fn() {
    const downloads = Deno.makeTempDirSync({ prefix: "lanchat-full-" });
    try {
      await mountTmpfs(downloads, "4m");
      const { a, b, src } = await pair({ downloads, bExtra: ["--keep-free", "64k"] });
      await call(b, "/trust", { body: { peer: a.id } });
      await call(b, "/settings", { method: "PUT", body: { autoAcceptImages: { enabled: true } } });
      await fillUp(`${downloads}/filler`);
      const out = await offer(a, src, { "cat.png": PNG });
      await waitState(b, out.id, "offered");
      await b.waitFor((l) => /Pictures from .* wait to be accepted/.test(l.message), 5000, "the warning");
      assert.equal((await call<TransferJson>(a, `/transfers/${out.id}`)).body.state, "offered");
      await Deno.remove(`${downloads}/filler`);
      assert.equal((await call(b, `/transfers/${out.id}/accept`, { body: {} })).status, 200);
      const done = await waitState(b, out.id, "done");
      assert.equal(done.images?.[0]?.name, "cat.png");
    } finally {
      await cleanUp();
      await removeTmpfs(downloads);
    }
  },
});

Deno.test("a picture sent from the page stays readable on the sender's side once delivered; any other upload goes", async () => {
  try {
    const { a, b } = await pair();
    const upload = async (name: string, bytes: Uint8Array<ArrayBuffer>) => {
      const res = await fetch(`${a.httpUrl}/files/upload?to=bob&name=${encodeURIComponent(name)}`, {
        method: "POST",
        body: bytes as Uint8Array<ArrayBuffer>,
        headers: { "content-length": String(bytes.length) },
      });
      assert.equal(res.status, 202);
      return (await res.json()) as TransferJson;
    };
    const pic = await upload("pasted.png", PNG);
    const doc = await upload("notes.txt", text("plain"));
    assert.equal(pic.images?.[0]?.url, `/transfers/${pic.id}/files/0`);
    assert.equal(doc.images, undefined);
    for (const t of [pic, doc]) {
      await waitState(b, t.id, "offered");
      await call(b, `/transfers/${t.id}/accept`, { body: {} });
      await waitState(a, t.id, "done");
    }
    const shown = await get(a, `/transfers/${pic.id}/files/0`);
    assert.equal(shown.status, 200);
    assert.equal(sha(shown.body), sha(PNG));
    assert.equal((await call<TransferJson>(a, `/transfers/${pic.id}`)).body.images?.length, 1);
    await until(
      "the text upload to be removed",
      async () => (await get(a, `/transfers/${doc.id}/files/0`)).status === 410,
      5000,
    );
  } finally {
    await cleanUp();
  }
});

/** main before any end-to-end code: a previous version, whose messages come in the clear. */
const PREVIOUS = "07dbdb9";

Deno.test("auto-accept pictures: an offer in the clear from a verified previous-version peer waits (a clear message could be anyone's)", async () => {
  const old = Deno.makeTempDirSync({ prefix: "lanchat-previous-" });
  made.push(old);
  try {
    const repo = new URL("../..", import.meta.url).pathname;
    const archive = new Deno.Command("sh", {
      args: ["-c", `git -C '${repo}' archive ${PREVIOUS} | tar -x -C '${old}'`],
      stderr: "piped",
    });
    const out = await archive.output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const port = freeUdpPort();
    const downloads = Deno.makeTempDirSync({ prefix: "lanchat-dl-" });
    const src = Deno.makeTempDirSync({ prefix: "lanchat-src-" });
    made.push(downloads, src);
    const a = await startLoopbackDaemon(port, "alice", { repo: old }).started(30_000);
    const b = await startLoopbackDaemon(port, "bob", { extra: ["--downloads", downloads] }).started();
    await a.joined(b.id, 10_000);
    await b.joined(a.id, 10_000);
    assert.equal((await call(b, "/trust", { body: { peer: a.id } })).status, 200);
    await call(b, "/settings", { method: "PUT", body: { autoAcceptImages: { enabled: true } } });
    const t = await offer(a, src, { "cat.png": PNG });
    await waitState(b, t.id, "offered");
    const notes = (await call<{ files?: unknown; encrypted?: boolean }[]>(b, `/messages?peer=${a.id}`)).body
      .filter((m) => m.files);
    assert.equal(notes.at(-1)?.encrypted, false, "the offer came in the clear");
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await call<TransferJson>(b, `/transfers/${t.id}`)).body.state, "offered");
  } finally {
    await cleanUp();
  }
});

Deno.test("pictures from an IP Messenger user are listed and served by their first bytes, checked by the SHA-256 taken when they came", async () => {
  const port = freeUdpPort();
  const ipmsgPort = freeUdpPort();
  const downloads = Deno.makeTempDirSync({ prefix: "lanchat-dl-" });
  made.push(downloads);
  const tux = IpmsgSender.open();
  try {
    const b = await startLoopbackDaemon(port, "bob", {
      extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort), "--downloads", downloads, "--accept-files", "always"],
    }).started();
    await tux.enter(ipmsgPort);
    const svg = text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    const content: Record<number, Uint8Array> = { 0: PNG, 1: svg };
    tux.answer = (req) => req.mode === "file" ? content[req.fileId]!.subarray(req.offset) : null;
    await until(
      "Tux listed",
      async () => (await call<{ name: string }[]>(b, "/peers")).body.some((p) => p.name === "Tux"),
      10_000,
    );
    await tux.offer(ipmsgPort, "two", [
      { id: 0, name: "shot.png", size: PNG.length, mtime: 1_700_000_000, kind: IPMSG_FILE.REGULAR },
      { id: 1, name: "svg.png", size: svg.length, mtime: 1_700_000_000, kind: IPMSG_FILE.REGULAR },
    ]);
    let t: TransferJson | undefined;
    await until("the offer listed", async () => {
      t = (await call<TransferJson[]>(b, "/transfers")).body.find((x) => x.direction === "in");
      return t !== undefined;
    }, 10_000);
    const done = await waitState(b, t!.id, "done");
    assert.deepEqual(done.images?.map((i) => `${i.n} ${i.name} ${i.type}`), ["0 shot.png image/png"]);
    const png = await get(b, done.images![0]!.url);
    assert.equal(png.status, 200);
    assert.equal(png.headers.get("content-type"), "image/png");
    assert.equal(sha(png.body), sha(PNG));
    const other = await get(b, `/transfers/${done.id}/files/1`);
    assert.equal(other.headers.get("content-type"), "application/octet-stream");
    assert.match(other.headers.get("content-disposition")!, /^attachment;/);
    assert.equal((await get(b, `/transfers/${done.id}/files/2`)).status, 404);
    const bytes = await Deno.readFile(`${downloads}/shot.png`);
    bytes[30]! ^= 1;
    await Deno.writeFile(`${downloads}/shot.png`, bytes);
    assert.equal((await get(b, done.images![0]!.url)).status, 409);
  } finally {
    tux.close();
    await cleanUp();
  }
});

Deno.test("auto-accept pictures: a file named as a picture whose first bytes are not one is removed and the transfer fails; accepted by a person, it comes", async () => {
  try {
    const { a, b, src, downloads } = await pair();
    await call(b, "/trust", { body: { peer: a.id } });
    await call(b, "/settings", { method: "PUT", body: { autoAcceptImages: { enabled: true } } });
    const script = text("#!/bin/sh\necho pwned\n");
    const out = await offer(a, src, { "cat.png": PNG, "fake.png": script });
    const t = await waitState(b, out.id, "failed");
    assert.match(t.error ?? "", /sent files other than pictures.*"fake\.png" is not a PNG, JPEG, GIF or WebP/);
    // The real picture that came first stays; the other is gone, .part and all.
    assert.deepEqual([...Deno.readDirSync(downloads)].map((e) => e.name), ["cat.png"]);
    // The sender hears why.
    const sent = await waitState(a, out.id, "refused");
    assert.match(sent.error ?? "", /not a PNG/);

    // The same file, offered when the setting is off, waits; a person who accepts it gets it as it is.
    await call(b, "/settings", { method: "PUT", body: { autoAcceptImages: { enabled: false } } });
    const asked = await offer(a, src, { "fake.png": script });
    await waitState(b, asked.id, "offered");
    assert.equal((await call(b, `/transfers/${asked.id}/accept`, { body: {} })).status, 200);
    const done = await waitState(b, asked.id, "done");
    assert.equal(done.images, undefined);
    assert.deepEqual(await Deno.readFile(`${downloads}/fake.png`), script);
  } finally {
    await cleanUp();
  }
});
