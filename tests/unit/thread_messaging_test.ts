/**
 * Replies, edits and deletions through reliable messaging between two
 * state machines with real stores: the ack/retry/order path, an edit that
 * arrives before its message (the message late), a forged edit refused and
 * counted, a restarted sender and receiver, a peer of the previous version
 * (which ignores the reference and shows the text).
 */
import assert from "node:assert/strict";
import { GAP_WAIT_MS, Messaging } from "../../src/protocol/messaging.ts";
import { Store } from "../../src/storage/store.ts";
import { decodePacket, type Msg } from "../../src/wire/mod.ts";

const A = "a".repeat(32);
const B = "b".repeat(32);
const EA = { address: "198.18.0.1", port: 47475 };
const EB = { address: "198.18.0.2", port: 47475 };
const WALL0 = 1_800_000_000_000;

interface Side {
  id: string;
  ep: typeof EA;
  dir: string;
  store: Store;
  m: Messaging;
}

async function side(id: string, ep: typeof EA, dir = Deno.makeTempDirSync({ prefix: "lanchat-thread-" }), inc = 1) {
  const store = await Store.open(dir);
  const m = new Messaging({ self: { id, incarnation: inc }, store, wall: (t) => WALL0 + t, fragmentPayload: 100 });
  return { id, ep, dir, store, m } as Side;
}

/**
 * Runs both sides until nothing is left to send or `until` ms of simulated
 * time pass; `drop` loses a datagram, `strip` makes B a previous version
 * (its fragments' references are taken off before it reads them).
 */
function run(
  a: Side,
  b: Side,
  now: { t: number },
  o: { until?: number; drop?: (m: Msg) => boolean; strip?: boolean } = {},
) {
  const end = now.t + (o.until ?? 60_000);
  for (;;) {
    let moved = false;
    for (const [from, to] of [[a, b], [b, a]] as const) {
      for (const t of from.m.drainTransmits()) {
        const p = decodePacket(t.bytes);
        assert.ok(p.ok);
        let packet = p.value;
        if (packet.kind === "msg" && o.drop?.(packet)) continue;
        if (packet.kind === "msg" && o.strip && to === b) {
          const { ref: _ref, ...rest } = packet;
          packet = rest;
        }
        if (packet.kind === "msg" || packet.kind === "ack") to.m.handlePacket(packet, from.ep, now.t);
        moved = true;
      }
    }
    if (moved) continue;
    const next = Math.min(a.m.pollTimeout() ?? Infinity, b.m.pollTimeout() ?? Infinity);
    if (next === Infinity || next > end) return;
    now.t = Math.max(now.t, next);
    a.m.handleTimeout(now.t);
    b.m.handleTimeout(now.t);
  }
}

const events = (s: Side) => s.m.drainEvents().filter((e) => e.type === "message" || e.type === "message-updated");
const shown = (s: Side) => s.store.history({ limit: 100 }).map((m) => m.text);

async function pair() {
  const a = await side(A, EA);
  const b = await side(B, EB);
  a.m.peerUp(B, EB, 0);
  b.m.peerUp(A, EA, 0);
  return { a, b, now: { t: 0 } };
}

Deno.test("thread messaging: a reply and an edit ride the ack path; the receiver shows one message, edited", async () => {
  const { a, b, now } = await pair();
  try {
    const first = a.m.send(B, "hello wrold, ".repeat(20), now.t);
    run(a, b, now);
    a.m.send(B, "hello world", now.t, undefined, { kind: "edit", id: first.id });
    const reply = a.m.send(B, "and a reply", now.t, undefined, { kind: "reply", id: first.id });
    run(a, b, now);
    assert.equal(a.store.outbox().length, 0, "every one acknowledged");
    assert.deepEqual(shown(b), ["hello world", "and a reply"]);
    assert.deepEqual(b.store.message(reply.id)!.ref, { kind: "reply", id: first.id });
    const ev = events(b).map((e) => [e.type, e.message.text]);
    assert.deepEqual(ev, [["message", "hello wrold, ".repeat(20)], ["message-updated", "hello world"], [
      "message",
      "and a reply",
    ]]);
  } finally {
    a.store.close();
    b.store.close();
  }
});

