/** The `peers` packet (peer exchange) both ways, and what its validator refuses. */
import assert from "node:assert/strict";
import {
  decodePacket,
  encodeFrame,
  encodePacket,
  MAX_PEER_ENTRIES,
  PacketType,
  type PeerList,
} from "../../src/wire/mod.ts";

const ID = "c".repeat(32);
const E = "d".repeat(32);

Deno.test("a peers request and answer survive encoding; an answer is cut at MAX_PEER_ENTRIES", () => {
  const ask: PeerList = { kind: "peers", id: ID, incarnation: 3, ask: true, entries: [] };
  assert.deepEqual(decodePacket(encodePacket(ask)), { ok: true, value: ask });
  const entries = Array.from({ length: 20 }, (_, i) => ({ id: E, address: `198.18.0.${i + 1}`, port: 47475 }));
  const got = decodePacket(encodePacket({ kind: "peers", id: ID, incarnation: 3, ask: false, entries }));
  assert.ok(got.ok);
  assert.equal(got.ok && got.value.kind === "peers" && got.value.entries.length, MAX_PEER_ENTRIES);
});

Deno.test("a peers packet with a bad entry is dropped as bad-field, whole", () => {
  const bad: unknown[] = [
    [[E, "198.18.0.300", 47475]],
    [[E, "fd00::1", 47475]],
    [[E, "198.18.0.1", 0]],
    [[E, "198.18.0.1", 65536]],
    [["XYZ", "198.18.0.1", 47475]],
    [[E, "198.18.0.1"]],
    "nope",
    Array.from({ length: MAX_PEER_ENTRIES + 1 }, () => [E, "198.18.0.1", 1]),
  ];
  for (const e of bad) {
    const r = decodePacket(encodeFrame(PacketType.peers, { id: ID, inc: 1, e }));
    assert.equal(r.ok ? "taken" : r.reason, "bad-field", JSON.stringify(e));
  }
  const r = decodePacket(encodeFrame(PacketType.peers, { id: ID, inc: 1, ask: "yes" }));
  assert.equal(r.ok ? "taken" : r.reason, "bad-field");
});
