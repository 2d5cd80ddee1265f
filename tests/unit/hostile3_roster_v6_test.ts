/**
 * Hostile 3: one host on one IPv6 /64 fills the roster. Measured on the
 * namespace LAN (scratch v6_fill.ts): 110 addresses fd00:198:18::1:N on one
 * interface, 16 signed hellos each advertising a 1 h interval, put 1,023
 * peers that never answer anything into a daemon's roster (kept 3 h, its own
 * announce interval scaled 2 s -> 14 s+), and a real newcomer was refused
 * (`roster-full`, its message left queued). The per-address cap of 16 is no
 * bound on IPv6, where a host picks addresses in its /64 at will.
 * Copy into tests/unit/; fails on df0e9ea.
 */
import assert from "node:assert/strict";
import { MAX_UNVERIFIED_INTERVAL_MS, Roster } from "../../src/protocol/roster.ts";
import { prefix64 } from "../../src/protocol/prefix64.ts";
import { helloFor } from "../support/hostile.ts";

Deno.test("one IPv6 /64 cannot take the whole roster", () => {
  const roster = new Roster({ selfId: "f".repeat(32), maxPeers: 1024 });
  let joined = 0;
  for (let a = 0; a < 110; a++) {
    const address = `fd00:198:18::1:${a.toString(16)}`;
    for (let j = 0; j < 16; j++) {
      const id = (a * 16 + j).toString(16).padStart(32, "0");
      const hello = { ...helloFor(id, `fill-${a}-${j}`, 40000), interval: 3_600_000 };
      if (roster.observe(hello, address, 1000).outcome === "joined") joined++;
    }
  }
  // A real host of another prefix must still get in.
  const legit = roster.observe(helloFor("e".repeat(32), "newcomer", 47475), "fd00:198:19::5", 2000);
  assert.equal(legit.outcome, "joined", `one /64 took ${joined} of 1024 places and the newcomer was refused`);
});

Deno.test("prefix64 names the /64 of an IPv6 address and nothing for IPv4", () => {
  const rows: [string, string | undefined][] = [
    ["fd00:198:18::1:5", "fd00:198:18:0::/64"],
    ["FD00:198:18:0:1::", "fd00:198:18:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64%eth0"],
    ["fe80::1", "fe80:0:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4::/64"],
    ["::ffff:198.18.0.1", undefined],
    ["198.18.0.1", undefined],
    ["1:2:3:4:5:6:7:8:9", undefined],
    ["1::2::3", undefined],
    ["fd00::zz", undefined],
  ];
  for (const [address, want] of rows) assert.equal(prefix64(address), want, address);
});

Deno.test("a peer that never answered a probe is kept at most 3 × 60 s whatever interval it claims", () => {
  const roster = new Roster({ selfId: "f".repeat(32), nonce: () => 7 });
  const id = "a".repeat(32);
  const hello = { ...helloFor(id, "slow", 47475), interval: 3_600_000 };
  roster.observe(hello, "198.18.0.9", 0);
  assert.equal(roster.get(id)!.interval, MAX_UNVERIFIED_INTERVAL_MS);
  // A ping or a message it sends unasked proves nothing: still bounded at its next hello.
  roster.heard(id, hello.incarnation, "198.18.0.9", 47475, 1000);
  roster.heard(id, hello.incarnation, "198.18.0.9", 47475, 1000, 7); // a pong before any probe: no nonce to match
  roster.observe(hello, "198.18.0.9", 2000);
  assert.equal(roster.get(id)!.interval, MAX_UNVERIFIED_INTERVAL_MS);
  // Silent: probed within 3 × 60 s (and a grid step) of its last hello, not 3 h.
  let probedAt: number | undefined;
  for (let t = roster.nextDeadline(); t !== undefined && probedAt === undefined; t = roster.nextDeadline()) {
    if (roster.tick(t).probes.length > 0) probedAt = t;
  }
  assert.ok(
    probedAt !== undefined && probedAt <= 2000 + 3 * MAX_UNVERIFIED_INTERVAL_MS + MAX_UNVERIFIED_INTERVAL_MS / 8,
  );
  // A pong with the wrong nonce does not verify it.
  roster.heard(id, hello.incarnation, "198.18.0.9", 47475, probedAt + 1, 8);
  roster.observe(hello, "198.18.0.9", probedAt + 2);
  assert.equal(roster.get(id)!.interval, MAX_UNVERIFIED_INTERVAL_MS);
});

Deno.test("a probed peer that answers with the probe's nonce is taken at its own interval", () => {
  const roster = new Roster({ selfId: "f".repeat(32), nonce: () => 7 });
  const id = "a".repeat(32);
  const hello = { ...helloFor(id, "slow", 47475), interval: 3_600_000 };
  roster.observe(hello, "198.18.0.9", 0);
  let t = 0;
  for (
    let d = roster.nextDeadline();
    d !== undefined && roster.get(id)!.state !== "probing";
    d = roster.nextDeadline()
  ) {
    t = d;
    roster.tick(d);
  }
  assert.equal(roster.get(id)!.state, "probing");
  roster.heard(id, hello.incarnation, "198.18.0.9", 47475, t + 1, 7);
  roster.observe(hello, "198.18.0.9", t + 2);
  assert.equal(roster.get(id)!.interval, 3_600_000);
});

Deno.test("IPv4 peers and other /64s are not held by one /64's share", () => {
  const roster = new Roster({ selfId: "f".repeat(32), maxPeers: 64 });
  assert.equal(roster.maxPerPrefix64, 16);
  let n = 0;
  for (let a = 0; a < 4; a++) {
    for (let j = 0; j < 16; j++) {
      const id = (n++).toString(16).padStart(32, "0");
      roster.observe(helloFor(id, "x", 1), `fd00::${a + 1}:${j + 1}`, 0);
    }
  }
  assert.equal(roster.size, 16);
  assert.equal(roster.observe(helloFor("b".repeat(32), "v4", 1), "198.18.0.7", 0).outcome, "joined");
  assert.equal(roster.observe(helloFor("c".repeat(32), "v6", 1), "fd01::1", 0).outcome, "joined");
});
