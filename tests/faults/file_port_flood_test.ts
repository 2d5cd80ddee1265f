/**
 * The file port under hostile sources (127.0.0.9 to .13, not peers): a flood of
 * idle, junk, oversized, half-sent and reset connections cannot keep a
 * known peer's fetch out (pre-auth deadline, per-source cap, slots kept for
 * known peers), each refusal is counted by kind in /status and /metrics,
 * and a peer that vanishes mid-handshake frees its slot.
 */
import assert from "node:assert/strict";
import net from "node:net";
import type { TransferJson } from "../../src/api/types.ts";
import { type DaemonProcess, freeUdpPort, startLoopbackDaemon, tempDataDir, until } from "../support/daemon_process.ts";
import { startServingDaemon } from "../support/file_port.ts";
import { cleanUp, made } from "../support/transfer_files.ts";

const HOSTILE = "127.0.0.9";
/** Strangers enough to want more slots together (5 × 8) than strangers may have (32 less the 8 kept for peers). */
const HOSTILES = ["127.0.0.9", "127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"];
type Behaviour = "idle" | "junk" | "oversized" | "half" | "reset";
const BEHAVIOURS: Behaviour[] = ["idle", "junk", "oversized", "half", "reset"];

/** Connects from `local`; resolves with the socket once connected (rejects on error). */
function connectFrom(local: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: local });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** What the server did first with a new connection: sent its hello ("hello"), or closed it ("closed"). */
function firstAnswer(s: net.Socket, ms = 5000): Promise<"hello" | "closed" | "silent"> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("silent"), ms);
    s.once("data", () => {
      clearTimeout(timer);
      resolve("hello");
    });
    s.once("close", () => {
      clearTimeout(timer);
      resolve("closed");
    });
    s.on("error", () => {});
  });
}

/** Resolves when the server has closed `s` (or after `ms`: false). */
function closedWithin(s: net.Socket, ms: number): Promise<boolean> {
  if (s.destroyed || s.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    s.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
    s.resume();
  });
}

/** One hostile connection behaving as `how`; resolves when it is over (the server closed it, or it reset). */
async function hostile(port: number, how: Behaviour, from: string): Promise<void> {
  let s: net.Socket;
  try {
    s = await connectFrom(from, port);
  } catch {
    return;
  }
  s.on("error", () => {});
  const over = new Promise<void>((r) => s.once("close", () => r()));
  s.resume();
  // Junk: a frame of the right length that holds no handshake.
  if (how === "junk") s.write(new Uint8Array([0, 0, 0, 20, 2, ...crypto.getRandomValues(new Uint8Array(19))]));
  if (how === "oversized") s.write(new Uint8Array([0x7f, 0xff, 0xff, 0xff, 2]));
  if (how === "half" || how === "reset") s.write(new Uint8Array([0, 0, 0, 200, 2, 0x7b, 0x22]));
  if (how === "reset") {
    await new Promise((r) => setTimeout(r, 20));
    s.resetAndDestroy();
  }
  // Held open (idle, half a frame and silent) until the server cuts it; never longer than 15 s.
  const cap = setTimeout(() => s.destroy(), 15_000);
  await over;
  clearTimeout(cap);
}

async function api<T>(d: DaemonProcess, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(
    `${d.httpUrl}${path}`,
    body === undefined ? {} : { method: "POST", body: JSON.stringify(body) },
  );
  return { status: res.status, body: await res.json() };
}

interface Refused {
  full: number;
  perSource: number;
  timeout: number;
  junk: number;
  oversized: number;
  vanished: number;
}
const refused = async (d: DaemonProcess) =>
  (await api<{ files: { connectionsRefused: Refused } }>(d, "/status")).body.files.connectionsRefused;

async function pair() {
  const port = freeUdpPort();
  const downloads = Deno.makeTempDirSync({ prefix: "lanchat-dl-" });
  const aDir = tempDataDir();
  const bDir = tempDataDir();
  made.push(downloads, aDir, bDir);
  const a = await startServingDaemon(port, "alice", { dataDir: aDir });
  const b = await startLoopbackDaemon(port, "bob", {
    dataDir: bDir,
    extra: ["--downloads", downloads, "--accept-files", "always"],
  })
    .started();
  await a.joined(b.id, 5000);
  await b.joined(a.id, 5000);
  return { a, b, downloads };
}

