import assert from "node:assert/strict";
import { announceDelay, Discovery, replyDelay, scaledInterval } from "../../src/protocol/discovery.ts";
import { SimLan } from "../../src/sim/sim.ts";
import { decodePacket, encodePacket } from "../../src/wire/mod.ts";

Deno.test("announceDelay jitters the interval by ±25 %", () => {
  const rows: [number, number, number][] = [
    [2000, 0, 1500],
    [2000, 0.5, 2000],
    [2000, 0.999999, 2500],
    [100, 0.25, 88],
  ];
  for (const [interval, r, expected] of rows) assert.equal(announceDelay(interval, r), expected);
});

Deno.test("replyDelay answers at once on a small LAN and spreads replies on a large one", () => {
  const rows: [number, number, number][] = [
    [1, 0.9, 0],
    [32, 0.9, 0],
    [33, 0, 0],
    [100, 0.5, 100],
    [1000, 0.5, 1000],
    [5000, 0.999, 1998],
  ];
  for (const [peers, r, expected] of rows) assert.equal(replyDelay(peers, r), expected);
});

Deno.test("the announce interval keeps every host under the budget at any roster size", () => {
  assert.equal(scaledInterval(2000, 0, 50), 2000);
  assert.equal(scaledInterval(2000, 100, 50), 2000, "100 peers at 2 s: 50 hellos/s");
  assert.equal(scaledInterval(2000, 101, 50), 3000, "rounded up to whole seconds");
  assert.equal(scaledInterval(2000, 999, 50), 20_000);
  assert.equal(scaledInterval(500, 10, 50), 500, "a short configured interval is kept while it fits");
  for (const peers of [1, 10, 99, 100, 101, 250, 999, 5000]) {
    const ivl = scaledInterval(2000, peers, 50);
    assert.ok(peers / (ivl / 1000) <= 50, `${peers} peers every ${ivl} ms`);
  }
});

Deno.test("discovery sends the startup burst then announces on a jittered interval", () => {
  const d = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "n", hostname: "h", version: "v", port: 40000, httpPort: 0 },
    intervalMs: 1000,
    random: () => 0.5,
  });
  d.setTargets([{ address: "198.18.0.255", port: 47474 }], [{ address: "198.18.5.5", port: 47475 }]);
  d.start(0);
  const sends: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t = d.pollTimeout()!;
    d.handleTimeout(t);
    const out = d.drainTransmits();
    assert.deepEqual(out.map((o) => [o.via, o.to.address]), [["broadcast", "198.18.0.255"], ["unicast", "198.18.5.5"]]);
    sends.push(t);
  }
  assert.deepEqual(sends, [0, 100, 500, 1500, 2500, 3500]);
});

Deno.test("discovery announces at once to a target that appears later", () => {
  const d = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "n", hostname: "h", version: "v", port: 40000, httpPort: 0 },
  });
  d.setTargets([{ address: "198.18.0.255", port: 47474 }], []);
  d.start(0);
  d.handleTimeout(0);
  d.drainTransmits();
  d.setTargets([{ address: "198.18.0.255", port: 47474 }, { address: "198.18.1.255", port: 47474 }], []);
  assert.deepEqual(d.drainTransmits().map((t) => t.to.address), ["198.18.1.255"]);
});

Deno.test("discovery answers a newcomer's hello by unicast to its advertised port, once", () => {
  const me = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "me", hostname: "h", version: "v", port: 40000, httpPort: 0 },
  });
  me.setTargets([], []);
  me.start(0);
  me.handleTimeout(0);
  const newcomer = encodePacket({
    kind: "hello",
    id: "2".repeat(32),
    incarnation: 1,
    name: "new",
    hostname: "h2",
    port: 41000,
    httpPort: 0,
    version: "v",
    interval: 2000,
    reply: false,
  });
  me.handleDatagram(newcomer, { address: "198.18.0.12", port: 47474 }, 10);
  const out = me.drainTransmits();
  assert.equal(out.length, 1);
  assert.equal(out[0]!.via, "unicast");
  assert.deepEqual(out[0]!.to, { address: "198.18.0.12", port: 41000 });
  const reply = decodePacket(out[0]!.bytes);
  assert.ok(reply.ok && reply.value.kind === "hello" && reply.value.reply);
  // Its next hello is a refresh, not a join: no second answer.
  me.handleDatagram(newcomer, { address: "198.18.0.12", port: 47474 }, 110);
  assert.equal(me.drainTransmits().length, 0);
  assert.deepEqual(me.drainEvents().map((e) => e.type), ["joined"]);
});

