import assert from "node:assert/strict";
import { RateLimiter } from "../../src/security/rate_limit.ts";
import { MAX_PEERS_PER_ADDRESS, Roster } from "../../src/protocol/roster.ts";
import type { Hello } from "../../src/wire/mod.ts";

Deno.test("rate limiter allows a burst, then the rate, per source", () => {
  const r = new RateLimiter({ rate: 10, burst: 5 });
  const allowed = (source: string, now: number, n: number) =>
    Array.from({ length: n }, () => r.allow(source, now)).filter(Boolean).length;
  assert.equal(allowed("a", 0, 20), 5, "the burst");
  assert.equal(allowed("b", 0, 20), 5, "another source has its own bucket");
  assert.equal(allowed("a", 100, 20), 1, "100 ms at 10/s refills one token");
  assert.equal(allowed("a", 10_100, 20), 5, "never more than the burst");
});

Deno.test("rate limiter tracks a bounded number of sources", () => {
  const r = new RateLimiter({ rate: 1, burst: 1, maxSources: 100 });
  for (let i = 0; i < 10_000; i++) r.allow(`198.18.${i >> 8}.${i & 255}`, i);
  assert.equal(r.size, 100);
});

const hello = (id: string): Hello => ({
  kind: "hello",
  id,
  incarnation: 1,
  name: "n",
  hostname: "h",
  port: 47475,
  httpPort: 0,
  version: "v",
  interval: 2000,
  reply: false,
});
const hex = (i: number) => i.toString(16).padStart(32, "0");

Deno.test("roster is bounded: a full roster takes no newcomer and keeps every peer it has", () => {
  const r = new Roster({ selfId: "f".repeat(32), maxPeers: 50 });
  for (let i = 1; i <= 60; i++) r.observe(hello(hex(i)), `198.18.0.${i}`, 0);
  assert.equal(r.size, 50);
  assert.equal(r.observe(hello(hex(999)), "198.18.1.1", 1).outcome, "full");
  assert.ok(r.get(hex(1)), "the first peers stay");
  // Known peers still refresh when the roster is full.
  assert.equal(r.observe(hello(hex(1)), "198.18.0.1", 2).outcome, "refreshed");
});

Deno.test("roster takes at most a few ids from one address, so one host cannot flood it", () => {
  const r = new Roster({ selfId: "f".repeat(32) });
  for (let i = 1; i <= 10_000; i++) r.observe(hello(hex(i)), "198.18.0.66", 0);
  assert.equal(r.size, MAX_PEERS_PER_ADDRESS);
  assert.equal(r.observe(hello(hex(20_000)), "198.18.0.7", 0).outcome, "joined", "other hosts still join");
  // When those ids leave, the address may bring others.
  r.goodbye(hex(1), 1, 10);
  assert.equal(r.observe(hello(hex(30_000)), "198.18.0.66", 20).outcome, "joined");
});

Deno.test("roster counts IP Messenger peers in its bounds: --max-peers in all and 16 per address", () => {
  const ipmsg = { total: 45, at: new Map([["198.18.0.9", 10]]) };
  const r = new Roster({
    selfId: "f".repeat(32),
    maxPeers: 50,
    others: { count: () => ipmsg.total, countAt: (a) => ipmsg.at.get(a) ?? 0 },
  });
  for (let i = 1; i <= 20; i++) r.observe(hello(hex(i)), "198.18.0.9", 0);
  assert.equal(r.size, 5, "50 in all, 45 of them IP Messenger users");
  assert.equal(r.countAt("198.18.0.9"), 5);
  ipmsg.total = 0;
  for (let i = 21; i <= 40; i++) r.observe(hello(hex(i)), "198.18.0.9", 0);
  assert.equal(r.countAt("198.18.0.9"), 6, "16 per address, 10 of them IP Messenger users");
});