Deno.test("1,000 hostile connections on the file port: a peer's transfer still goes through, and each refusal is counted", async () => {
  const src = Deno.makeTempDirSync({ prefix: "lanchat-src-" });
  made.push(src);
  try {
    const { a, b, downloads } = await pair();
    const port = a.unicastPort;
    // The flood: 64 connections at a time from the hostile source, each replaced as soon as it ends, until
    // 1,000 have been made and the transfer is done (bounded: 40 s at most).
    let opened = 0;
    let done = false;
    const started = Date.now();
    const worker = async () => {
      while ((opened < 1000 || !done) && Date.now() - started < 40_000) {
        const n = opened++;
        await hostile(port, BEHAVIOURS[n % BEHAVIOURS.length]!, HOSTILES[n % HOSTILES.length]!);
      }
    };
    const flood = Promise.all(Array.from({ length: 64 }, worker));
    await until("the flood to be under way", () => Promise.resolve(opened >= 300), 20_000);
    await Deno.writeTextFile(`${src}/during.txt`, "through the flood");
    const offered = (await api<TransferJson>(a, "/files", { to: "bob", paths: [`${src}/during.txt`] })).body;
    try {
      // Without the fix the flood holds every slot: the fetch waits behind it for as long as it lasts.
      await until("the transfer to finish during the flood", async () => {
        const t = (await api<TransferJson>(b, `/transfers/${offered.id}`)).body;
        return t.state === "done";
      }, 20_000);
      assert.ok(Date.now() - started < 40_000, "the flood was still on");
    } finally {
      done = true;
      await flood;
    }
    assert.ok(opened >= 1000, `${opened} hostile connections made`);
    assert.equal(await Deno.readTextFile(`${downloads}/during.txt`), "through the flood");
    const r = await refused(a);
    console.log(`${opened} hostile connections; refused or cut, by reason: ${JSON.stringify(r)}`);
    for (const kind of ["full", "perSource", "timeout", "junk", "oversized", "vanished"] as const) {
      assert.ok(r[kind] > 0, `${kind} counted: ${JSON.stringify(r)}`);
    }
    const metrics = await (await fetch(`${a.httpUrl}/metrics`)).text();
    const perSource = /^lanchat_file_connections_refused_total\{reason="perSource"\} (\d+)$/m.exec(metrics);
    assert.ok(perSource && Number(perSource[1]) > 0, "the refusals are in /metrics");
    assert.equal((await fetch(`${a.httpUrl}/healthz`).then((res) => res.text())).trim(), "ok");
  } finally {
    await cleanUp();
  }
});

Deno.test("a stranger that vanishes mid-handshake (half a frame, then silence or a reset) is counted and frees its slot", async () => {
  try {
    const { a } = await pair();
    const port = a.unicastPort;
    // Half a frame, then silence: as many as one source may hold, then one more, refused at once.
    const silent: net.Socket[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await connectFrom(HOSTILE, port);
      assert.equal(await firstAnswer(s), "hello", `connection ${i} is served`);
      s.write(new Uint8Array([0, 0, 0, 200, 2, 0x7b]));
      silent.push(s);
    }
    const extra = await connectFrom(HOSTILE, port);
    assert.equal(await firstAnswer(extra), "closed", "one more from the same source is refused");
    extra.destroy();
    // The silent ones are cut at the handshake deadline (a few seconds, bounded here by 10 s each).
    for (const s of silent) assert.ok(await closedWithin(s, 10_000), "a silent connection is cut");
    // Half a frame, then a reset.
    for (let i = 0; i < 5; i++) {
      const s = await connectFrom(HOSTILE, port);
      assert.equal(await firstAnswer(s), "hello");
      s.write(new Uint8Array([0, 0, 0, 200, 2, 0x7b]));
      await new Promise((r) => setTimeout(r, 50));
      s.resetAndDestroy();
    }
    await until("the resets to be counted", async () => (await refused(a)).vanished >= 5, 10_000);
    const r = await refused(a);
    assert.ok(r.timeout >= 8, JSON.stringify(r));
    assert.ok(r.perSource >= 1, JSON.stringify(r));
    // Every slot is free again: the source may hold as many as before.
    const again: net.Socket[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await connectFrom(HOSTILE, port);
      assert.equal(await firstAnswer(s), "hello", `connection ${i} is served again`);
      again.push(s);
    }
    for (const s of again) s.destroy();
    assert.equal((await fetch(`${a.httpUrl}/healthz`).then((res) => res.text())).trim(), "ok");
  } finally {
    await cleanUp();
  }
});
