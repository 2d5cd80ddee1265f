/**
 * Replies, edits and deletions in the store (storage/thread.ts): an edit
 * before its message, one of someone else's message (refused and counted,
 * also when it waited), a deletion that is final, an older edit after a
 * newer one, restarts, search and history, the outbox's bytes of a message
 * edited before it went.
 */
import assert from "node:assert/strict";
import { type MessageRef, type Release, Store, type ThreadChanges } from "../../src/storage/store.ts";

const BOB = "b".repeat(32);
const CAROL = "c".repeat(32);
const T0 = 1_800_000_000_000;
const id = (n: number) => n.toString(16).padStart(32, "0");

/** Receives one message from `peer` (seq by peer), as messaging does once it is in order. */
function receive(
  store: Store,
  peer: string,
  seq: number,
  n: number,
  text: string,
  ref?: MessageRef,
  sentAt = T0 + n,
): ThreadChanges {
  const changes: ThreadChanges = { updated: [], refused: 0 };
  const m: Release = {
    id: id(n),
    peer,
    seq,
    text,
    sentAt,
    receivedAt: sentAt,
    gapBefore: 0,
    late: false,
    wasHeld: false,
    ...(ref ? { ref } : {}),
  };
  store.release(peer, [m], seq + 1, sentAt, undefined, changes);
  return changes;
}

async function fresh(): Promise<{ store: Store; dir: string }> {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-thread-" });
  return { store: await Store.open(dir), dir };
}

const shown = (store: Store) => store.history({ limit: 100 }).map((m) => [m.id, m.text]);

Deno.test("thread store: an edit before its message waits and is applied when the message comes (also after a restart)", async () => {
  const { store, dir } = await fresh();
  const early = receive(store, BOB, 2, 2, "(edited) hello, world", { kind: "edit", id: id(1) });
  assert.deepEqual(early, { updated: [], refused: 0 });
  assert.deepEqual(shown(store), [], "the edit is not history");
  store.close();
  const again = await Store.open(dir);
  try {
    const late = receive(again, BOB, 1, 1, "hello wrold");
    assert.equal(late.refused, 0);
    assert.deepEqual(late.updated.map((m) => [m.id, m.text, m.editedAt]), [[id(1), "hello, world", T0 + 2]]);
    assert.deepEqual(shown(again), [[id(1), "hello, world"]]);
    assert.equal(again.search({ text: "wrold" }).messages.length, 0, "the old text is out of the index");
    assert.equal(again.search({ text: "world" }).messages.length, 1);
  } finally {
    again.close();
  }
});

Deno.test("thread store: an edit or deletion of someone else's message is refused and counted, the message unchanged", async () => {
  const { store } = await fresh();
  try {
    receive(store, CAROL, 1, 1, "carol's words");
    store.insertOutgoing({ id: id(2), peer: BOB, text: "my words", sentAt: T0, status: "sent" });
    const a = receive(store, BOB, 1, 3, "(edited) bob's forgery", { kind: "edit", id: id(1) });
    const b = receive(store, BOB, 2, 4, "(deleted)", { kind: "delete", id: id(2) });
    assert.deepEqual([a.refused, b.refused, a.updated.length, b.updated.length], [1, 1, 0, 0]);
    assert.deepEqual(shown(store), [[id(1), "carol's words"], [id(2), "my words"]]);
    assert.match(store.message(id(3))!.error!, /did not send/);
    // One that waited for a message that turns out to be another peer's is refused when it comes.
    receive(store, BOB, 3, 5, "(edited) bob again", { kind: "edit", id: id(6) });
    const c = receive(store, CAROL, 2, 6, "carol's second");
    assert.deepEqual([c.refused, c.updated.length], [1, 0]);
    assert.equal(store.message(id(6))!.text, "carol's second");
  } finally {
    store.close();
  }
});

