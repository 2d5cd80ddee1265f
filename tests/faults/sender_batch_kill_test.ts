/**
 * The sender killed (kill -9) right after its API said "accepted" for two
 * batches of 500 (each stored in one transaction, committed before the
 * answer): after it restarts, every message of both batches is in its
 * outbox or delivered, and the receiver gets all 1,000 once each, in order.
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

const json = async (url: string) => await (await fetch(url)).json();
const status = (d: DaemonProcess) => json(`${d.httpUrl}/status`);

Deno.test("the sender killed (kill -9) just after two batches of 500 were accepted delivers all 1,000 once, in order, after it restarts", async () => {
  const port = freeUdpPort();
  const aDir = tempDataDir();
  try {
    const a = await startLoopbackDaemon(port, "alice", { dataDir: aDir }).started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 15_000);
    const texts = Array.from({ length: 1000 }, (_, i) => `batch message ${i + 1}`);
    const posts = [0, 500].map((from) =>
      fetch(`${a.httpUrl}/messages?wait=0`, {
        method: "POST",
        body: JSON.stringify({ messages: texts.slice(from, from + 500).map((text) => ({ to: b.id, text })) }),
      })
    );
    const answers = await Promise.all(
      posts.map(async (p) => {
        const r = await p;
        return { status: r.status, body: await r.json() };
      }),
    );
    // Killed the moment both answers came: most of the messages are still in flight.
    await a.kill();
    for (const { status, body } of answers) {
      assert.equal(status, 202, JSON.stringify(body).slice(0, 200));
      assert.equal(body.messages.length, 500);
      assert.ok(body.messages.every((m: MessageJson) => m.id && !("error" in m)), "every one stored");
    }
    const delivered = (await status(b)).messaging.messagesReceived;
    console.log(`${delivered} of 1000 received before the kill`);
    const a2 = await startLoopbackDaemon(port, "alice", { dataDir: aDir }).started();
    await until("alice's outbox to drain", async () => (await status(a2)).messaging.outbox === 0, 120_000);
    const got = ((await json(`${b.httpUrl}/messages?peer=${a2.id}&limit=2000`)) as MessageJson[])
      .filter((m) => m.direction === "in");
    assert.deepEqual(got.map((m) => m.text), texts, "all 1,000, once each, in order");
    assert.deepEqual(got.map((m) => m.seq), texts.map((_, i) => i + 1));
    assert.ok(got.every((m) => !m.gapBefore && !m.late), "no gap, none late");
  } finally {
    await killAll();
    await Deno.remove(aDir, { recursive: true }).catch(() => {});
  }
});
