/**
 * The receiver killed (kill -9) in the middle of a burst: 500 messages posted
 * at once, the receiver killed once some of them are acknowledged, then
 * started again. Every message the sender saw acknowledged was stored
 * before the ack went (it is in the receiver's history after the restart,
 * once), and in the end all 500 arrive, once each, in order, with no gap.
 *
 * The sender killed (kill -9) right after its API said "accepted" for two
 * batches of 500 (each stored in one transaction, committed before the
 * answer): after it restarts, the receiver gets all 1,000 once each, in order.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
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
const sentTo = async (a: DaemonProcess, peer: string): Promise<MessageJson[]> =>
  ((await json(`${a.httpUrl}/messages?peer=${peer}&limit=1000`)) as MessageJson[]).filter((m) => m.direction === "out");

Deno.test("the receiver killed (kill -9) mid-burst of 500: every acknowledged message is kept once, and all 500 arrive in order", async () => {
  const port = freeUdpPort();
  const bDir = tempDataDir();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
    await a.joined(b.id, 15_000);
    // Some of them several fragments long.
    const texts = Array.from(
      { length: 500 },
      (_, i) => `burst ${i + 1}` + (i % 5 === 2 ? " " + "y".repeat(4000) : ""),
    );
    for (let i = 0; i < texts.length; i += 100) {
      const res = await fetch(`${a.httpUrl}/messages`, {
        method: "POST",
        body: JSON.stringify({ messages: texts.slice(i, i + 100).map((text) => ({ to: b.id, text })) }),
      });
      assert.equal(res.status, 202, await res.text());
    }
    await until(
      "some of the burst to be acknowledged",
      async () => (await status(a)).messaging.messagesDelivered >= 50,
      30_000,
    );
    await b.kill();
    // What alice saw acknowledged before bob died.
    const acked = (await sentTo(a, b.id)).filter((m) => m.status === "delivered").map((m) => m.id);
    assert.ok(acked.length >= 50, `${acked.length} acknowledged before the kill`);
    console.log(`${acked.length} of ${texts.length} acknowledged before the kill`);

    // Stored before the ack went: in the database bob left behind, in history or held (waiting for an earlier one).
    const db = new DatabaseSync(`${bDir}/lanchat.db`, { readOnly: true });
    const kept = (db.prepare("SELECT id FROM messages WHERE direction = 'in' UNION ALL SELECT id FROM held").all() as {
      id: string;
    }[]).map((r) => r.id);
    db.close();
    for (const id of acked) {
      assert.equal(kept.filter((x) => x === id).length, 1, `acknowledged message ${id} kept once`);
    }

    const b2 = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
    const inbox = async (): Promise<MessageJson[]> =>
      ((await json(`${b2.httpUrl}/messages?peer=${a.id}&limit=1000`)) as MessageJson[]).filter((m) =>
        m.direction === "in"
      );
    await until("every message to be acknowledged", async () => (await status(a)).messaging.outbox === 0, 120_000);
    const got = await inbox();
    assert.deepEqual(got.map((m) => m.text), texts, "all 500, once each, in order");
    assert.deepEqual(got.map((m) => m.seq), texts.map((_, i) => i + 1));
    assert.ok(got.every((m) => !m.gapBefore && !m.late), "no gap, none late");
    assert.equal(new Set(got.map((m) => m.id)).size, 500);
  } finally {
    await killAll();
    await Deno.remove(bDir, { recursive: true }).catch(() => {});
  }
});

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
