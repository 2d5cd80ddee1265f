/**
 * The failure detector (src/protocol/failure_detector.ts) on the simulated
 * LAN, told the time: a crash found within seconds, a pause refuted, and the
 * edges — hostile suspicions, a claim against a live peer, a lost
 * refutation, a previous-version peer, a one-way link, a restart, a
 * partition that heals, loss for an hour.
 */
import assert from "node:assert/strict";
import { SimLan, type SimNode } from "../../src/sim/sim.ts";
import { runPartition } from "../../src/sim/scale_sim.ts";
import { Discovery } from "../../src/protocol/discovery.ts";
import { SUSPICION_MS } from "../../src/protocol/failure_detector.ts";
import { decodePacket, encodePacket, type Packet } from "../../src/wire/mod.ts";

function lanOf(n: number, o: { loss?: number; seed?: number; legacy?: number[]; intervalMs?: number } = {}): SimLan {
  const lan = new SimLan({ seed: o.seed ?? 3, loss: o.loss ?? 0 });
  for (let i = 0; i < n; i++) {
    lan.addNode({ failureDetector: !(o.legacy ?? []).includes(i), intervalMs: o.intervalMs });
    lan.runFor(50);
  }
  lan.runFor(10_000);
  assert.ok(lan.converged(), "the LAN converged");
  return lan;
}

const idOf = (n: SimNode) => n.discovery.self.id;
const leftEvents = (lan: SimLan, victim: SimNode) =>
  lan.nodes.flatMap((n) => n.events.filter((e) => e.event.type === "left" && e.event.peer.id === idOf(victim)));
const sum = (lan: SimLan, f: (n: SimNode) => number) => lan.nodes.reduce((a, n) => a + f(n), 0);

/** A suspicion of `suspect` as a (hostile or mistaken) `from` would broadcast it. */
function suspicionFrom(lan: SimLan, from: SimNode, suspect: SimNode, incarnation?: number): void {
  lan.inject(from, {
    kind: "suspect",
    id: idOf(from),
    incarnation: from.discovery.self.incarnation,
    suspect: idOf(suspect),
    suspectIncarnation: incarnation ?? suspect.discovery.self.incarnation,
    nonce: 7,
  });
}

Deno.test("a crash is found and removed by every host, by the detector, long before announces would", () => {
  // Announcing every 20 s (as 1,000 hosts do): expiry alone would take a minute.
  const lan = lanOf(12, { intervalMs: 20_000 });
  const victim = lan.nodes[4]!;
  const t0 = lan.now;
  lan.crash(victim);
  const gone = lan.runUntil(
    t0 + 30_000,
    () => lan.nodes.every((n) => n === victim || !n.discovery.roster.get(idOf(victim))),
  );
  assert.ok(gone, "every host removed it");
  const left = leftEvents(lan, victim);
  assert.equal(left.length, 11);
  assert.ok(lan.now - t0 < 3 * 20_000, "before expiry could have");
  assert.equal(sum(lan, (n) => n.discovery.counters.removedAfterSuspicion), 11, "each removed it after a suspicion");
  assert.ok(sum(lan, (n) => n.discovery.counters.detector.suspicionsRaised) >= 1);
  assert.equal(lan.falseRemovals.length, 0);
});

Deno.test("a host paused for 5 s (SIGSTOP) is suspected, refutes on resume, and is removed by no one", () => {
  const lan = lanOf(8);
  const paused = lan.nodes[3]!;
  lan.pause(paused);
  lan.runFor(5000);
  assert.ok(
    lan.nodes.some((n) => n.discovery.detector!.suspected().has(idOf(paused))),
    "suspected while paused",
  );
  lan.resume(paused);
  lan.runFor(SUSPICION_MS + 10_000);
  assert.ok(paused.discovery.counters.detector.refutations >= 1, "it refuted");
  assert.ok(sum(lan, (n) => n.discovery.counters.detector.suspicionsRefuted) >= 1, "suspicions ended as refuted");
  assert.deepEqual(leftEvents(lan, paused), [], "no one removed it");
  assert.ok(lan.converged());
});

Deno.test("a hostile peer suspecting everyone every second removes no one: each suspect refutes", () => {
  const lan = lanOf(8);
  const hostile = lan.nodes[0]!;
  for (let t = 0; t < 30; t++) {
    for (const n of lan.nodes) if (n !== hostile) suspicionFrom(lan, hostile, n);
    lan.runFor(1000);
  }
  lan.runFor(SUSPICION_MS + 5000);
  for (const n of lan.nodes.slice(1)) {
    assert.ok(n.discovery.counters.detector.refutations >= 1, `node ${n.index} refuted`);
    assert.deepEqual(leftEvents(lan, n), [], `node ${n.index} was not removed`);
  }
  // One refutation round (three hellos, a second apart) at a time: a suspicion every second does not make
  // a suspect broadcast more than a hello a second.
  for (const n of lan.nodes.slice(1)) assert.ok(n.discovery.counters.detector.refutations <= 16);
  assert.ok(lan.converged());
});

