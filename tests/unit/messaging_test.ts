/**
 * Messaging between two nodes on a simulated link: real encode/decode, real
 * SQLite stores (temp dirs), a stepped clock, seeded loss and duplication.
 * Time jumps to the next event, so minutes of retries take milliseconds.
 */
import assert from "node:assert/strict";
import { GAP_WAIT_MS, Messaging, retransmitTimeout, RTO_MAX_MS, timeOrderedId } from "../../src/protocol/messaging.ts";
import { seededRandom } from "../../src/sim/sim.ts";
import { Store, StoreError } from "../../src/storage/store.ts";
import { decodePacket, encodePacket, type Msg } from "../../src/wire/mod.ts";

const A = "a".repeat(32);
const B = "b".repeat(32);
const EA = { address: "198.18.0.1", port: 47475 };
const EB = { address: "198.18.0.2", port: 47475 };
const WALL0 = 1_800_000_000_000;

interface Side {
  id: string;
  ep: { address: string; port: number };
  dir: string;
  store: Store;
  m: Messaging;
}

async function side(id: string, ep: { address: string; port: number }, dir = Deno.makeTempDirSync(), incarnation = 1) {
  const store = await Store.open(dir);
  const m = new Messaging({ self: { id, incarnation }, store, wall: (t) => WALL0 + t, fragmentPayload: 100 });
  return { id, ep, dir, store, m } as Side;
}

/** A link between two sides: loss and duplication per datagram, 1 ms latency. */
class Link {
  now = 0;
  queue: { at: number; to: Side; from: Side; bytes: Uint8Array }[] = [];
  rnd: () => number;
  delivered = 0;
  lost = 0;
  constructor(public a: Side, public b: Side, public loss = 0, public dup = 0, seed = 1) {
    this.rnd = seededRandom(seed);
  }
  other(s: Side) {
    return s === this.a ? this.b : this.a;
  }
  pump(s: Side) {
    for (const t of s.m.drainTransmits()) {
      const to = this.other(s);
      assert.deepEqual(t.to, to.ep, "sent to the peer's endpoint");
      const copies = this.rnd() < this.dup ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        if (this.rnd() < this.loss) {
          this.lost++;
          continue;
        }
        this.queue.push({ at: this.now + 1, to, from: s, bytes: t.bytes });
      }
    }
  }
  /** Runs until `done()` or until `limit` ms of simulated time. */
  run(limit: number, done: () => boolean = () => false) {
    const end = this.now + limit;
    this.pump(this.a);
    this.pump(this.b);
    while (!done()) {
      const times = [
        ...this.queue.map((q) => q.at),
        this.a.m.pollTimeout() ?? Infinity,
        this.b.m.pollTimeout() ?? Infinity,
      ];
      const next = Math.min(...times);
      if (next === Infinity || next > end) {
        this.now = end;
        return done();
      }
      this.now = Math.max(this.now, next);
      const due = this.queue.filter((q) => q.at <= this.now);
      this.queue = this.queue.filter((q) => q.at > this.now);
      for (const d of due) {
        const p = decodePacket(d.bytes);
        assert.ok(p.ok, "every datagram decodes");
        if (p.value.kind === "msg" || p.value.kind === "ack") {
          d.to.m.handlePacket(p.value, d.from.ep, this.now);
          this.delivered++;
        }
        this.pump(d.to);
      }
      for (const s of [this.a, this.b]) {
        const t = s.m.pollTimeout();
        if (t !== undefined && t <= this.now) {
          s.m.handleTimeout(this.now);
          this.pump(s);
        }
      }
    }
    return true;
  }
}

function inbox(s: Side) {
  return s.store.history({ limit: 10_000 }).filter((m) => m.direction === "in");
}

function text(i: number, rnd: () => number): string {
  // Mostly short, some multi-fragment (fragment payload is 100 bytes here), some non-ASCII.
  const r = rnd();
  if (r < 0.2) return `long ${i} ` + "界🚀x".repeat(Math.floor(50 + rnd() * 300));
  return `message ${i} ` + "é".repeat(Math.floor(rnd() * 20));
}

