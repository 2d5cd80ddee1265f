/**
 * Hostile finding 5: a dual-stack peer whose IPv6 unicast is blocked (its
 * multicast hellos keep the link-local address first in the roster) got
 * every retransmission at that address. Messages now go where the peer last
 * acknowledged, and round its addresses while nothing is acknowledged.
 */
import assert from "node:assert/strict";
import { PeerRoutes, ROTATE_AFTER } from "../../src/node/services/peer_route.ts";

const V6 = { address: "fe80::2%eth0", port: 47475 };
const V4 = { address: "198.18.0.12", port: 47475 };

Deno.test("unacknowledged, a message goes round a peer's addresses; acknowledged, it stays where the ack came from", () => {
  const r = new PeerRoutes();
  // The roster lists the link-local address first (fresh multicast hellos).
  // The first three go to it; then each next datagram to the next address, in turn.
  const got = Array.from({ length: ROTATE_AFTER + 4 }, () => r.pick("p", [V6, V4])!.address);
  assert.deepEqual(got, [V6, V6, V6, V4, V6, V4, V6].map((e) => e.address));
  // The ack came over IPv4 (the dual-stack socket reports it IPv4-mapped): IPv4 first from now on, whatever the order.
  r.acked("p", { address: "::ffff:198.18.0.12", port: 47475 });
  for (let i = 0; i < ROTATE_AFTER; i++) assert.equal(r.pick("p", [V6, V4])!.address, V4.address, `send ${i}`);
  r.acked("p", { address: "198.18.0.12", port: 47475 });
  assert.equal(r.pick("p", [V4, V6])!.address, V4.address);
});

Deno.test("a link-local ack without its scope matches the scoped address; one address or none is simple", () => {
  const r = new PeerRoutes();
  r.acked("p", { address: "fe80::2", port: 47475 });
  assert.equal(r.pick("p", [V4, V6])!.address, V6.address);
  assert.equal(r.pick("q", [V4]), V4);
  assert.equal(r.pick("q", []), undefined);
  r.forget("p");
  assert.equal(r.size, 0);
});

Deno.test("the roster's order flipping between sends (the peer's pings heard on each family) does not keep the turns on one address", () => {
  const r = new PeerRoutes();
  // Each datagram picked while the roster lists the addresses in the other order than for the last one.
  const got = Array.from({ length: ROTATE_AFTER + 4 }, (_, i) => r.pick("p", i % 2 ? [V4, V6] : [V6, V4])!.address);
  assert.ok(got.slice(ROTATE_AFTER).includes(V4.address), `every turn after ${ROTATE_AFTER} unacked went to ${got}`);
  assert.deepEqual(got, [V6, V6, V6, V4, V6, V4, V6].map((e) => e.address));
});