Deno.test("a peer claiming a live one is dead does not get it removed, even when its refutations are all lost", () => {
  const lan = lanOf(6);
  const [liar, victim, judge] = [lan.nodes[0]!, lan.nodes[1]!, lan.nodes[2]!];
  // No hello of the victim reaches the judge (so none of its refutations): only its unicast answers do.
  lan.cut = (from, to, packet) => from === victim && to === judge && packet.kind === "hello";
  suspicionFrom(lan, liar, victim);
  lan.runFor(SUSPICION_MS + 5000);
  const c = judge.discovery.counters.detector;
  assert.ok(c.suspicionsTaken >= 1, "the judge took the suspicion");
  // Ended by what the victim sent to the judge's own socket (a pong, a ping), or by the judge's check ping.
  assert.ok(c.suspicionsRefuted + c.suspicionsChecked >= 1, "and settled it on its own evidence");
  assert.equal(judge.discovery.detector!.suspected().size, 0);
  assert.deepEqual(leftEvents(lan, victim), [], "no one removed the victim");
});

Deno.test("a refutation lost once is repeated: the suspicion ends refuted, not by a check", () => {
  const lan = lanOf(6);
  const [liar, victim] = [lan.nodes[0]!, lan.nodes[1]!];
  let dropped = 0;
  // The victim's first refutation (one broadcast hello) is lost everywhere.
  const t0 = lan.now;
  lan.cut = (from) => {
    if (from !== victim || lan.now > t0 + 10) return false;
    dropped++;
    return true;
  };
  suspicionFrom(lan, liar, victim);
  lan.runFor(SUSPICION_MS - 500);
  lan.cut = undefined;
  assert.ok(dropped > 0, "the first refutation was lost");
  const others = lan.nodes.filter((n) => n !== victim && n !== liar);
  for (const n of others) {
    assert.equal(n.discovery.detector!.suspected().has(idOf(victim)), false, `node ${n.index} holds no suspicion`);
    assert.ok(n.discovery.counters.detector.suspicionsRefuted >= 1, `node ${n.index} saw it refuted`);
    assert.equal(n.discovery.counters.detector.suspicionsChecked, 0, `node ${n.index} did not need to check`);
  }
  lan.runFor(10_000);
  assert.deepEqual(leftEvents(lan, victim), []);
});

Deno.test("a previous-version peer (no detector) is never removed while it answers, and is removed when it dies", () => {
  const lan = lanOf(6, { legacy: [2] });
  const old = lan.nodes[2]!;
  assert.equal(old.discovery.detector, undefined);
  // It ignores the new packets (counted as an unknown type) but answers pings: a suspicion of it is checked and kept.
  suspicionFrom(lan, lan.nodes[0]!, old);
  lan.runFor(SUSPICION_MS + 30_000);
  assert.deepEqual(leftEvents(lan, old), [], "kept while it answers pings");
  for (const n of lan.nodes) {
    if (n === old || n === lan.nodes[0]) continue;
    const c = n.discovery.counters.detector;
    assert.ok(c.suspicionsTaken >= 1 && c.suspicionsRefuted + c.suspicionsChecked >= 1, `node ${n.index} settled it`);
  }
  // The detector's probing reaches it as any peer: its crash is found.
  const t0 = lan.now;
  lan.crash(old);
  const gone = lan.runUntil(t0 + 60_000, () => lan.nodes.every((n) => n === old || !n.discovery.roster.get(idOf(old))));
  assert.ok(gone, "every host removed the crashed old peer");
  assert.equal(lan.falseRemovals.length, 0);
});

Deno.test("a previous-version node drops the detector's packets as an unknown type and is never asked to relay", () => {
  const lan = lanOf(5, { legacy: [1] });
  const old = lan.nodes[1]!;
  suspicionFrom(lan, lan.nodes[0]!, lan.nodes[3]!);
  lan.runFor(10);
  assert.ok(old.discovery.counters.dropped["unknown-type"] >= 1);
  lan.crash(lan.nodes[3]!);
  lan.runFor(20_000);
  assert.equal(old.discovery.counters.received.preq, 0, "no indirect probe request reached the old node");
  for (const n of lan.nodes) {
    if (n === old || !n.running) continue;
    const peer = n.discovery.roster.get(idOf(old))!;
    assert.equal(peer.failureDetector, false, "its hello says nothing of the detector");
  }
});

Deno.test("a one-way link (A cannot reach B, C can) keeps B: the indirect probes answer for it", () => {
  const lan = lanOf(5);
  const [a, b] = [lan.nodes[0]!, lan.nodes[1]!];
  lan.cut = (from, to) => from === a && to === b;
  lan.runFor(120_000);
  assert.ok(a.discovery.counters.detector.indirectAsked > 0, "A asked others to ping B");
  assert.ok(sum(lan, (n) => n.discovery.counters.detector.indirectRelayed) > 0, "and they relayed B's answer");
  assert.ok(a.discovery.roster.get(idOf(b)), "A still lists B");
  assert.deepEqual(leftEvents(lan, b), []);
  assert.equal(lan.falseRemovals.length, 0);
});