Deno.test("discovery counts malformed and own datagrams by reason", () => {
  const me = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "me", hostname: "h", version: "v", port: 40000, httpPort: 0 },
  });
  me.setTargets([{ address: "198.18.0.255", port: 47474 }], []);
  me.start(0);
  me.handleTimeout(0);
  const own = me.drainTransmits()[0]!.bytes;
  me.handleDatagram(own, { address: "198.18.0.11", port: 47474 }, 1);
  me.handleDatagram(new Uint8Array([1, 2, 3, 4, 5, 6, 7]), { address: "198.18.0.9", port: 9 }, 1);
  me.handleDatagram(new Uint8Array(2000), { address: "198.18.0.9", port: 9 }, 1);
  assert.equal(me.counters.dropped.self, 1);
  assert.equal(me.counters.dropped["bad-magic"], 1);
  assert.equal(me.counters.dropped.oversize, 1);
  assert.equal(me.counters.datagramsIn, 3);
  assert.equal(me.roster.size, 0);
});

Deno.test("discovery answers a ping from an unknown node with a pong and a hello", () => {
  const me = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "me", hostname: "h", version: "v", port: 40000, httpPort: 0 },
  });
  me.start(0);
  me.handleDatagram(
    encodePacket({ kind: "ping", id: "3".repeat(32), incarnation: 1, nonce: 9 }),
    { address: "198.18.0.13", port: 45000 },
    5,
  );
  const kinds = me.drainTransmits().map((t) => [t.kind, t.to.port]);
  assert.deepEqual(kinds, [["pong", 45000], ["hello", 45000]]);
});

/** A peer's hello (a reply, so it is not answered), announcing every second. */
function helloFrom(id: string, port: number): Uint8Array {
  return encodePacket({
    kind: "hello",
    id,
    incarnation: 1,
    name: "peer",
    hostname: "h2",
    port,
    httpPort: 0,
    version: "v",
    interval: 1000,
    reply: true,
  });
}

Deno.test("discovery remembers the random nonce of each probe until its pong comes or it times out", () => {
  const me = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "me", hostname: "h", version: "v", port: 40000, httpPort: 0 },
    intervalMs: 1000,
    probeTimeoutMs: 500,
  });
  me.start(0);
  const peer = "2".repeat(32);
  const from = { address: "198.18.0.12", port: 45000 };
  const hello = (t: number) => me.handleDatagram(helloFrom(peer, from.port), from, t);
  hello(0);
  /** Steps time until a probe goes out; returns its nonce and when it went. */
  const probe = () => {
    let t = 0;
    while (true) {
      t = me.pollTimeout()!;
      me.handleTimeout(t);
      const ping = me.drainTransmits().map((x) => decodePacket(x.bytes)).find((d) => d.ok && d.value.kind === "ping");
      if (ping?.ok && ping.value.kind === "ping") return { nonce: ping.value.nonce, at: t };
    }
  };
  const nonces = new Set<number>();
  for (let round = 0; round < 3; round++) {
    const { nonce, at } = probe();
    nonces.add(nonce);
    const awaited = me.awaitedPong(from.address, at + 400)!;
    assert.deepEqual([awaited.id, awaited.nonce], [peer, nonce]);
    assert.equal(me.awaitedPong("198.18.0.99", at + 400), undefined, "only the probed address");
    // The pong answers it: nothing awaited any more.
    me.handleDatagram(encodePacket({ kind: "pong", id: peer, incarnation: 1, nonce }), from, at + 400);
    assert.equal(me.awaitedPong(from.address, at + 400), undefined);
    hello(at + 400);
  }
  assert.equal(nonces.size, 3, "a fresh random nonce each probe");
  // Unanswered, it is awaited until the probe is decided: past its timeout (500 ms) but before the roster
  // looked (a busy loop reads before its late timer fires), the pong is still the answer; once removed, not.
  const { at } = probe();
  assert.ok(me.awaitedPong(from.address, at + 499));
  assert.ok(me.awaitedPong(from.address, at + 501));
  me.handleTimeout(at + 501);
  assert.equal(me.drainEvents().filter((e) => e.type === "left").length, 1);
  assert.equal(me.awaitedPong(from.address, at + 501), undefined);
});

Deno.test("four nodes on a LAN list each other within one round trip of the last start", () => {
  const lan = new SimLan({ seed: 7 });
  for (let i = 0; i < 3; i++) lan.addNode();
  lan.runFor(3000);
  assert.ok(lan.converged());
  const newcomer = lan.addNode();
  const start = lan.now;
  assert.ok(lan.runUntil(start + 5000, () => lan.converged()));
  // Latency is 0.2 ms one way: hello out, reply back.
  assert.ok(lan.now - start < 1, `converged after ${lan.now - start} ms`);
  assert.equal(newcomer.discovery.roster.size, 3);
});

