/**
 * Messaging with `deferReleases` (as the daemon runs it): in-order messages
 * wait for `flush` (the group commit) to be stored together, and are
 * acknowledged only then; a retry, a gap, or a store that fails keeps
 * every message once and in order.
 */
import assert from "node:assert/strict";
import { Messaging } from "../../src/protocol/messaging.ts";
import { Store, StoreError } from "../../src/storage/store.ts";
import { type Ack, decodePacket, type Msg } from "../../src/wire/mod.ts";

const A = "a".repeat(32);
const B = "b".repeat(32);
const EA = { address: "198.18.0.1", port: 47475 };
const EB = { address: "198.18.0.2", port: 47475 };

async function node(id: string, deferReleases: boolean) {
  const store = await Store.open(Deno.makeTempDirSync());
  const m = new Messaging({ self: { id, incarnation: 1 }, store, wall: (t) => 1_800_000_000_000 + t, deferReleases });
  return { store, m };
}

/** What `m` sent, decoded. */
function sent(m: Messaging): (Msg | Ack)[] {
  return m.drainTransmits().map((t) => {
    const p = decodePacket(t.bytes);
    assert.ok(p.ok && (p.value.kind === "msg" || p.value.kind === "ack"));
    return p.value as Msg | Ack;
  });
}

const texts = (s: Store) => s.history({ limit: 1000 }).filter((x) => x.direction === "in").map((x) => x.text);

Deno.test("deferred: a burst is stored at the flush, in order, and acknowledged only after it; a retry before it is stored once", async () => {
  const a = await node(A, false);
  const b = await node(B, true);
  a.m.peerUp(B, EB, 0);
  a.m.sendMany(Array.from({ length: 10 }, (_, i) => ({ to: B, text: `m${i + 1}` })), 0);
  const msgs = sent(a.m) as Msg[];
  assert.equal(msgs.length, 10);
  // The first from a sender not seen before sets where its sequence starts: stored at once.
  b.m.handlePacket(msgs[0]!, EA, 1);
  assert.ok(!b.m.deferred);
  const first = sent(b.m);
  for (const p of msgs.slice(1)) b.m.handlePacket(p, EA, 1);
  b.m.handlePacket(msgs[2]!, EA, 2); // a retry of the third, before the flush
  assert.ok(b.m.deferred);
  assert.deepEqual(sent(b.m), [], "nothing acknowledged before it is stored");
  assert.deepEqual(texts(b.store), ["m1"]);
  assert.equal(b.m.counters.messagesReceived, 1);
  b.m.flush(3);
  assert.ok(!b.m.deferred);
  assert.deepEqual(texts(b.store), msgs.map((_, i) => `m${i + 1}`));
  const acks = [...first, ...sent(b.m)] as Ack[];
  assert.equal(acks.length, 11, "each one, and the retry");
  assert.ok(acks.every((x) => x.kind === "ack" && x.done));
  assert.equal(b.m.counters.messagesReceived, 10);
  assert.equal(b.m.counters.duplicates, 1);
  for (const x of acks) a.m.handlePacket(x, EB, 4);
  assert.equal(a.m.pendingCount(), 0);
  // A retry after the flush is a plain duplicate: acknowledged at once, not stored again.
  b.m.handlePacket(msgs[2]!, EA, 5);
  assert.equal((sent(b.m)[0] as Ack).done, true);
  assert.equal(texts(b.store).length, 10);
  a.store.close();
  b.store.close();
});

Deno.test("deferred: a store that fails at the flush acknowledges nothing; the sender's retries bring all of it, once, in order", async () => {
  const a = await node(A, false);
  const b = await node(B, true);
  a.m.peerUp(B, EB, 0);
  a.m.sendMany(Array.from({ length: 5 }, (_, i) => ({ to: B, text: `f${i + 1}` })), 0);
  // The first message sets where the sender's sequence starts: stored at once; the rest wait.
  for (const p of sent(a.m) as Msg[]) b.m.handlePacket(p, EA, 1);
  b.m.flush(1);
  for (const x of sent(b.m)) a.m.handlePacket(x, EB, 1);
  a.m.sendMany(Array.from({ length: 5 }, (_, i) => ({ to: B, text: `g${i + 1}` })), 2);
  const release = b.store.release.bind(b.store);
  b.store.release = () => {
    throw new StoreError("Cannot store the message: database or disk is full");
  };
  for (const p of sent(a.m) as Msg[]) b.m.handlePacket(p, EA, 3);
  b.m.flush(3);
  assert.deepEqual(sent(b.m), [], "nothing acknowledged");
  assert.ok(b.m.drainEvents().some((e) => e.type === "store-error"));
  b.store.release = release;
  // The sender's timer: the five again.
  a.m.handleTimeout(1000);
  for (const p of sent(a.m) as Msg[]) b.m.handlePacket(p, EA, 1001);
  b.m.flush(1001);
  for (const x of sent(b.m)) a.m.handlePacket(x, EB, 1002);
  assert.deepEqual(texts(b.store), [1, 2, 3, 4, 5].map((i) => `f${i}`).concat([1, 2, 3, 4, 5].map((i) => `g${i}`)));
  assert.ok(b.store.history({ limit: 20 }).every((x) => !x.gapBefore && !x.late), "in order: none late, no gap");
  assert.equal(a.m.pendingCount(), 0);
  a.store.close();
  b.store.close();
});

Deno.test("deferred: a message ahead of a gap stores what waited first, then is held; the gap filled, all are in order", async () => {
  const a = await node(A, false);
  const b = await node(B, true);
  a.m.peerUp(B, EB, 0);
  a.m.sendMany(Array.from({ length: 5 }, (_, i) => ({ to: B, text: `o${i + 1}` })), 0);
  const msgs = sent(a.m) as Msg[];
  // 1 (first contact, stored at once), 2 (waits), 4 (ahead of a gap), 3, 5.
  for (const i of [0, 1, 3, 2, 4]) b.m.handlePacket(msgs[i]!, EA, 1);
  b.m.flush(2);
  assert.deepEqual(texts(b.store), ["o1", "o2", "o3", "o4", "o5"]);
  const stored = b.store.history({ limit: 10 });
  assert.ok(stored.every((x) => !x.gapBefore && !x.late), "no gap, none late");
  const acks = sent(b.m) as Ack[];
  assert.equal(new Set(acks.filter((x) => x.done).map((x) => x.messageId)).size, 5, "all five acknowledged");
  a.store.close();
  b.store.close();
});