Deno.test("thread store: a deletion is final, an older edit after a newer one changes nothing, a reply keeps its ref", async () => {
  const { store } = await fresh();
  try {
    receive(store, BOB, 1, 1, "first");
    receive(store, BOB, 2, 2, "a reply", { kind: "reply", id: id(1) });
    assert.deepEqual(store.message(id(2))!.ref, { kind: "reply", id: id(1) });
    assert.equal(store.search({ text: "reply" }).messages.length, 1, "a reply is history and searched");
    receive(store, BOB, 3, 3, "(edited) newer", { kind: "edit", id: id(1) }, T0 + 100);
    const older = receive(store, BOB, 4, 4, "(edited) older", { kind: "edit", id: id(1) }, T0 + 50);
    assert.deepEqual(older, { updated: [], refused: 0 });
    assert.equal(store.message(id(1))!.text, "newer");
    const del = receive(store, BOB, 5, 5, "(deleted a message)", { kind: "delete", id: id(1) }, T0 + 200);
    assert.deepEqual(del.updated.map((m) => [m.text, m.deletedAt]), [["", T0 + 200]]);
    receive(store, BOB, 6, 6, "(edited) after", { kind: "edit", id: id(1) }, T0 + 300);
    assert.deepEqual([store.message(id(1))!.text, store.message(id(1))!.deletedAt], ["", T0 + 200]);
    assert.equal(store.search({ text: "newer" }).messages.length, 0);
    assert.equal(
      store.search({ text: "ne" }).messages.length,
      0,
      "nor a short text, read row by row: edits are not found",
    );
    assert.deepEqual(shown(store), [[id(1), ""], [id(2), "a reply"]]);
  } finally {
    store.close();
  }
});

Deno.test("thread store: a message edited while in the outbox goes out as it was; history shows the edit", async () => {
  const { store, dir } = await fresh();
  try {
    store.insertOutgoing({ id: id(1), peer: BOB, text: "teh original", sentAt: T0, status: "queued" });
    store.insertOutgoing({
      id: id(2),
      peer: BOB,
      text: "the original",
      sentAt: T0 + 1,
      ref: { kind: "edit", id: id(1) },
    });
    const edited = store.amendOwn(id(1), "edit", "the original", T0 + 1);
    assert.equal(edited.editedAt, T0 + 1);
    const out = store.outbox(BOB);
    assert.deepEqual(out.map((m) => [m.id, m.wireText ?? m.text, m.ref?.kind]), [
      [id(1), "teh original", undefined],
      [id(2), "the original", "edit"],
    ]);
    assert.deepEqual(shown(store), [[id(1), "the original"]]);
    store.insertOutgoing({
      id: id(3),
      peer: BOB,
      text: "(deleted)",
      sentAt: T0 + 2,
      ref: { kind: "delete", id: id(1) },
    });
    store.amendOwn(id(1), "delete", "", T0 + 2);
    assert.deepEqual(shown(store), [[id(1), ""]]);
    assert.equal(store.search({ text: "original" }).messages.length, 0);
  } finally {
    store.close();
  }
  const again = await Store.open(dir);
  try {
    assert.equal(again.outbox(BOB)[0]!.wireText, "teh original", "kept across a restart");
  } finally {
    again.close();
  }
});

Deno.test("thread store: a message held for order keeps its ref across a restart", async () => {
  const { store, dir } = await fresh();
  store.hold({
    id: id(9),
    peer: BOB,
    seq: 4,
    text: "x",
    sentAt: T0,
    receivedAt: T0,
    ref: { kind: "delete", id: id(1) },
  });
  store.close();
  const again = await Store.open(dir);
  try {
    assert.deepEqual(again.heldMessages()[0]!.ref, { kind: "delete", id: id(1) });
  } finally {
    again.close();
  }
});

Deno.test("thread store: an edit changes a message's words, never its machine lines (its group, an offer)", async () => {
  const { store } = await fresh();
  try {
    const line = (g: string) => `\n\u0001lanchat-group {"g":"${g}","n":"team","m":[]}`;
    receive(store, BOB, 1, 1, `hello${line("1".repeat(32))}`);
    // Bob's edit carries another group's line (and an offer's): the words change, the line stays the message's.
    receive(store, BOB, 2, 2, `(edited) hi${line("2".repeat(32))}\n\u0001lanchat-files {"kind":"offer"}`, {
      kind: "edit",
      id: id(1),
    });
    assert.equal(store.message(id(1))!.text, `hi${line("1".repeat(32))}`);
  } finally {
    store.close();
  }
});