Deno.test("thread messaging: an edit that arrives before its message (the message late) is applied when it comes", async () => {
  const { a, b, now } = await pair();
  try {
    const first = a.m.send(B, "teh message", now.t);
    // Its fragments are lost while the edit goes through; the gap is given up on, then the message comes late.
    a.m.send(B, "the message", now.t, undefined, { kind: "edit", id: first.id });
    run(a, b, now, { until: GAP_WAIT_MS * 3, drop: (m) => m.messageId === first.id });
    assert.deepEqual(shown(b), [], "the edit alone shows nothing");
    run(a, b, now);
    assert.deepEqual(shown(b), ["the message"]);
    const m = b.store.message(first.id)!;
    assert.deepEqual([m.late, m.editedAt !== undefined], [true, true]);
    assert.deepEqual(events(b).map((e) => [e.type, e.message.text]), [["message", "the message"]]);
  } finally {
    a.store.close();
    b.store.close();
  }
});

Deno.test("thread messaging: a peer that edits or deletes a message it did not send is refused and counted", async () => {
  const { a, b, now } = await pair();
  try {
    const mine = b.m.send(A, "b's own words", now.t);
    run(a, b, now);
    // A forges an edit and a deletion of B's message (an id it knows: it received it).
    a.m.send(B, "forged", now.t, undefined, { kind: "edit", id: mine.id });
    a.m.send(B, "gone", now.t, undefined, { kind: "delete", id: mine.id });
    run(a, b, now);
    assert.equal(a.store.outbox().length, 0, "acknowledged: the sender does not retry it");
    assert.equal(b.m.counters.amendsRefused, 2);
    assert.deepEqual(shown(b), ["b's own words"]);
  } finally {
    a.store.close();
    b.store.close();
  }
});

Deno.test("thread messaging: an edit queued for an offline peer goes after both restart, its message as it was written", async () => {
  const { a, b, now } = await pair();
  a.m.peerDown(B);
  const first = a.m.send(B, "draft one", now.t);
  a.m.send(B, "final", now.t, undefined, { kind: "edit", id: first.id });
  a.store.amendOwn(first.id, "edit", "final", WALL0);
  a.store.close();
  b.store.close();
  const a2 = await side(A, EA, a.dir, 2);
  const b2 = await side(B, EB, b.dir, 2);
  try {
    a2.m.peerUp(B, EB, now.t);
    b2.m.peerUp(A, EA, now.t);
    const wire: string[] = [];
    run(a2, b2, now, {
      drop: (m) => {
        if (m.index === 0 && m.retry === 0) wire.push(new TextDecoder().decode(m.payload));
        return false;
      },
    });
    assert.deepEqual(wire, ["draft one", "final"], "the message went as written, then its edit");
    assert.deepEqual(shown(b2), ["final"]);
    assert.deepEqual(shown(a2), ["final"]);
  } finally {
    a2.store.close();
    b2.store.close();
  }
});

Deno.test("thread messaging: a previous version shows an edit as a message of its own, a reply as plain text", async () => {
  const { a, b, now } = await pair();
  try {
    const first = a.m.send(B, "one", now.t);
    a.m.send(B, "(edited) two", now.t, undefined, { kind: "edit", id: first.id });
    a.m.send(B, "three", now.t, undefined, { kind: "reply", id: first.id });
    run(a, b, now, { strip: true });
    assert.equal(a.store.outbox().length, 0);
    assert.deepEqual(shown(b), ["one", "(edited) two", "three"]);
  } finally {
    a.store.close();
    b.store.close();
  }
});

Deno.test("thread messaging: an edit of a message the peer never got (it lost its store) is acknowledged and shows nothing", async () => {
  const { a, b, now } = await pair();
  const first = a.m.send(B, "one", now.t);
  run(a, b, now);
  b.store.close();
  const b2 = await side(B, EB, undefined, 2);
  try {
    b2.m.peerUp(A, EA, now.t);
    a.m.peerRestarted(B, EB, now.t);
    a.m.send(B, "uno", now.t, undefined, { kind: "edit", id: first.id });
    run(a, b2, now);
    assert.equal(a.store.outbox().length, 0);
    assert.deepEqual(shown(b2), []);
    assert.equal(b2.m.counters.amendsRefused, 0);
  } finally {
    a.store.close();
    b2.store.close();
  }
});
