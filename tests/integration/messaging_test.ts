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
    await a.left(b.id, 2000);
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