Deno.test("retransmitTimeout starts at 200 ms, doubles, and is capped", () => {
  const rows: [number, number][] = [[0, 200], [1, 400], [2, 800], [3, 1600], [4, 3000], [30, RTO_MAX_MS]];
  for (const [retries, ms] of rows) assert.equal(retransmitTimeout(retries), ms);
});

Deno.test("messaging delivers every message exactly once and in order at 30 % loss both ways", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  const link = new Link(a, b, 0.3, 0.05, 42);
  a.m.peerUp(B, EB, 0);
  b.m.peerUp(A, EA, 0);
  const rnd = seededRandom(7);
  const sent: string[] = [];
  for (let i = 0; i < 200; i++) {
    const t = text(i, rnd);
    sent.push(t);
    a.m.send(B, t, link.now);
    if (i % 10 === 0) link.run(5);
  }
  assert.ok(link.run(600_000, () => a.m.pending().length === 0), "all acknowledged");
  link.run(GAP_WAIT_MS * 2);
  const got = inbox(b);
  assert.deepEqual(got.map((m) => m.text), sent);
  assert.deepEqual(got.map((m) => m.seq), sent.map((_, i) => i + 1));
  assert.ok(got.every((m) => m.gapBefore === 0 && !m.late), "no gaps: nothing was given up on");
  assert.equal(a.store.outbox().length, 0);
  assert.ok(a.store.history({ limit: 1000 }).every((m) => m.status === "delivered"));
  assert.ok(link.lost > 100, `the link lost ${link.lost} datagrams`);
  assert.ok(b.m.counters.duplicates > 0, "duplicates were seen, acked and dropped");
  a.store.close();
  b.store.close();
});

Deno.test("messaging delivers 3,000 messages queued at once in order, the outbox shrinking as acks come", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  const link = new Link(a, b, 0.05, 0, 9);
  a.m.peerUp(B, EB, 0);
  b.m.peerUp(A, EA, 0);
  const sent = Array.from({ length: 3000 }, (_, i) => `queued ${i}`);
  for (const t of sent) a.m.send(B, t, link.now);
  assert.equal(a.m.pending().length, 3000);
  link.run(60_000, () => a.m.pending(B).length < 1500);
  const half = a.m.pending(B);
  assert.ok(half.length > 0 && half.length < 1500);
  const order = half.map((m) => m.seq);
  assert.deepEqual(order, [...order].sort((x, y) => x - y), "what is left stays in sequence order");
  assert.ok(half.every((m) => m.status !== "delivered"), "nothing acknowledged is still pending");
  assert.ok(link.run(600_000, () => a.m.pending().length === 0), "all acknowledged");
  assert.deepEqual(inbox(b).map((m) => m.text), sent);
  assert.ok(a.store.history({ limit: 5000 }).every((m) => m.status === "delivered"));
  a.store.close();
  b.store.close();
});

Deno.test("timeOrderedId: 32 hex characters, sorting by send time, unique within a millisecond", () => {
  const t = 1_800_000_000_000;
  const ids = [t, t, t + 1, t + 1000, t + 86_400_000].map(timeOrderedId);
  for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
  assert.deepEqual([...ids].sort(), ids.slice(0, 2).sort().concat(ids.slice(2)));
  assert.notEqual(ids[0], ids[1]);
  assert.equal(ids[0]!.slice(0, 12), t.toString(16).padStart(12, "0"));
  assert.equal(new Set(Array.from({ length: 10_000 }, () => timeOrderedId(t))).size, 10_000);
});

Deno.test("messaging sends times the wire accepts even when the clock is fractional", async () => {
  const store = await Store.open(Deno.makeTempDirSync());
  // As the daemon does: performance.now()-based monotonic time mapped to the wall clock, rounded.
  const m = new Messaging({ self: { id: A, incarnation: 1 }, store, wall: (t) => Math.round(WALL0 + t + 0.25) });
  m.peerUp(B, EB, 0.123);
  m.send(B, "x", 1.789);
  const p = decodePacket(m.drainTransmits()[0]!.bytes);
  assert.ok(p.ok, "a fragment built from fractional times decodes");
  store.close();
});

