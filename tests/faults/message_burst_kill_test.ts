/**
 * The receiver killed (kill -9) in the middle of a burst: 500 messages posted
 * at once, the receiver killed once some of them are acknowledged, then
 * started again. Every message the sender saw acknowledged was stored
 * before the ack went (it is in the receiver's history after the restart,
 * once), and in the end all 500 arrive, once each, in order, with no gap.
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
