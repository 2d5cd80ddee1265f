/**
 * Hostile 3 findings, as tests (copy into tests/unit/). Each fails on df0e9ea.
 *
 * 1. A responder (or a lying peer-exchange answer) that names one victim
 *    address on a fresh port every time is never backed off: the backoff is
 *    per address:port, so the victim is probed without end (8 new endpoints
 *    per responder every 10 s, 32 with spoofed sources), not "a few hellos".
 * 2. Peer-exchange entries are any dotted quad: broadcast, multicast,
 *    loopback and 0.0.0.0 are taken (DNS-SD's A records are checked by
 *    isUnicastV4, peer-exchange entries are not).
 */
import assert from "node:assert/strict";
import {
  Browser,
  type Instance,
  PER_ADDRESS,
  PROBE_BACKOFF_MS,
  PROBES_PER_MINUTE,
  RATE_WINDOW_MS,
} from "../../src/protocol/dnssd.ts";
import { validatePeerList } from "../../src/wire/peer_list.ts";

const SELF = "a".repeat(32);
const VICTIM = "198.18.0.13";

function liar(port: number): Instance {
  return { instance: `liar${port}`, address: VICTIM, port, ttl: 120, ptrTtl: 4500 };
}

Deno.test("a victim named on fresh ports is probed a bounded number of times per backoff period", () => {
  const b = new Browser({ selfId: SELF, maxCandidates: 1024, answered: () => false, known: () => false });
  let port = 30000;
  const victimEndpoints = new Set<string>();
  // One responder, one 16-instance response every 2 s, for one backoff period (5 minutes).
  for (let now = 0; now < PROBE_BACKOFF_MS; now += 2000) {
    b.offer(Array.from({ length: 16 }, () => liar(port++)), "198.18.0.66", now);
    b.tick(now);
    for (const e of b.endpoints().endpoints) if (e.address === VICTIM) victimEndpoints.add(`${e.address}:${e.port}`);
  }
  // The documented bound is "a few hellos" for the victim: at most one rate window's worth of endpoints.
  const windows = PROBE_BACKOFF_MS / RATE_WINDOW_MS;
  assert.ok(
    victimEndpoints.size <= 8,
    `the victim address was probed on ${victimEndpoints.size} endpoints in ${windows} rate windows (unbounded in time)`,
  );
});

Deno.test("peer-exchange entries that are not unicast addresses are refused", () => {
  const id = "b".repeat(32);
  for (const address of ["255.255.255.255", "224.0.0.1", "239.255.255.250", "127.0.0.1", "0.0.0.0"]) {
    const p = validatePeerList({ e: [["c".repeat(32), address, 47475]] }, id, 1);
    const taken = typeof p !== "string" && p.entries.some((e) => e.address === address);
    assert.equal(taken, false, `entry ${address} was taken as a candidate to probe`);
  }
});

Deno.test("a directed broadcast or network address of our own subnet is never probed, by either path", () => {
  const b = new Browser({
    selfId: SELF,
    maxCandidates: 1024,
    answered: () => false,
    known: () => false,
    subnetEdge: (a) => a === "198.18.0.255" || a === "198.18.0.0",
  });
  const at = (address: string, i: number): Instance => ({
    instance: `x${i}`,
    address,
    port: 47475,
    ttl: 120,
    ptrTtl: 0,
  });
  b.offer([at("198.18.0.255", 1), at("198.18.0.0", 2), at("255.255.255.255", 3), at("198.18.0.20", 4)], "s", 0);
  assert.deepEqual(b.endpoints().endpoints.map((e) => e.address), ["198.18.0.20"]);
  assert.equal(b.counters.dropped["bad-record"], 3);
});

Deno.test("one address has a few candidates at most, even when it answered already", () => {
  const b = new Browser({ selfId: SELF, maxCandidates: 1024, answered: () => true, known: () => false });
  b.offer(Array.from({ length: 50 }, (_, i) => liar(40000 + i)), "198.18.0.66", 0);
  assert.equal(b.size, PER_ADDRESS);
});

Deno.test("unverified probes are bounded per minute across all sources and addresses", () => {
  const b = new Browser({ selfId: SELF, maxCandidates: 4096, answered: () => false, known: () => false });
  let probed = 0;
  for (let now = 0; now < 60_000; now += 1000) {
    // A fresh source and fresh addresses each second: the per-source and per-address bounds do not hold it.
    const inst = Array.from({ length: 8 }, (_, i): Instance => ({
      instance: `n${now}-${i}`,
      address: `10.${(now / 1000) | 0}.0.${i + 1}`,
      port: 47475,
      ttl: 120,
      ptrTtl: 0,
    }));
    b.offer(inst, `198.18.1.${now / 1000}`, now);
    probed = b.counters.probed;
  }
  assert.ok(probed <= PROBES_PER_MINUTE, `${probed} probes in a minute`);
  assert.ok(probed > 0);
});