Deno.test("messaging acks a duplicate and does not store it twice", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  a.m.peerUp(B, EB, 0);
  a.m.send(B, "hello", 0);
  const [t] = a.m.drainTransmits();
  const pkt = decodePacket(t!.bytes);
  assert.ok(pkt.ok && pkt.value.kind === "msg");
  for (let i = 0; i < 3; i++) b.m.handlePacket(pkt.value as Msg, EA, 1 + i);
  const acks = b.m.drainTransmits().map((x) => decodePacket(x.bytes));
  assert.equal(acks.length, 3, "each copy is acknowledged");
  for (const ack of acks) assert.ok(ack.ok && ack.value.kind === "ack" && ack.value.done);
  assert.equal(inbox(b).length, 1);
  assert.equal(b.m.counters.duplicates, 2);
  // Also after a restart of the receiver: the de-dup record is on disk.
  b.store.close();
  const b2 = await side(B, EB, b.dir, 2);
  b2.m.handlePacket(pkt.value as Msg, EA, 10);
  assert.equal(inbox(b2).length, 1);
  assert.equal(b2.m.counters.duplicates, 1);
  a.store.close();
  b2.store.close();
});

Deno.test("messaging re-sends only the lost fragment of a long message, whichever it is", async () => {
  const payload = "0123456789".repeat(100); // 1000 bytes, 10 fragments of 100
  for (let lostIndex = 0; lostIndex < 10; lostIndex++) {
    const a = await side(A, EA);
    const b = await side(B, EB);
    a.m.peerUp(B, EB, 0);
    a.m.send(B, payload, 0);
    const frags = a.m.drainTransmits();
    assert.equal(frags.length, 10);
    for (const [i, f] of frags.entries()) {
      if (i === lostIndex) continue;
      const p = decodePacket(f.bytes);
      assert.ok(p.ok && p.value.kind === "msg");
      b.m.handlePacket(p.value, EA, 1);
    }
    const acks = b.m.drainTransmits();
    let again;
    if (lostIndex < 9) {
      // The round's last fragment arrived: its bitmap shows the gap, and the
      // sender re-sends just that fragment at once.
      assert.equal(acks.length, 1);
      const ack = decodePacket(acks[0]!.bytes);
      assert.ok(ack.ok && ack.value.kind === "ack" && !ack.value.done);
      a.m.handlePacket(ack.value, EB, 2);
      again = a.m.drainTransmits().map((f) => decodePacket(f.bytes));
    } else {
      // The last fragment itself was lost: no bitmap came, so the timer
      // fires and the sender probes with that fragment alone.
      assert.equal(acks.length, 0);
      a.m.handleTimeout(a.m.pollTimeout()!);
      again = a.m.drainTransmits().map((f) => decodePacket(f.bytes));
    }
    assert.equal(again.length, 1, `lost fragment ${lostIndex}: one re-sent`);
    assert.ok(again[0]!.ok && again[0]!.value.kind === "msg" && again[0]!.value.index === lostIndex);
    b.m.handlePacket(again[0]!.value as Msg, EA, 300);
    assert.equal(inbox(b)[0]?.text, payload);
    assert.equal(a.m.counters.fragmentsRetransmitted, 1);
    a.store.close();
    b.store.close();
  }
});

Deno.test("messaging re-sends fragments a receiver had acknowledged and then lost (it started over from disk)", async () => {
  const payload = "0123456789".repeat(100); // 10 fragments of 100
  const a = await side(A, EA);
  const b = await side(B, EB);
  a.m.peerUp(B, EB, 0);
  a.m.send(B, payload, 0);
  const frags = a.m.drainTransmits().map((f) => decodePacket(f.bytes));
  // Fragments 5–9 arrive; B's bitmap tells A so.
  for (const p of frags.slice(5)) b.m.handlePacket(p.ok ? p.value as Msg : assert.fail(), EA, 1);
  const ack = decodePacket(b.m.drainTransmits()[0]!.bytes);
  assert.ok(ack.ok && ack.value.kind === "ack");
  a.m.handlePacket(ack.value, EB, 2);
  a.m.drainTransmits(); // the fast re-send of 0–4: lost
  // B's messaging starts over from its store (as after a failed commit): its half message is gone.
  const b2 = new Messaging({
    self: { id: B, incarnation: 1 },
    store: b.store,
    wall: (t) => WALL0 + t,
    fragmentPayload: 100,
  });
  const link = new Link(a, { ...b, m: b2 });
  assert.ok(link.run(60_000, () => a.m.pending().length === 0), "acknowledged in the end");
  assert.equal(inbox(b)[0]?.text, payload);
  a.store.close();
  b.store.close();
});

