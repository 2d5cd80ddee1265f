/**
 * Messaging between real daemons on loopback: round trip, and nothing lost
 * or doubled when either side is killed (kill -9) and restarted.
 */
import assert from "node:assert/strict";
import type { MessageJson } from "../../src/api/types.ts";
import {
  type DaemonProcess,
  freeUdpPort,
  killAll,
  runCli,
  startLoopbackDaemon,
  tempDataDir,
  until,
} from "../support/daemon_process.ts";

async function post(d: DaemonProcess, path: string, body: unknown): Promise<{ status: number; body: MessageJson }> {
  const res = await fetch(`${d.httpUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function inbox(d: DaemonProcess): Promise<MessageJson[]> {
  const all: MessageJson[] = await (await fetch(`${d.httpUrl}/messages?limit=10000`)).json();
  return all.filter((m) => m.direction === "in");
}

async function outbox(d: DaemonProcess): Promise<number> {
  return (await (await fetch(`${d.httpUrl}/status`)).json()).messaging.outbox;
}

Deno.test("a message goes from one daemon to another and is acknowledged", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 2000);
    const r = await post(a, "/messages?wait=5", { to: "bob", text: "lunch? 🍜" });
    assert.equal(r.status, 200);
    assert.equal(r.body.status, "delivered");
    assert.ok(typeof r.body.rttMs === "number" && r.body.rttMs >= 0);
    const got = await inbox(b);
    assert.deepEqual(got.map((m) => [m.text, m.peer.name, m.seq]), [["lunch? 🍜", "alice", 1]]);
  } finally {
    await killAll();
  }
});

Deno.test("the receiver killed (kill -9) mid-stream of 200 messages and restarted gets all 200 exactly once, in order", async () => {
  const port = freeUdpPort();
  const bDir = tempDataDir();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    let b = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
    await a.joined(b.id, 2000);
    const texts = Array.from(
      { length: 200 },
      (_, i) => `message ${i + 1}` + (i % 25 === 0 ? " " + "x".repeat(5000) : ""),
    );
    for (const [i, text] of texts.entries()) {
      if (i === 100) await b.kill();
      const r = await post(a, "/messages", { to: b.id, text });
      assert.equal(r.status, 202, `message ${i + 1} accepted`);
    }
    b = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
    await until("the outbox to drain", async () => (await outbox(a)) === 0, 30_000);
    const got = await inbox(b);
    assert.equal(got.length, 200);
    assert.deepEqual(got.map((m) => m.text), texts);
    assert.deepEqual(got.map((m) => m.seq), texts.map((_, i) => i + 1));
    assert.ok(got.every((m) => !m.gapBefore && !m.late));
  } finally {
    await killAll();
  }
});

Deno.test("the sender killed (kill -9) with a queued outbox delivers it after it restarts", async () => {
  const port = freeUdpPort();
  const aDir = tempDataDir();
  const bDir = tempDataDir();
  try {
    let a = await startLoopbackDaemon(port, "alice", { dataDir: aDir }).started();
    let b = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
    await a.joined(b.id, 2000);
    b.signal("SIGTERM");
    await a.left(b.id, 5000);
    await b.wait();
    for (let i = 1; i <= 5; i++) {
      const r = await post(a, "/messages?wait=0", { to: "bob", text: `queued ${i}` });
      assert.equal(r.status, 202);
      assert.equal(r.body.status, "queued");
    }
    await a.kill();
    b = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
    a = await startLoopbackDaemon(port, "alice", { dataDir: aDir }).started();
    await until("bob's inbox to fill", async () => (await inbox(b)).length === 5, 10_000);
    assert.deepEqual((await inbox(b)).map((m) => m.text), [1, 2, 3, 4, 5].map((i) => `queued ${i}`));
    await until("alice's outbox to drain", async () => (await outbox(a)) === 0, 5000);
  } finally {
    await killAll();
  }
});

Deno.test("a read receipt: bob reads alice's messages, alice's are marked read (readAt, SSE read); with --no-read-receipts none is sent", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    const c = await startLoopbackDaemon(port, "carol", { extra: ["--no-read-receipts"] }).started();
    await a.joined(b.id, 2000);
    await a.joined(c.id, 2000);
    const events: string[] = [];
    const ctrl = new AbortController();
    const stream = fetch(`${a.httpUrl}/events`, { signal: ctrl.signal }).then(async (r) => {
      for await (const chunk of r.body!.pipeThrough(new TextDecoderStream())) events.push(chunk);
    }).catch(() => {});
    for (const text of ["one", "two"]) {
      assert.equal((await post(a, "/messages?wait=5", { to: "bob", text })).status, 200);
    }
    assert.equal((await post(a, "/messages?wait=5", { to: "carol", text: "three" })).status, 200);
    const read = await fetch(`${b.httpUrl}/messages/read`, { method: "POST", body: JSON.stringify({ peer: "alice" }) });
    assert.deepEqual(await read.json(), { peer: a.id, read: 2 });
    const again = await fetch(`${b.httpUrl}/messages/read`, {
      method: "POST",
      body: JSON.stringify({ peer: "alice" }),
    });
    assert.equal((await again.json()).read, 0, "read once");
    await until("alice to see both read", async () => {
      const out: MessageJson[] = await (await fetch(`${a.httpUrl}/messages?peer=bob`)).json();
      return out.length === 2 && out.every((m) => m.readAt !== undefined);
    }, 5000);
    await until("the read events", () => Promise.resolve(events.join("").split("event: read").length - 1 >= 2), 3000);
    // Printed by lanchat inbox is read too.
    assert.equal((await post(a, "/messages?wait=5", { to: "bob", text: "four" })).status, 200);
    const inboxRun = await runCli(["inbox", "--http", b.httpUrl.replace("http://", "")]);
    assert.equal(inboxRun.code, 0, inboxRun.stderr);
    await until("alice to see 'four' read", async () => {
      const out: MessageJson[] = await (await fetch(`${a.httpUrl}/messages?peer=bob`)).json();
      return out.find((m) => m.text === "four")?.readAt !== undefined;
    }, 5000);
    // Carol reads too, but sends no receipt.
    await fetch(`${c.httpUrl}/messages/read`, { method: "POST", body: JSON.stringify({ peer: "alice" }) });
    await new Promise((r) => setTimeout(r, 1000));
    const toCarol: MessageJson[] = await (await fetch(`${a.httpUrl}/messages?peer=carol`)).json();
    assert.equal(toCarol[0]!.readAt, undefined);
    const atCarol: MessageJson[] = await (await fetch(`${c.httpUrl}/messages?peer=alice`)).json();
    assert.ok(atCarol[0]!.readAt, "marked read where it was read");
    ctrl.abort();
    await stream;
  } finally {
    await killAll();
  }
});
