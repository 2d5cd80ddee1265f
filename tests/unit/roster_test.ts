import assert from "node:assert/strict";
import {
  LATE_RECHECK_MS,
  LATE_TOLERANCE_MS,
  MAX_PROBE_SLACK_FACTOR,
  Roster,
  staleAt,
} from "../../src/protocol/roster.ts";
import type { Hello } from "../../src/wire/mod.ts";

const SELF = "f".repeat(32);
const A = "a".repeat(32);

function hello(overrides: Partial<Hello> = {}): Hello {
  return {
    kind: "hello",
    id: A,
    incarnation: 1,
    name: "alice@h1",
    hostname: "h1",
    port: 47475,
    httpPort: 47476,
    version: "0.1.0",
    interval: 1000,
    reply: false,
    ...overrides,
  };
}

Deno.test("staleAt is three of the peer's own intervals after it was last heard", () => {
  const rows: [number, number, number][] = [
    [0, 2000, 6000],
    [1000, 500, 2500],
    [5, 50, 155],
  ];
  for (const [lastSeen, interval, expected] of rows) assert.equal(staleAt(lastSeen, interval), expected);
});

Deno.test("roster joins a peer on its first hello and refreshes it after", () => {
  const r = new Roster({ selfId: SELF });
  const first = r.observe(hello(), "198.18.0.11", 100);
  assert.equal(first.outcome, "joined");
  assert.equal(first.event?.type, "joined");
  const again = r.observe(hello(), "198.18.0.11", 900);
  assert.equal(again.outcome, "refreshed");
  assert.equal(again.event, undefined);
  const p = r.get(A)!;
  assert.equal(p.firstSeen, 100);
  assert.equal(p.lastSeen, 900);
  assert.deepEqual(p.addresses, [{ address: "198.18.0.11", port: 47475, lastSeen: 900 }]);
});

Deno.test("roster never adds itself", () => {
  const r = new Roster({ selfId: SELF });
  assert.equal(r.observe(hello({ id: SELF }), "127.0.0.1", 0).outcome, "ignored");
  assert.equal(r.size, 0);
});

Deno.test("roster keeps one peer with two addresses for a host with two interfaces", () => {
  const r = new Roster({ selfId: SELF });
  r.observe(hello(), "198.18.0.11", 0);
  r.observe(hello(), "198.18.1.11", 10);
  assert.equal(r.size, 1);
  assert.deepEqual(r.get(A)!.addresses.map((a) => a.address), ["198.18.1.11", "198.18.0.11"]);
});

Deno.test("roster forgets an address the peer stopped using, not the peer", () => {
  const r = new Roster({ selfId: SELF });
  r.observe(hello(), "198.18.0.11", 0);
  // DHCP gave it a new address; it is heard only there from now on.
  for (let t = 1000; t <= 4000; t += 1000) {
    r.observe(hello(), "198.18.0.99", t);
    r.tick(t);
  }
  assert.deepEqual(r.get(A)!.addresses.map((a) => a.address), ["198.18.0.99"]);
  assert.equal(r.get(A)!.state, "alive");
});

Deno.test("roster treats a higher incarnation as a restart and ignores a lower one", () => {
  const r = new Roster({ selfId: SELF });
  r.observe(hello({ incarnation: 5, port: 40000 }), "198.18.0.11", 0);
  const restarted = r.observe(hello({ incarnation: 6, port: 40001 }), "198.18.0.11", 10);
  assert.equal(restarted.outcome, "restarted");
  assert.deepEqual(restarted.event, { type: "restarted", peer: r.get(A), previousIncarnation: 5 });
  assert.deepEqual(r.get(A)!.addresses, [{ address: "198.18.0.11", port: 40001, lastSeen: 10 }]);
  assert.equal(r.observe(hello({ incarnation: 5 }), "198.18.0.11", 20).outcome, "ignored");
  assert.equal(r.get(A)!.incarnation, 6);
});

Deno.test("roster probes a peer silent for 3 intervals and removes it after the probe timeout", () => {
  const r = new Roster({ selfId: SELF, probeTimeoutMs: 500 });
  r.observe(hello({ interval: 1000 }), "198.18.0.11", 0);
  assert.equal(r.nextDeadline(), 3000);
  assert.deepEqual(r.tick(2999), { probes: [], events: [] });
  const t1 = r.tick(3000);
  assert.equal(t1.probes.length, 1);
  assert.equal(t1.probes[0]!.peer.id, A);
  assert.deepEqual(t1.probes[0]!.addresses.map((a) => a.address), ["198.18.0.11"]);
  assert.equal(r.get(A)!.state, "probing");
  assert.equal(r.nextDeadline(), 3500);
  // A probe is sent once, not on every tick.
  assert.equal(r.tick(3100).probes.length, 0);
  const t2 = r.tick(3500);
  assert.equal(t2.events.length, 1);
  assert.equal(t2.events[0]!.type, "left");
  assert.equal(t2.events[0]!.type === "left" && t2.events[0]!.reason, "timeout");
  assert.equal(r.size, 0);
  assert.equal(r.nextDeadline(), undefined);
});