Deno.test("a stopped node leaves every roster at once with reason goodbye", () => {
  const lan = new SimLan({ seed: 3 });
  const nodes = [lan.addNode(), lan.addNode(), lan.addNode(), lan.addNode()];
  lan.runFor(3000);
  const t0 = lan.now;
  lan.stop(nodes[1]!);
  lan.runFor(10);
  for (const n of [nodes[0]!, nodes[2]!, nodes[3]!]) {
    assert.equal(n.discovery.roster.size, 2);
    const left = n.events.find((e) => e.event.type === "left")!;
    assert.ok(left.at - t0 < 1);
    assert.equal(left.event.type === "left" && left.event.reason, "goodbye");
  }
});

Deno.test("a crashed node is removed within 3 intervals plus the probe timeout", () => {
  const lan = new SimLan({ seed: 11 });
  const nodes = [0, 1, 2, 3].map(() => lan.addNode({ intervalMs: 2000 }));
  lan.runFor(10_000);
  const t0 = lan.now;
  lan.crash(nodes[2]!);
  lan.runFor(10_000);
  for (const n of nodes.filter((n) => n !== nodes[2])) {
    const left = n.events.find((e) => e.event.type === "left")!;
    assert.equal(left.event.type === "left" && left.event.reason, "timeout");
    // Last hello at most 2.5 s (interval + 25 % jitter) before the crash.
    assert.ok(left.at - t0 <= 3 * 2000 + 500, `detected after ${left.at - t0} ms`);
    assert.equal(n.discovery.roster.size, 2);
  }
});

Deno.test("a node whose cable is cut is expired everywhere and rejoins when it is back", () => {
  const lan = new SimLan({ seed: 5 });
  const nodes = [0, 1, 2].map(() => lan.addNode({ intervalMs: 1000 }));
  lan.runFor(5000);
  nodes[0]!.linkUp = false;
  lan.runFor(5000);
  assert.equal(nodes[1]!.discovery.roster.size, 1);
  assert.equal(nodes[2]!.discovery.roster.size, 1);
  assert.equal(nodes[0]!.discovery.roster.size, 0);
  nodes[0]!.linkUp = true;
  assert.ok(lan.runUntil(lan.now + 3000, () => lan.converged()));
});

Deno.test("a restarted node is seen as restarted, not as a second peer", () => {
  const lan = new SimLan({ seed: 9 });
  const nodes = [lan.addNode(), lan.addNode()];
  lan.runFor(3000);
  lan.crash(nodes[1]!);
  lan.restart(nodes[1]!);
  lan.runFor(100);
  assert.equal(nodes[0]!.discovery.roster.size, 1);
  assert.equal(nodes[0]!.discovery.roster.get(nodes[1]!.discovery.self.id)!.incarnation, 2);
  assert.ok(nodes[0]!.events.some((e) => e.event.type === "restarted"));
  assert.equal(nodes[1]!.discovery.roster.size, 1);
});

Deno.test("ten nodes at 10 % loss are converged at every check of a simulated hour", () => {
  const lan = new SimLan({ seed: 21, loss: 0.1 });
  const nodes = Array.from({ length: 10 }, () => lan.addNode());
  // A removal needs 3 lost hellos and a lost probe in a row: rare at 10 %
  // loss, and a wrongly removed peer is back at its next hello. So sample
  // each minute: at most a few pairs may be apart, never for long.
  let apart = 0;
  for (let minute = 1; minute <= 60; minute++) {
    lan.runFor(60_000);
    if (!lan.converged()) apart++;
  }
  assert.ok(apart <= 3, `not converged at ${apart} of 60 checks`);
  for (const n of nodes) assert.equal(n.discovery.roster.size, 9);
});

