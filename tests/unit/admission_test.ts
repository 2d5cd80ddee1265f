import assert from "node:assert/strict";
import { Admission, DISCOVERY_RATE, SourceLimits } from "../../src/security/admission.ts";
import { Discovery } from "../../src/protocol/discovery.ts";
import { appendSignature, encodePacket, type Hello } from "../../src/wire/mod.ts";
import { newNodeKey } from "../support/hostile.ts";

const B = "198.18.0.12";
const from = { address: B, port: 47475 };

function helloOf(id: string): Hello {
  return {
    kind: "hello",
    id,
    incarnation: 1,
    name: "b",
    hostname: "b",
    port: 47475,
    httpPort: 0,
    version: "v",
    interval: 500,
    reply: false,
  };
}

/** Junk as tests/support/hostile.ts sends it: half random, half starting like a hello. */
function junk(i: number): Uint8Array {
  const bytes = crypto.getRandomValues(new Uint8Array(20 + (i % 64) * 18));
  if (i % 2 === 1) bytes.set([0x4c, 0x4e, 0x43, 0x48, 1, 1]);
  return bytes;
}

Deno.test("past a flood under a known peer's address, the pong to our probe gets through; junk and hellos do not, and cost no decoding", () => {
  const known = newNodeKey();
  const stranger = newNodeKey();
  const me = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "me", hostname: "h", version: "v", port: 40000, httpPort: 0 },
    intervalMs: 500,
    probeTimeoutMs: 500,
  });
  me.start(0);
  me.handleDatagram(encodePacket(helloOf(known.id)), from, 0);
  const admission = new Admission({
    limits: new SourceLimits(),
    awaitedPong: (address, now) => me.awaitedPong(address, now),
  });
  const signed = (id: string, signer: ReturnType<typeof newNodeKey>["signer"]) =>
    appendSignature(encodePacket(helloOf(id)), signer.publicKey, (d) => signer.sign(d));
  // 40,000 junk datagrams in one second spend both of B's limits (those shaped like a hello, its discovery limit).
  let helloShapedIn = 0;
  for (let i = 0; i < 40_000; i++) {
    if (admission.admit(junk(i), from, "unicast", i / 40, i / 40).ok && i % 2 === 1) helloShapedIn++;
  }
  const t = 1000;
  assert.ok(
    helloShapedIn <= DISCOVERY_RATE.burst + DISCOVERY_RATE.rate,
    `junk past the discovery limit: ${helloShapedIn}`,
  );
  assert.equal(admission.admit(junk(0), from, "unicast", t, t).ok, false, "B's address is over its limit");
  assert.equal(admission.admit(junk(1), from, "broadcast", t, t).ok, false, "on either socket");
  // Hellos past the limit are refused, B's own signed one too: telling them from a forger's repeat costs a decode
  // and a signature check per flooded datagram (the pong below keeps B listed).
  assert.equal(admission.admit(signed(known.id, known.signer), from, "broadcast", t, t).ok, false);
  assert.equal(admission.admit(signed(stranger.id, stranger.signer), from, "broadcast", t, t).ok, false);
  assert.equal(admission.admit(encodePacket(helloOf(known.id)), from, "broadcast", t, t).ok, false);
  // B goes stale and is probed; the flood goes on; the pong with the probe's nonce is let through.
  let now = t;
  while (!me.drainTransmits().some((x) => x.kind === "ping")) {
    now = me.pollTimeout()!;
    me.handleTimeout(now);
  }
  for (let i = 0; i < 5000; i++) admission.admit(junk(i), from, "unicast", now, now);
  const awaited = me.awaitedPong(B, now)!;
  assert.equal(awaited.flooded, true, "the flood was seen under the probed address");
  assert.equal(awaited.examined, 0, "unsealed junk costs no opening");
  const wrong = encodePacket({ kind: "pong", id: known.id, incarnation: 1, nonce: (awaited.nonce + 1) >>> 0 });
  assert.equal(admission.admit(wrong, from, "unicast", now, now).ok, false, "a guessed nonce is refused");
  const pong = encodePacket({ kind: "pong", id: known.id, incarnation: 1, nonce: awaited.nonce });
  assert.equal(admission.admit(pong, from, "unicast", now, now).ok, true);
  assert.equal(admission.rescued, 1);
});