Deno.test("roster keeps a probed peer that answers", () => {
  const r = new Roster({ selfId: SELF, probeTimeoutMs: 500 });
  r.observe(hello({ interval: 1000 }), "198.18.0.11", 0);
  r.tick(3000);
  assert.equal(r.heard(A, 1, "198.18.0.11", 47475, 3200)?.state, "alive");
  assert.deepEqual(r.tick(3500).events, []);
  // Stale again 3 intervals after 3200, on the 125 ms grid (1/8 interval) that coalesces wake-ups.
  assert.equal(r.nextDeadline(), 6250);
});

/**
 * A driver with a fake clock: it wakes the roster at the deadline it asks
 * for, `late(i)` ms late on the i-th wake-up (a flood or a CPU hog keeping
 * the event loop busy), plus at the `extra` times (other services'
 * deadlines) with their own lateness; the peer's pong is read at `pongAt`.
 * Returns when the peer was removed, or undefined if it was kept.
 */
function probeUnder(
  late: (i: number) => number,
  o: { pongAt?: number; extra?: [at: number, late: number][] } = {},
): number | undefined {
  const r = new Roster({ selfId: SELF, probeTimeoutMs: 500 });
  r.observe(hello({ interval: 1000 }), "198.18.0.11", 0);
  r.tick(3000); // stale: the probe goes, due at 3500
  assert.equal(r.get(A)!.state, "probing");
  const extra = [...(o.extra ?? [])];
  let pong = o.pongAt;
  for (let i = 0; i < 100; i++) {
    const wakeAt = r.nextDeadline()!;
    const [at, lateBy] = extra[0] && extra[0][0] < wakeAt + late(i) ? extra.shift()! : [wakeAt + late(i), late(i)];
    if (pong !== undefined && pong <= at) {
      r.heard(A, 1, "198.18.0.11", 47475, pong);
      pong = undefined;
    }
    const left = r.tick(at, lateBy).events.find((e) => e.type === "left");
    if (left) return at;
    if (r.get(A)!.state === "alive") return undefined;
  }
  throw new Error("neither removed nor kept");
}

Deno.test("a probe's deadline does not count time the driver's wake-ups came late (table, fake clock)", () => {
  const max = 3500 + MAX_PROBE_SLACK_FACTOR * 500;
  const rows: [what: string, late: (i: number) => number, pongAt: number | undefined, removedAt: number | undefined][] =
    [
      ["on time, no pong: removed at the deadline", () => 0, undefined, 3500],
      ["within timer jitter: removed at once", () => LATE_TOLERANCE_MS, undefined, 3500 + LATE_TOLERANCE_MS],
      // The deadline check fired 300 ms late: that check does not remove; it looks again shortly after.
      ["late check, no pong: removed at the re-check", (i) => (i === 0 ? 300 : 0), undefined, 3800 + LATE_RECHECK_MS],
      ["late check, the pong read just after it: kept", (i) => (i === 0 ? 300 : 0), 3810, undefined],
    ];
  for (const [what, late, pongAt, removedAt] of rows) assert.equal(probeUnder(late, { pongAt }), removedAt, what);
  // A wake-up for something else that came 200 ms late while the probe was out moves its deadline by 200 ms.
  assert.equal(probeUnder(() => 0, { extra: [[3300, 200]] }), 3700);
  assert.equal(probeUnder(() => 0, { extra: [[3300, 200]], pongAt: 3650 }), undefined);
  // Lateness within the jitter tolerance moves nothing.
  assert.equal(probeUnder(() => 0, { extra: [[3300, LATE_TOLERANCE_MS]] }), 3500);
  // Bounded: a loop late on every wake-up still removes a dead peer, within 4 timeouts more (+ one last late wake-up).
  const starved = probeUnder(() => 150)!;
  assert.ok(starved > 3500 + 150 && starved <= max + 150, `removed at ${starved}`);
  assert.equal(probeUnder(() => 150, { pongAt: max - 10 }), undefined, "and keeps it when the pong is read in time");
});

Deno.test("roster ignores proof of life from another incarnation or an unknown id", () => {
  const r = new Roster({ selfId: SELF });
  r.observe(hello({ incarnation: 2 }), "198.18.0.11", 0);
  assert.equal(r.heard(A, 1, "198.18.0.11", 47475, 100), undefined);
  assert.equal(r.heard("b".repeat(32), 1, "198.18.0.12", 47475, 100), undefined);
  assert.equal(r.get(A)!.lastSeen, 0);
});

Deno.test("roster removes a peer at once on goodbye and ignores its late hellos", () => {
  const r = new Roster({ selfId: SELF });
  r.observe(hello({ incarnation: 3 }), "198.18.0.11", 0);
  const left = r.goodbye(A, 3, 100);
  assert.equal(left?.type, "left");
  assert.equal(left?.type === "left" && left.reason, "goodbye");
  assert.equal(r.size, 0);
  // A hello of the same incarnation that was still in flight does not revive it.
  assert.equal(r.observe(hello({ incarnation: 3 }), "198.18.0.11", 150).outcome, "ignored");
  // The same node started again is welcome at once.
  assert.equal(r.observe(hello({ incarnation: 4 }), "198.18.0.11", 200).outcome, "joined");
});