Deno.test("messaging keeps messages queued while the peer is away and sends them when it is back", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  const link = new Link(a, b);
  for (let i = 0; i < 5; i++) a.m.send(B, `while away ${i}`, link.now);
  assert.deepEqual(a.m.drainEvents().map((e) => e.type), ["queued", "queued", "queued", "queued", "queued"]);
  link.run(60_000);
  assert.equal(link.delivered, 0, "nothing is sent to a peer not in the roster");
  a.m.peerUp(B, EB, link.now);
  link.run(100, () => a.m.pending().length === 0);
  assert.deepEqual(inbox(b).map((m) => m.text), [0, 1, 2, 3, 4].map((i) => `while away ${i}`));
  // It leaves again with messages unacknowledged: they wait, then go on rejoin.
  a.m.peerDown(B);
  a.m.send(B, "after it left", link.now);
  link.run(60_000);
  assert.equal(inbox(b).length, 5);
  a.m.peerUp(B, EB, link.now);
  link.run(100, () => a.m.pending().length === 0);
  assert.equal(inbox(b).at(-1)!.text, "after it left");
  a.store.close();
  b.store.close();
});

Deno.test("messaging resumes the outbox after the sender restarts", async () => {
  const a = await side(A, EA);
  a.m.send(B, "survives a restart", 0);
  a.store.close();
  const a2 = await side(A, EA, a.dir, 2);
  const b = await side(B, EB);
  const link = new Link(a2, b);
  assert.equal(a2.m.pending().length, 1);
  a2.m.peerUp(B, EB, 0);
  link.run(100, () => a2.m.pending().length === 0);
  assert.deepEqual(inbox(b).map((m) => m.text), ["survives a restart"]);
  a2.store.close();
  b.store.close();
});

Deno.test("messaging holds a message behind a gap, shows it when the gap fills, and marks a gap never filled", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  a.m.peerUp(B, EB, 0);
  const pkts = ["one", "two", "three"].map((t) => {
    a.m.send(B, t, 0);
    const p = decodePacket(a.m.drainTransmits()[0]!.bytes);
    assert.ok(p.ok && p.value.kind === "msg");
    return p.value as Msg;
  });
  // "three" first: held (acknowledged, stored, not shown).
  b.m.handlePacket(pkts[2]!, EA, 1);
  assert.equal(inbox(b).length, 0);
  assert.equal(b.store.heldMessages().length, 1);
  // "one": shown; "two" still missing, so "three" stays held.
  b.m.handlePacket(pkts[0]!, EA, 2);
  assert.deepEqual(inbox(b).map((m) => m.text), ["one"]);
  // "two" never comes: after the gap wait, "three" is shown with a marker.
  assert.equal(b.m.pollTimeout(), 2 + GAP_WAIT_MS, "the wait starts over with each gap");
  b.m.handleTimeout(2 + GAP_WAIT_MS);
  const shown = inbox(b);
  assert.deepEqual(shown.map((m) => [m.text, m.gapBefore]), [["one", 0], ["three", 1]]);
  // "two" arrives at last: shown, flagged late, not lost.
  b.m.handlePacket(pkts[1]!, EA, 2 + GAP_WAIT_MS);
  assert.deepEqual(inbox(b).map((m) => [m.text, m.late]), [["one", false], ["three", false], ["two", true]]);
  a.store.close();
  b.store.close();
});

