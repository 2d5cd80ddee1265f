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

Deno.test("a peer that never answered is kept at most 3 × 60 s whatever interval it claims", () => {
  const roster = new Roster({ selfId: "f".repeat(32) });
  const hello = { ...helloFor("a".repeat(32), "slow", 47475), interval: 3_600_000 };
  roster.observe(hello, "198.18.0.9", 0);
  assert.equal(roster.get("a".repeat(32))!.interval, MAX_UNVERIFIED_INTERVAL_MS);
  // Once it answered (a pong), its own interval is taken at its next hello.
  roster.heard(hello.id, hello.incarnation, "198.18.0.9", 47475, 1000);
  roster.observe(hello, "198.18.0.9", 2000);
  assert.equal(roster.get("a".repeat(32))!.interval, 3_600_000);
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