Deno.test("roster: a wake-up queued for a peer that left does not touch the peer that rejoined under its id", () => {
  const r = new Roster({ selfId: SELF, probeTimeoutMs: 500 });
  r.observe(hello({ incarnation: 1, interval: 1000 }), "198.18.0.11", 0);
  r.goodbye(A, 1, 100);
  // Restarted at once; it keeps announcing every second.
  assert.equal(r.observe(hello({ incarnation: 2, interval: 1000 }), "198.18.0.11", 200).outcome, "joined");
  assert.equal(r.nextDeadline(), 3000, "the first incarnation's wake-up is still queued");
  for (let t = 1200; t <= 6200; t += 1000) {
    const { probes, events } = r.tick(t - 100);
    assert.deepEqual([probes.length, events.length], [0, 0], `at ${t - 100} ms`);
    r.observe(hello({ incarnation: 2, interval: 1000 }), "198.18.0.11", t);
  }
  assert.equal(r.get(A)?.state, "alive");
  assert.equal(r.get(A)?.incarnation, 2);
  // And once it falls silent, it is probed and removed as usual.
  assert.equal(r.tick(10_000).probes.length, 1);
  assert.equal(r.tick(10_500).events[0]?.type, "left");
  assert.equal(r.size, 0);
});

Deno.test("roster ignores a goodbye from an older incarnation", () => {
  const r = new Roster({ selfId: SELF });
  r.observe(hello({ incarnation: 4 }), "198.18.0.11", 0);
  assert.equal(r.goodbye(A, 3, 10), undefined);
  assert.equal(r.size, 1);
});

Deno.test("roster lets a peer that timed out rejoin with the same incarnation", () => {
  const r = new Roster({ selfId: SELF, probeTimeoutMs: 500 });
  r.observe(hello({ interval: 1000 }), "198.18.0.11", 0);
  r.tick(3000);
  r.tick(3500);
  assert.equal(r.size, 0);
  assert.equal(r.observe(hello({ interval: 1000 }), "198.18.0.11", 9000).outcome, "joined");
});

Deno.test("roster version changes with membership and state, not with a plain refresh", () => {
  const r = new Roster({ selfId: SELF });
  const v0 = r.version;
  r.observe(hello(), "198.18.0.11", 0);
  const v1 = r.version;
  assert.ok(v1 > v0);
  r.observe(hello(), "198.18.0.11", 100);
  assert.equal(r.version, v1);
  r.observe(hello({ name: "renamed" }), "198.18.0.11", 200);
  assert.ok(r.version > v1);
});

Deno.test("roster checks peers that go stale close together in one wake-up (a grid of 1/8 interval)", () => {
  const r = new Roster({ selfId: SELF, maxPeers: 2000 });
  // 1,000 peers announcing every 20 s, each at its own phase.
  const ids = Array.from({ length: 1000 }, (_, i) => i.toString(16).padStart(32, "0"));
  const phase = ids.map((_, i) => ((i * 7919) % 200) * 100);
  for (const [i, id] of ids.entries()) {
    r.observe(hello({ id, interval: 20_000 }), `198.18.${i >> 8}.${i & 255}`, phase[i]!);
  }
  let wakes = 0;
  let probes = 0;
  // Every peer refreshes on time for ten minutes: the roster wakes on its grid, no more.
  for (let t = 20_000; t <= 600_000; t += 1) {
    for (const [i, id] of ids.entries()) {
      if ((t - phase[i]!) % 20_000 === 0) r.observe(hello({ id, interval: 20_000 }), `198.18.${i >> 8}.${i & 255}`, t);
    }
    const due = r.nextDeadline();
    if (due !== undefined && due <= t) {
      wakes++;
      probes += r.tick(t).probes.length;
    }
    t += 99; // step 100 ms
  }
  assert.equal(probes, 0, "no peer that keeps announcing is probed");
  assert.equal(r.size, 1000);
  // At most one wake-up per 2.5 s grid cell (232 in 580 s), far from one per peer refresh (29,000).
  assert.ok(wakes <= 580 / 2.5 + 2, `${wakes} wake-ups`);
});

Deno.test("roster holds a peer to the caller's floor interval: a newcomer's short start-up interval", () => {
  const r = new Roster({ selfId: SELF });
  // The newcomer says 2 s (it knows no one yet); this LAN announces every 20 s.
  r.observe(hello({ interval: 2000 }), "198.18.0.11", 0, 20_000);
  assert.equal(r.get(A)!.interval, 20_000);
  assert.deepEqual(r.tick(7_000).probes, [], "not probed after 3 of its own 2 s intervals");
  assert.equal(r.tick(60_000).probes.length, 1, "but after 3 of the LAN's");
});