Deno.test("messaging waits for a gap as long as the sender shows it still holds the missing message", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  a.m.peerUp(B, EB, 0);
  const pkts = ["one", "two", "three"].map((t) => {
    a.m.send(B, t, 0);
    const p = decodePacket(a.m.drainTransmits()[0]!.bytes);
    assert.ok(p.ok && p.value.kind === "msg");
    return p.value as Msg;
  });
  b.m.handlePacket(pkts[1]!, EA, 1); // "two" ahead of "one": held
  // The sender keeps retrying: every copy of "three" carries base 1 ("one" is
  // still pending there), so the gap is never skipped, however long it takes.
  for (let t = 5000; t <= 60_000; t += 5000) {
    b.m.handlePacket({ ...pkts[2]!, retry: t }, EA, t);
    b.m.handleTimeout(t);
  }
  assert.equal(inbox(b).length, 0, "nothing shown out of order");
  b.m.handlePacket(pkts[0]!, EA, 61_000);
  assert.deepEqual(inbox(b).map((m) => [m.text, m.gapBefore, m.late]), [
    ["one", 0, false],
    ["two", 0, false],
    ["three", 0, false],
  ]);
  a.store.close();
  b.store.close();
});

Deno.test("messaging keeps held messages across a receiver restart", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  a.m.peerUp(B, EB, 0);
  const pkts = ["one", "two"].map((t) => {
    a.m.send(B, t, 0);
    return decodePacket(a.m.drainTransmits()[0]!.bytes);
  });
  b.m.handlePacket(pkts[1]!.ok ? pkts[1]!.value as Msg : assert.fail(), EA, 1);
  b.store.close();
  const b2 = await side(B, EB, b.dir, 2);
  b2.m.handlePacket(pkts[0]!.ok ? pkts[0]!.value as Msg : assert.fail(), EA, 2);
  assert.deepEqual(inbox(b2).map((m) => m.text), ["one", "two"]);
  a.store.close();
  b2.store.close();
});

Deno.test("messaging does not acknowledge a message it could not store, and the retry then gets it", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  const link = new Link(a, b);
  a.m.peerUp(B, EB, 0);
  const release = b.store.release.bind(b.store);
  b.store.release = () => {
    throw new StoreError("Cannot store the message: database or disk is full");
  };
  a.m.send(B, "disk full", 0);
  link.run(1000);
  assert.equal(inbox(b).length, 0);
  assert.equal(a.m.pending().length, 1, "not acknowledged, so still pending at the sender");
  assert.ok(b.m.drainEvents().some((e) => e.type === "store-error" && /disk is full/.test(e.error)));
  b.store.release = release;
  link.run(10_000, () => a.m.pending().length === 0);
  assert.deepEqual(inbox(b).map((m) => m.text), ["disk full"]);
  a.store.close();
  b.store.close();
});

Deno.test("messaging refuses texts over 64 KiB and messages to itself, storing nothing", async () => {
  const a = await side(A, EA);
  assert.throws(() => a.m.send(B, "x".repeat(65_537), 0), /limit is 65536 bytes/);
  assert.throws(() => a.m.send(A, "me", 0), /itself/);
  assert.equal(a.store.history().length, 0);
  // Exactly the limit is fine, however small the fragments (at most 128 of them).
  a.m.peerUp(B, EB, 0);
  a.m.send(B, "x".repeat(65_536), 0);
  assert.equal(a.m.drainTransmits().length, 128);
  a.store.close();
});

Deno.test("messaging ignores a message for another node and an ack from a node that is not the recipient", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  a.m.peerUp("c".repeat(32), EB, 0);
  a.m.send("c".repeat(32), "for c", 0);
  const p = decodePacket(a.m.drainTransmits()[0]!.bytes);
  assert.ok(p.ok && p.value.kind === "msg");
  assert.equal(b.m.handlePacket(p.value, EA, 1), "not-for-me");
  assert.equal(inbox(b).length, 0);
  // b forges a "done" for a's message to c: ignored.
  const forged = encodePacket({
    kind: "ack",
    id: B,
    incarnation: 1,
    messageId: p.value.messageId,
    count: 1,
    received: new Uint8Array(1),
    done: true,
  });
  const f = decodePacket(forged);
  assert.ok(f.ok && f.value.kind === "ack");
  a.m.handlePacket(f.value, EB, 2);
  assert.equal(a.m.pending().length, 1);
  a.store.close();
  b.store.close();
});

