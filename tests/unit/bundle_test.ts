/**
 * Bundles (wire/bundle.ts): several datagrams to one peer in one end-to-end
 * data packet. The format's edges (packing at the size limit, order, every
 * malformed shape refused), and two links end to end: a burst goes out in
 * fewer data packets and arrives whole and in order; a bundle with one
 * member under another node's id is refused entire, as impersonation.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { generateKeyPairSync } from "node:crypto";
import { BUNDLE_MAGIC, isBundle, MEMBER_OVERHEAD, packBundles, unpackBundle } from "../../src/wire/bundle.ts";
import { type Ack, encodePacket, type Hello, type Packet } from "../../src/wire/mod.ts";
import { Roster } from "../../src/protocol/roster.ts";
import { E2eLink, type Taken } from "../../src/node/services/e2e_link.ts";
import type { Notices } from "../../src/node/notices.ts";
import type { Pins } from "../../src/security/pins.ts";
import { NodeSigner } from "../../src/security/signing.ts";
import { MAX_INNER, staticIdentityOf, staticKeyText } from "../../src/security/e2e_wire.ts";

/** An LNCH-looking datagram of `n` bytes whose last byte is `tag`. */
function datagram(n: number, tag: number): Uint8Array {
  const d = new Uint8Array(n);
  d.set([0x4c, 0x4e, 0x43, 0x48]);
  d[n - 1] = tag;
  return d;
}

Deno.test("bundles: packed in order up to the limit, a lone datagram as it is, and unpacked to the same bytes", () => {
  const ds = Array.from({ length: 25 }, (_, i) => datagram(100 + i, i));
  const packed = packBundles(ds, MAX_INNER);
  assert.ok(packed.length < ds.length / 5, `${packed.length} payloads for 25 datagrams`);
  for (const p of packed) assert.ok(p.length <= MAX_INNER, `${p.length} ≤ ${MAX_INNER}`);
  const back = packed.flatMap((p) => isBundle(p) ? unpackBundle(p) as Uint8Array[] : [p]);
  assert.deepEqual(back.map((d) => [...d]), ds.map((d) => [...d]), "the same datagrams, in order");
  // Exactly at the limit: two members fill it; one byte more and they go apart.
  const half = (MAX_INNER - BUNDLE_MAGIC.length) / 2 - MEMBER_OVERHEAD;
  assert.equal(packBundles([datagram(half, 1), datagram(half, 2)], MAX_INNER).length, 1);
  const apart = packBundles([datagram(half, 1), datagram(half + 1, 2)], MAX_INNER);
  assert.equal(apart.length, 2);
  assert.ok(apart.every((p) => !isBundle(p)), "a lone datagram travels without a bundle");
  assert.deepEqual(packBundles([], MAX_INNER), []);
  assert.throws(() => packBundles([datagram(MAX_INNER + 1, 0)], MAX_INNER), RangeError);
});

Deno.test("bundles: every malformed shape is refused with a reason, never thrown", () => {
  const good = packBundles([datagram(10, 1), datagram(12, 2)], MAX_INNER)[0]!;
  assert.ok(Array.isArray(unpackBundle(good)));
  const cases: [string, Uint8Array][] = [
    ["cut in a length", good.subarray(0, 4 + 2 + 10 + 1)],
    ["cut in a member", good.subarray(0, good.length - 1)],
    ["an empty member", new Uint8Array([...BUNDLE_MAGIC, 0, 0, ...good.subarray(4)])],
    ["one member", new Uint8Array([...BUNDLE_MAGIC, 0, 10, ...datagram(10, 1)])],
    ["no member", BUNDLE_MAGIC.slice()],
    ["a bundle in a bundle", new Uint8Array([...BUNDLE_MAGIC, 0, good.length, ...good, 0, 10, ...datagram(10, 1)])],
    ["a member that is not LNCH", new Uint8Array([...BUNDLE_MAGIC, 0, 3, 1, 2, 3, 0, 10, ...datagram(10, 1)])],
    ["a length past the end", new Uint8Array([...BUNDLE_MAGIC, 0xff, 0xff, ...datagram(10, 1)])],
  ];
  for (const [what, bytes] of cases) assert.equal(typeof unpackBundle(bytes), "string", what);
});