Deno.test("a node restarted with the same id: a suspicion of its old incarnation neither removes nor troubles it", () => {
  const lan = lanOf(6);
  const node = lan.nodes[2]!;
  const before = node.discovery.self.incarnation;
  lan.crash(node);
  lan.restart(node);
  assert.ok(node.discovery.self.incarnation > before, "the incarnation went forward");
  lan.runFor(3000);
  suspicionFrom(lan, lan.nodes[0]!, node, before);
  lan.runFor(SUSPICION_MS + 5000);
  assert.equal(node.discovery.counters.detector.refutations, 0, "an old incarnation's suspicion is not its own");
  for (const n of lan.nodes) {
    if (n === node) continue;
    assert.equal(n.discovery.roster.get(idOf(node))?.incarnation, node.discovery.self.incarnation);
  }
  assert.ok(lan.converged());
});

Deno.test("a partition that heals: each side drops the other within seconds and both re-join", () => {
  const r = runPartition({ nodes: 20, cutMs: 60_000 });
  assert.ok(r.otherSideRemovedMs !== undefined, "each side dropped the other during the cut");
  assert.ok(r.rejoinedMs !== undefined, "everyone lists everyone after the heal");
  assert.equal(r.falseRemovals, 0, "no one on one's own side was removed");
});

Deno.test("5 % loss for a simulated hour: no false removal", () => {
  const lan = lanOf(10, { loss: 0.05, seed: 9 });
  lan.runFor(3_600_000);
  assert.deepEqual(lan.falseRemovals.map((f) => [f.by.index, f.peer.index]), []);
  assert.ok(sum(lan, (n) => n.discovery.counters.detector.probePings) > 10 * 3 * 3000, "the detector probed all along");
  assert.ok(lan.converged());
});

Deno.test("the detector's packets: encoded and decoded; bad fields refused; a Discovery without it refuses them", () => {
  const packets: Packet[] = [
    { kind: "suspect", id: "a".repeat(32), incarnation: 3, suspect: "b".repeat(32), suspectIncarnation: 9, nonce: 5 },
    {
      kind: "preq",
      id: "a".repeat(32),
      incarnation: 3,
      target: "b".repeat(32),
      address: "198.18.0.7",
      port: 47475,
      nonce: 4_000_000_000,
    },
    { kind: "pack", id: "a".repeat(32), incarnation: 3, target: "b".repeat(32), nonce: 1 },
  ];
  for (const p of packets) {
    const d = decodePacket(encodePacket(p));
    assert.ok(d.ok);
    assert.deepEqual(d.value, p);
  }
  const bad = encodePacket({ ...packets[1], address: "not an address" } as Packet);
  const d = decodePacket(bad);
  assert.ok(!d.ok && d.reason === "bad-field");
  const plain = new Discovery({
    self: { id: "c".repeat(32), incarnation: 1, name: "c", hostname: "c", version: "t", port: 1, httpPort: 0 },
  });
  const r = plain.handleDatagram(encodePacket(packets[0]!), { address: "198.18.0.2", port: 1 }, 0);
  assert.ok(!r.ok && r.reason === "unknown-type");
});

Deno.test("an indirect probe request is relayed only from a known peer, to a known peer at its address, 32 at once", () => {
  const lan = lanOf(4, { intervalMs: 20_000 });
  const [asker, relay, target] = [lan.nodes[0]!, lan.nodes[1]!, lan.nodes[2]!];
  const relayTo = { address: relay.address, port: 47475 };
  const pingsBy = (n: SimNode) => n.discovery.counters.datagramsOut;
  const preq = (from: SimNode, address: string, nonce: number) =>
    lan.inject(from, {
      kind: "preq",
      id: idOf(from),
      incarnation: from.discovery.self.incarnation,
      target: idOf(target),
      address,
      port: 47475,
      nonce,
    }, relayTo);
  // A stranger whose hellos never reach the relay: not in its roster.
  const stranger = lan.addNode({ failureDetector: true });
  lan.cut = (from, to, packet) => from === stranger && to === relay && packet.kind === "hello";
  lan.runFor(5);
  assert.equal(relay.discovery.roster.get(idOf(stranger)), undefined);
  const quiet = pingsBy(relay);
  preq(stranger, target.address, 3);
  lan.runFor(1);
  assert.equal(pingsBy(relay), quiet, "nothing sent for a requester it does not know");
  // A victim address the target was never heard on: not pinged (no reflection towards any address).
  preq(asker, "198.18.0.200", 1);
  lan.runFor(1);
  assert.equal(pingsBy(relay), quiet, "nothing sent for an address the target is not at");
  // From a requester the relay knows, to the target's own address: pinged, and the answer relayed.
  const relayed = relay.discovery.counters.detector.indirectRelayed;
  preq(asker, target.address, 2);
  lan.runFor(5);
  assert.equal(relay.discovery.counters.detector.indirectRelayed, relayed + 1, "the target's answer was relayed");
  // A flood of requests: at most 32 pings in flight.
  lan.crash(target);
  const before = pingsBy(relay);
  for (let i = 0; i < 100; i++) preq(asker, target.address, 100 + i);
  lan.runFor(1);
  assert.ok(pingsBy(relay) - before <= 32, `${pingsBy(relay) - before} pings for 100 requests`);
});
