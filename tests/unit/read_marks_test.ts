/**
 * Read marks keep conversations apart: reading the direct conversation with
 * a peer marks none of a group's messages, reading a group none of the
 * direct ones nor another group's; a read receipt marks only the
 * conversation of the message it names (hostile27b M2).
 */
import assert from "node:assert/strict";
import { Store } from "../../src/storage/store.ts";

const BOB = "b".repeat(32);
const LAB = "1".repeat(32);
const OPS = "2".repeat(32);
const id = (n: number) => n.toString(16).padStart(32, "0");

async function open(): Promise<Store> {
  const store = await Store.open(Deno.makeTempDirSync({ prefix: "lanchat-reads-" }));
  store.startGroupCommit(() => {}); // as the daemon runs it
  return store;
}

Deno.test("reading one conversation of a peer's marks no other read here", async () => {
  const store = await open();
  try {
    const incoming = (n: number, group?: string) => ({
      id: id(n),
      peer: BOB,
      seq: n,
      text: `m${n}`,
      sentAt: 1,
      receivedAt: 1,
      gapBefore: 0,
      late: false,
      wasHeld: false,
      ...(group ? { group } : {}),
    });
    store.release(BOB, [incoming(1, LAB), incoming(2), incoming(3, OPS), incoming(4, LAB)], 5, 1);
    const last = store.lastCursor();
    const lab = store.markReadIn(BOB, last, 7, "\n\u0001sealed", LAB);
    assert.deepEqual(lab, { lastId: id(4), marked: 2 });
    const read = () => store.history({ limit: 10 }).filter((m) => m.readAt !== undefined).map((m) => m.text);
    assert.deepEqual(read(), ["m1", "m4"]);
    const direct = store.markReadIn(BOB, last, 8, "\n\u0001sealed");
    assert.deepEqual(direct, { lastId: id(2), marked: 1 });
    assert.deepEqual(read(), ["m1", "m2", "m4"]);
    assert.equal(store.markReadIn(BOB, last, 9, "\n\u0001sealed", LAB)?.marked, 0);
    assert.deepEqual(store.markReadIn(BOB, last, 9, "\n\u0001sealed", OPS), { lastId: id(3), marked: 1 });
  } finally {
    store.close();
  }
});

Deno.test("a read receipt marks only the conversation of the message it names", async () => {
  const store = await open();
  try {
    const out = (n: number, group?: string) =>
      store.insertOutgoing({
        id: id(n),
        peer: BOB,
        text: `m${n}`,
        sentAt: 1,
        status: "sent",
        ...(group ? { group, copyOf: id(1000 + n) } : {}),
      });
    out(1);
    out(2, LAB);
    out(3);
    out(4, OPS);
    out(5, LAB);
    // Bob read the group lab up to m5: m2 and m5, not the direct m1, m3 nor ops' m4.
    assert.deepEqual(store.markReadOut(BOB, id(5), 7).map((m) => m.text), ["m2", "m5"]);
    // Then the direct conversation up to m1: m3 stays unread.
    assert.deepEqual(store.markReadOut(BOB, id(1), 8).map((m) => m.text), ["m1"]);
    assert.deepEqual(store.markReadOut(BOB, id(3), 9).map((m) => m.text), ["m3"]);
    assert.deepEqual(store.markReadOut(BOB, id(4), 9).map((m) => m.text), ["m4"]);
    // A receipt naming an unknown message, or one of another peer's: nothing.
    assert.deepEqual(store.markReadOut(BOB, id(99), 9), []);
    assert.deepEqual(store.markReadOut("c".repeat(32), id(1), 9), []);
  } finally {
    store.close();
  }
});