function identity() {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = new Uint8Array(Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url"));
  const pkcs8 = new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" }));
  return staticIdentityOf(pkcs8, raw, new NodeSigner(pkcs8, raw).sign);
}

/** Two links that know each other's hello (with nk), and a wire between them. */
function pair() {
  const ids = [identity(), identity()];
  const links = ids.map((me, i) => {
    const other = ids[1 - i]!;
    const roster = new Roster({ selfId: me.id });
    const h: Hello = {
      kind: "hello",
      id: other.id,
      incarnation: 1,
      name: `n${1 - i}`,
      hostname: "h",
      port: 47475 + 1 - i,
      httpPort: 0,
      version: "1",
      interval: 2000,
      reply: false,
      staticKey: staticKeyText(other.dh.publicKey),
    };
    roster.observe(h, "198.18.0.2", 0).peer!.staticKey = h.staticKey;
    return new E2eLink({
      identity: me,
      incarnation: 1,
      roster,
      pins: { get: () => undefined } as unknown as Pins,
      requireEncryption: false,
      notices: { once: () => {} } as unknown as Notices,
    });
  });
  const to = (i: number) => ({ address: "198.18.0.2", port: 47475 + i });
  /** Carries what each link has to send to the other until neither has anything; what each took. */
  const pump = (now: number) => {
    const got: Taken[][] = [[], []];
    let data = 0;
    for (let moved = true; moved;) {
      moved = false;
      for (const i of [0, 1]) {
        for (const t of links[i]!.drain()) {
          moved = true;
          if (t.data && t.bytes.length > 34) data++;
          const r = links[1 - i]!.receive(t.bytes, to(i), now);
          got[1 - i]!.push(r);
          if (r.kind === "control" && r.reply) {
            got[i]!.push(links[i]!.receive(r.reply, to(1 - i), now));
          }
        }
      }
    }
    return { got, data };
  };
  const ack = (from: string, n: number): Ack => ({
    kind: "ack",
    id: from,
    incarnation: 1,
    messageId: n.toString(16).padStart(32, "0"),
    count: 1,
    received: new Uint8Array(),
    done: true,
  });
  return { ids, links, pump, ack, to };
}

Deno.test("two links: a burst of 40 acks goes in a few sealed data packets, all taken, in order", () => {
  const { ids, links, pump, ack, to } = pair();
  const send = (n: number) =>
    links[0]!.send({
      via: "unicast",
      to: to(1),
      bytes: encodePacket(ack(ids[0]!.id, n)),
      kind: "ack",
      peer: ids[1]!.id,
    }, 0);
  // The first burst waits for the handshake; the second goes over the session at once.
  for (const round of [0, 1]) {
    for (let n = 0; n < 40; n++) send(round * 100 + n);
    const { got, data } = pump(round);
    const packets = got[1]!.flatMap((r) => r.kind === "packets" ? r.packets : []);
    assert.deepEqual(
      packets.map((p) => (p as Ack).messageId),
      Array.from({ length: 40 }, (_, n) => (round * 100 + n).toString(16).padStart(32, "0")),
      "all 40, in order",
    );
    assert.ok(data <= 5, `40 acks in ${data} data packets`);
    assert.equal(got[1]!.filter((r) => r.kind === "drop").length, 0);
  }
  assert.ok(links[0]!.counters.bundlesSealed >= 2 && links[1]!.counters.bundlesOpened >= 2);
});

Deno.test("two links: a bundle with one member under another node's id is refused whole, as impersonation", () => {
  const { ids, links, pump, ack, to } = pair();
  // A session first.
  links[0]!.send(
    { via: "unicast", to: to(1), bytes: encodePacket(ack(ids[0]!.id, 1)), kind: "ack", peer: ids[1]!.id },
    0,
  );
  pump(0);
  // Node 0 packs its own ack and one forged under a third node's id into one bundle, sealed in its own session.
  const victim = "c".repeat(32);
  const forged = packBundles([encodePacket(ack(ids[0]!.id, 2)), encodePacket(ack(victim, 3))], MAX_INNER);
  assert.equal(forged.length, 1);
  links[0]!.sessions.send({ id: ids[1]!.id, staticKey: ids[1]!.dh.publicKey }, forged[0]!, 1);
  const { got } = pump(1);
  const taken: Packet[] = got[1]!.flatMap((r) => r.kind === "packets" ? r.packets : []);
  assert.deepEqual(taken, [], "neither member taken");
  assert.deepEqual(got[1]!.flatMap((r) => r.kind === "drop" ? [r.reason] : []), ["impersonation"]);
});