Deno.test("messaging reports a message the peer refuses as failed and stops retrying it", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  a.m.peerUp(B, EB, 0);
  a.m.send(B, "ok", 0);
  const p = decodePacket(a.m.drainTransmits()[0]!.bytes);
  assert.ok(p.ok && p.value.kind === "msg");
  // Corrupt the payload into invalid UTF-8 (same length) as a broken sender would.
  const bad = { ...p.value, payload: new Uint8Array([0xff, 0xfe]) };
  b.m.handlePacket(bad, EA, 1);
  const ack = decodePacket(b.m.drainTransmits()[0]!.bytes);
  assert.ok(ack.ok && ack.value.kind === "ack" && ack.value.rejected === "bad-utf8");
  a.m.handlePacket(ack.value, EB, 2);
  assert.equal(a.m.pending().length, 0);
  assert.equal(a.store.history()[0]!.status, "failed");
  assert.equal(inbox(b).length, 0);
  a.store.close();
  b.store.close();
});

Deno.test("a batch is stored in one transaction: all in order, delivered once each, a bad item refused alone", async () => {
  const a = await side(A, EA);
  const b = await side(B, EB);
  const link = new Link(a, b);
  a.m.peerUp(B, EB, 0);
  const texts = Array.from({ length: 300 }, (_, i) => `batch ${i}`);
  const items = [
    ...texts.slice(0, 100).map((text) => ({ to: B, text })),
    { to: A, text: "to myself" },
    { to: B, text: "x".repeat(65_537) },
    ...texts.slice(100).map((text) => ({ to: B, text })),
  ];
  const out = a.m.sendMany(items, 0);
  assert.equal(out.length, items.length);
  assert.ok(out[100] instanceof RangeError && /itself/.test(out[100].message));
  assert.ok(out[101] instanceof RangeError && /limit is 65536 bytes/.test(out[101].message));
  const stored = out.filter((r) => !(r instanceof Error)) as { seq: number; text: string }[];
  assert.deepEqual(stored.map((m) => m.text), texts);
  assert.deepEqual(stored.map((m) => m.seq), texts.map((_, i) => i + 1), "numbered in the order posted");
  assert.ok(link.run(30_000, () => a.m.pending().length === 0));
  assert.deepEqual(inbox(b).map((m) => m.text), texts, "delivered once each, in order");
  a.store.close();
  b.store.close();
});

Deno.test("a batch the store refuses stores none of it, sends nothing, and reports the error for each item", async () => {
  const a = await side(A, EA);
  a.m.peerUp(B, EB, 0);
  // As in the daemon: writes join a group transaction, each call in a savepoint of it.
  a.store.startGroupCommit(() => {});
  const many = a.store.insertOutgoingMany.bind(a.store);
  // The disk fills on the 3rd insert of the batch: the first two are rolled back with it.
  let n = 0;
  const one = a.store.insertOutgoing.bind(a.store);
  a.store.insertOutgoingMany = (rows) =>
    a.store.transaction("store the messages", () =>
      rows.map((r) => {
        if (++n === 3) throw new Error("database or disk is full");
        return one(r);
      }));
  const out = a.m.sendMany([1, 2, 3, 4].map((i) => ({ to: B, text: `full ${i}` })), 0);
  a.store.commit();
  assert.ok(out.every((r) => r instanceof StoreError && /disk is full/.test(r.message)), String(out));
  assert.equal(a.store.history().length, 0, "nothing of the batch is stored");
  assert.equal(a.m.pendingCount(), 0);
  assert.deepEqual(a.m.drainTransmits(), [], "nothing is sent");
  // The next batch goes, numbered from 1: the failed one took no sequence numbers.
  a.store.insertOutgoingMany = many;
  const again = a.m.sendMany([{ to: B, text: "after" }], 1);
  a.store.commit();
  assert.equal((again[0] as { seq: number }).seq, 1);
  assert.equal(a.m.pendingCount(), 1);
  assert.deepEqual(a.store.history().map((m) => m.text), ["after"]);
  a.store.close();
});
