/**
 * The evidence `lanchat doctor` names one-way links from: a peer heard only
 * by its hellos gets check pings; pings it leaves unanswered count; any
 * packet of its on our unicast socket clears them. On a fake clock.
 */
import assert from "node:assert/strict";
import { Discovery } from "../../src/protocol/discovery.ts";
import { CHECK_INTERVALS, CHECK_TIMEOUT_MS, isOneWay, Reachability } from "../../src/protocol/reachability.ts";
import { decodePacket, encodePacket, type Hello } from "../../src/wire/mod.ts";
import { MAX_SKEW_SOURCES, SkewLog } from "../../src/security/skew_log.ts";

const A = "a".repeat(32);
const B = "b".repeat(32);
const INTERVAL = 1000;

function node(id: string): Discovery {
  const d = new Discovery({
    self: { id, incarnation: 1, name: id.slice(0, 1), hostname: "h", version: "v", port: 40000, httpPort: 0 },
    intervalMs: INTERVAL,
    random: () => 0.5,
  });
  d.setTargets([{ address: "198.18.0.255", port: 47474 }], []);
  d.start(0);
  return d;
}

function helloOf(id: string, reply = false): Uint8Array {
  const h: Hello = {
    kind: "hello",
    id,
    incarnation: 1,
    name: "b",
    hostname: "hb",
    port: 40001,
    httpPort: 0,
    version: "v",
    interval: INTERVAL,
    reply,
  };
  return encodePacket(h);
}

/** Runs `d` to `until`, feeding B's broadcast hello every interval; answers its pings to B when `answer`. */
function run(d: Discovery, from: number, until: number, answer: boolean): number {
  let pings = 0;
  for (let t = from; t <= until; t += 100) {
    if (t % INTERVAL === 0) d.handleDatagram(helloOf(B), { address: "198.18.0.12", port: 47474 }, t);
    d.handleTimeout(t);
    for (const out of d.drainTransmits()) {
      const p = decodePacket(out.bytes);
      if (!p.ok || p.value.kind !== "ping" || out.to.address !== "198.18.0.12") continue;
      pings++;
      if (answer) {
        const pong = encodePacket({ kind: "pong", id: B, incarnation: 1, nonce: p.value.nonce });
        d.handleDatagram(pong, { address: "198.18.0.12", port: 40001 }, t + 1);
      }
    }
  }
  return pings;
}

Deno.test("a peer heard only by its hellos gets check pings, and two unanswered make a one-way link", () => {
  const d = node(A);
  const period = CHECK_INTERVALS * INTERVAL;
  assert.equal(run(d, 0, period - 100, false), 0, "no check before a period without an answer");
  const pings = run(d, period, 3 * period, false);
  assert.ok(pings >= 2 && pings <= 3, `one ping a period, not more: ${pings}`);
  const r = d.reach.of(B, 3 * period + CHECK_TIMEOUT_MS)!;
  assert.ok(r.unanswered >= 2, JSON.stringify(r));
  assert.equal(r.answerAt, undefined);
  assert.ok(isOneWay(r, 3 * period + CHECK_TIMEOUT_MS, 3 * INTERVAL));
  assert.equal(d.counters.checksSent, pings);
});

Deno.test("a peer that answers the check ping is not one-way; a reply hello counts as an answer", () => {
  const d = node(A);
  const period = CHECK_INTERVALS * INTERVAL;
  const pings = run(d, 0, 4 * period, true);
  assert.ok(pings >= 1 && pings <= 4, `${pings}`);
  const r = d.reach.of(B, 4 * period)!;
  assert.equal(r.unanswered, 0);
  assert.ok(!isOneWay(r, 4 * period, 3 * INTERVAL));
  // A reply hello (sent to our unicast port) also proves it hears us.
  const e = node(A);
  e.handleDatagram(helloOf(B, true), { address: "198.18.0.12", port: 40001 }, 0);
  assert.equal(e.reach.of(B, 0)!.answerAt, 0);
});

Deno.test("a ping not yet past its timeout is not counted unanswered; the evidence goes with the peer", () => {
  const r = new Reachability();
  r.hello(B, "198.18.0.12", 0);
  assert.deepEqual(r.due([{ id: B, firstSeen: 0 }], 5000, 6000), [], "not a period yet");
  const talking = new Reachability();
  talking.answered(B, 5000);
  assert.deepEqual(talking.due([{ id: B, firstSeen: 0 }], 10_000, 6000), [], "it talked within the period: no check");
  assert.deepEqual(r.due([{ id: B, firstSeen: 0 }], 6000, 6000), [B]);
  assert.equal(r.of(B, 6000 + CHECK_TIMEOUT_MS - 1)!.unanswered, 0);
  assert.equal(r.of(B, 6000 + CHECK_TIMEOUT_MS)!.unanswered, 1);
  assert.deepEqual(r.due([{ id: B, firstSeen: 0 }], 7000, 6000), [], "one check a period");
  r.answered(B, 8000);
  assert.equal(r.of(B, 9000)!.unanswered, 0);
  assert.ok(!isOneWay({ helloAt: 0, unanswered: 5 }, 10_000, 3000), "its hellos stopped too: not one-way, gone");
  r.forget(B);
  assert.equal(r.of(B, 9000), undefined);
  assert.equal(r.helloSources().get("198.18.0.12"), 0);
});

Deno.test("the last hello per source and the skew refusals per source are bounded", () => {
  const r = new Reachability();
  for (let i = 0; i < 2000; i++) r.hello(`id${i}`, `10.0.${i >> 8}.${i & 255}`, i);
  assert.equal(r.helloSources().size, 1024);
  assert.equal(r.helloSources().get("10.0.7.207"), 1999, "the newest kept");
  const s = new SkewLog();
  s.refused("198.18.0.13", 95_000, 1);
  s.refused("198.18.0.13", 96_000, 2);
  assert.deepEqual(s.entries(), [{ address: "198.18.0.13", count: 2, aheadMs: 96_000, at: 2 }]);
  for (let i = 0; i < 1000; i++) s.refused(`10.1.${i >> 8}.${i & 255}`, -40_000, i);
  assert.equal(s.entries().length, MAX_SKEW_SOURCES);
});