Deno.test("discovery keeps each peer's clock offset from the send time in its hellos", () => {
  const self = (id: string) => ({
    id,
    incarnation: 1,
    name: id[0]!,
    hostname: "h",
    version: "v",
    port: 40000,
    httpPort: 0,
  });
  // B's clock is 95 s ahead of A's.
  const a = new Discovery({ self: self("1".repeat(32)), wall: (t) => 1_800_000_000_000 + t });
  const b = new Discovery({ self: self("2".repeat(32)), wall: (t) => 1_800_000_095_000 + t });
  const old = new Discovery({ self: self("3".repeat(32)) }); // a version without send times
  for (const d of [a, b, old]) {
    d.setTargets([{ address: "198.18.0.255", port: 47474 }], []);
    d.start(0);
  }
  b.handleTimeout(0);
  old.handleTimeout(0);
  for (const t of b.drainTransmits()) a.handleDatagram(t.bytes, { address: "198.18.0.12", port: 47474 }, 3);
  for (const t of old.drainTransmits()) a.handleDatagram(t.bytes, { address: "198.18.0.13", port: 47474 }, 3);
  assert.equal(a.roster.get("2".repeat(32))!.clockOffset, 95_000 - 3);
  assert.equal(a.roster.get("3".repeat(32))!.clockOffset, undefined);
});

Deno.test("a probe pings three times within its timeout, so one lost ping or pong does not remove a live peer", () => {
  const me = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "me", hostname: "h", version: "v", port: 40000, httpPort: 0 },
    intervalMs: 1000,
    probeTimeoutMs: 600,
  });
  me.start(0);
  const peer = "2".repeat(32);
  const from = { address: "198.18.0.12", port: 45000 };
  me.handleDatagram(helloFrom(peer, from.port), from, 0);
  // Step the clock until the peer is stale, collecting the pings and when they went.
  // A flood under the peer's address spends the look-past budget after each ping (the driver counts
  // `examined`); each new ping starts a fresh one, since the last pong may have been lost in that flood.
  const pings: number[] = [];
  const budgetAtPing: number[] = [];
  let t = 0;
  while (pings.length < 3 && t < 10_000) {
    t = me.pollTimeout()!;
    me.handleTimeout(t);
    for (const x of me.drainTransmits()) {
      if (x.kind !== "ping") continue;
      pings.push(t);
      const awaited = me.awaitedPong(from.address, t)!;
      budgetAtPing.push(awaited.examined);
      awaited.examined = 5_000;
    }
  }
  assert.deepEqual(pings.map((p) => p - pings[0]!), [0, 200, 400]);
  assert.deepEqual(budgetAtPing, [0, 0, 0]);
  // The first two were lost; the pong to the third keeps the peer.
  const nonce = me.awaitedPong(from.address, t)!.nonce;
  me.handleDatagram(encodePacket({ kind: "pong", id: peer, incarnation: 1, nonce }), from, t + 1);
  me.handleTimeout(pings[0]! + 700);
  assert.equal(me.drainEvents().filter((e) => e.type === "left").length, 0);
  assert.equal(me.roster.get(peer)?.state, "alive");
});

Deno.test("under a flood from the probed address a probe pings ten times, and a late loop keeps the pong awaited", () => {
  const me = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "me", hostname: "h", version: "v", port: 40000, httpPort: 0 },
    intervalMs: 1000,
    probeTimeoutMs: 500,
  });
  me.start(0);
  const peer = "2".repeat(32);
  const from = { address: "198.18.0.12", port: 45000 };
  me.handleDatagram(helloFrom(peer, from.port), from, 0);
  const pings: number[] = [];
  let t = 0;
  while (pings.length === 0) {
    t = me.pollTimeout()!;
    me.handleTimeout(t);
    for (const x of me.drainTransmits()) if (x.kind === "ping") pings.push(t);
  }
  // The driver saw datagrams from the address past its rate limit: our pongs compete with them in the socket buffer.
  me.awaitedPong(from.address, t)!.flooded = true;
  while (t < pings[0]! + 500) {
    t = me.pollTimeout()!;
    if (t >= pings[0]! + 500) break;
    me.handleTimeout(t);
    for (const x of me.drainTransmits()) if (x.kind === "ping") pings.push(t);
  }
  assert.deepEqual(pings.map((p) => p - pings[0]!), [0, 50, 100, 150, 200, 250, 300, 350, 400, 450]);
  // The deadline check comes 300 ms late (the loop was starved): the probe stays open, its pong still let through.
  const deadline = pings[0]! + 500;
  me.handleTimeout(deadline + 300, 300);
  assert.equal(me.drainEvents().filter((e) => e.type === "left").length, 0);
  const awaited = me.awaitedPong(from.address, deadline + 310);
  assert.ok(awaited, "still awaited after the late check");
  me.handleDatagram(
    encodePacket({ kind: "pong", id: peer, incarnation: 1, nonce: awaited.nonce }),
    from,
    deadline + 310,
  );
  assert.equal(me.roster.get(peer)?.state, "alive");
  assert.equal(me.awaitedPong(from.address, deadline + 310), undefined, "answered: no longer awaited");
});
