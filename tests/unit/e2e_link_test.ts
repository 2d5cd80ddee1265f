/**
 * The pieces of the e2e wiring that need no daemon: the hello's `nk` (one
 * canonical text, signed with the hello), the note packet and the rule that
 * a state waits for its note, admission of e2e datagrams (data past the
 * network key, handshakes in the discovery budget), and the largest message
 * fragment against the inner datagram bound.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { generateKeyPairSync } from "node:crypto";
import { Roster } from "../../src/protocol/roster.ts";
import { E2eLink } from "../../src/node/services/e2e_link.ts";
import type { Notices } from "../../src/node/notices.ts";
import type { Pins } from "../../src/security/pins.ts";
import { NodeSigner } from "../../src/security/signing.ts";
import { Discovery } from "../../src/protocol/discovery.ts";
import { Admission, DISCOVERY_RATE, SourceLimits } from "../../src/security/admission.ts";
import { headerOf, MAX_INNER, staticIdentityOf, staticKeyText } from "../../src/security/e2e_wire.ts";
import { newNetworkKeyText, parseNetworkKey, Sealer } from "../../src/security/seal.ts";
import {
  decodePacket,
  encodePacket,
  FRAGMENT_PAYLOAD,
  type Hello,
  MAX_FRAGMENTS,
  MAX_TEXT_BYTES,
  type Msg,
  MSG_REF_BYTES,
  type Packet,
} from "../../src/wire/mod.ts";

const KEY = staticKeyText(new Uint8Array(32).map((_, i) => i * 7 + 1));

function hello(over: Partial<Hello> = {}): Hello {
  return {
    kind: "hello",
    id: "a".repeat(32),
    incarnation: 1,
    name: "alice",
    hostname: "h",
    port: 47475,
    httpPort: 0,
    version: "1",
    interval: 2000,
    reply: false,
    staticKey: KEY,
    ...over,
  };
}

Deno.test("the hello's nk: round-trips; anything but the one canonical base64url of 32 bytes is refused", () => {
  const h = decodePacket(encodePacket(hello()));
  assert.ok(h.ok && h.value.kind === "hello");
  assert.equal(h.value.staticKey, KEY);
  // The same 32 bytes with the last character's spare bits set; padding; 31 bytes; standard base64.
  const last = KEY.at(-1)!;
  const spare = KEY.slice(0, -1) + String.fromCharCode(last.charCodeAt(0) + 1);
  for (const bad of [spare, `${KEY}=`, KEY.slice(0, 42), KEY.replace(/.$/, "+"), 42]) {
    const d = decodePacket(encodePacket(hello({ staticKey: bad as string })));
    assert.ok(!d.ok && d.reason === "bad-field", `${bad} refused`);
  }
  // A previous version's hello (no nk) still decodes.
  const old = decodePacket(encodePacket(hello({ staticKey: undefined })));
  assert.ok(old.ok && old.value.kind === "hello" && old.value.staticKey === undefined);
});

Deno.test("this node's hello carries its state and nk but not its note, which every host on the LAN would read", () => {
  const d = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "n", hostname: "h", version: "v", port: 40000, httpPort: 0 },
    random: () => 0.5,
  });
  d.self.staticKey = KEY;
  d.setTargets([{ address: "198.18.0.255", port: 47474 }], []);
  d.start(0);
  d.setPresence("away", "at the dentist", 1);
  const sent = d.drainTransmits().map((t) => new TextDecoder().decode(t.bytes));
  assert.ok(sent.length > 0);
  for (const s of sent) {
    assert.match(s, /"pr":"away"/);
    assert.match(s, new RegExp(`"nk":"${KEY}"`));
    assert.doesNotMatch(s, /dentist/);
  }
});

Deno.test("a peer that speaks e2e: its new state waits for its note (or its next hello); a late note for another state is not taken", () => {
  const d = new Discovery({
    self: { id: "1".repeat(32), incarnation: 1, name: "n", hostname: "h", version: "v", port: 40000, httpPort: 0 },
    random: () => 0.5,
  });
  const from = { address: "198.18.0.2", port: 47475 };
  const take = (h: Hello, now: number) => d.handlePacket(h, 100, from, now);
  take(hello(), 0);
  const peer = () => d.roster.get("a".repeat(32))!;
  d.drainEvents();
  take(hello({ presence: "away" }), 10);
  assert.equal(peer().presence, undefined, "away waits for its note");
  assert.equal(d.takeNote({ kind: "note", id: peer().id, incarnation: 1, presence: "away", note: "lunch" }), undefined);
  assert.deepEqual([peer().presence, peer().note], ["away", "lunch"]);
  assert.deepEqual(d.drainEvents().map((e) => e.type), ["presence"]);
  // Busy, and its note lost: the next hello that still says busy sets it without a note.
  take(hello({ presence: "busy" }), 20);
  assert.equal(peer().presence, "away");
  take(hello({ presence: "busy" }), 30);
  assert.deepEqual([peer().presence, peer().note], ["busy", undefined]);
  // Back online: at once, the note cleared; a late note for "busy" then is refused.
  take(hello(), 40);
  assert.deepEqual([peer().presence, peer().note], [undefined, undefined]);
  assert.ok(d.takeNote({ kind: "note", id: peer().id, incarnation: 1, presence: "busy", note: "late" }));
  assert.equal(peer().note, undefined);
  // A note ahead of its hello (they travel on different sockets): taken with that hello.
  assert.ok(d.takeNote({ kind: "note", id: peer().id, incarnation: 1, presence: "away", note: "early" }));
  assert.equal(peer().presence, undefined);
  take(hello({ presence: "away" }), 45);
  assert.deepEqual([peer().presence, peer().note], ["away", "early"]);
  // A previous version (no nk): state and note from the hello, as before.
  take(hello({ id: "b".repeat(32), staticKey: undefined, presence: "away", note: "old" }), 50);
  const old = d.roster.get("b".repeat(32))!;
  assert.deepEqual([old.presence, old.note], ["away", "old"]);
});

Deno.test("note packets: round-trip, cut to 100 characters, control characters refused", () => {
  const n = decodePacket(
    encodePacket({ kind: "note", id: "a".repeat(32), incarnation: 3, presence: "busy", note: "é".repeat(150) }),
  );
  assert.ok(n.ok && n.value.kind === "note");
  assert.deepEqual([n.value.presence, [...n.value.note].length], ["busy", 100]);
  const bad = decodePacket(encodePacket({ kind: "note", id: "a".repeat(32), incarnation: 3, note: "a\u0007b" }));
  assert.ok(!bad.ok && bad.reason === "bad-field");
});

Deno.test("the largest message fragment fits an e2e data packet: no change to FRAGMENT_PAYLOAD", () => {
  const big = Number.MAX_SAFE_INTEGER;
  const msg: Msg = {
    kind: "msg",
    id: "f".repeat(32),
    incarnation: big,
    to: "f".repeat(32),
    messageId: "f".repeat(32),
    seq: big,
    base: big,
    sentAt: big,
    length: MAX_TEXT_BYTES,
    count: MAX_FRAGMENTS,
    index: MAX_FRAGMENTS - 2,
    retry: 1_000_000,
    end: true,
    payload: new Uint8Array(FRAGMENT_PAYLOAD),
  };
  const bytes = encodePacket(msg);
  assert.ok(bytes.length <= MAX_INNER, `${bytes.length} bytes ≤ ${MAX_INNER}`);
  // A reply, an edit or a deletion carries one more field on every fragment: cut MSG_REF_BYTES smaller, it fits;
  // uncut, it would not.
  for (const kind of ["reply", "edit", "delete"] as const) {
    const ref = { kind, id: "f".repeat(32) };
    const cut = encodePacket({ ...msg, ref, payload: new Uint8Array(FRAGMENT_PAYLOAD - MSG_REF_BYTES) });
    assert.ok(cut.length <= MAX_INNER, `${kind}: ${cut.length} bytes ≤ ${MAX_INNER}`);
    assert.ok(encodePacket({ ...msg, ref }).length > MAX_INNER, `${kind} uncut`);
  }
});

Deno.test("admission: e2e data passes without the network key and outside the discovery budget; handshakes need the key and spend it", async () => {
  const sealer = await Sealer.create(parseNetworkKey(newNetworkKeyText(), "k"));
  const admission = new Admission({ limits: new SourceLimits(), sealer, awaitedPong: () => undefined });
  const from = { address: "198.18.0.9", port: 5 };
  const data = new Uint8Array([...headerOf(3), ...new Uint8Array(40)]);
  const initiation = new Uint8Array([...headerOf(1), ...new Uint8Array(224)]);
  for (let i = 0; i < DISCOVERY_RATE.burst * 3; i++) {
    const v = admission.admit(data, from, "unicast", 0, Date.now());
    assert.ok(v.ok, "data is not counted as a discovery packet");
  }
  const clear = admission.admit(initiation, from, "unicast", 0, Date.now());
  assert.ok(!clear.ok && clear.reason === "auth", "an unsealed handshake in a keyed group is refused");
  let admitted = 0;
  for (let i = 0; i < DISCOVERY_RATE.burst * 2; i++) {
    if (admission.admit(sealer.seal(initiation, Date.now()), from, "unicast", 0, Date.now()).ok) admitted++;
  }
  assert.equal(admitted, DISCOVERY_RATE.burst, "initiations spend the per-source discovery budget");
});

Deno.test("the link's routes: e2e to a peer whose hello has nk, clear to a previous version (refused with --require-encryption), nothing to one not in the roster; clear packets refused by the same rules", () => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = new Uint8Array(Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url"));
  const pkcs8 = new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" }));
  const identity = staticIdentityOf(pkcs8, raw, new NodeSigner(pkcs8, raw).sign);
  const make = (requireEncryption: boolean) => {
    const roster = new Roster({ selfId: identity.id });
    const link = new E2eLink({
      identity,
      incarnation: 1,
      roster,
      pins: { get: () => undefined } as unknown as Pins,
      requireEncryption,
      notices: { once: () => {} } as unknown as Notices,
    });
    return { roster, link };
  };
  const [e2e, old, gone] = ["a", "b", "c"].map((c) => c.repeat(32));
  const msg = (id: string) => ({ ...hello(), kind: "ack", id, messageId: "f".repeat(32) }) as unknown as Packet;
  for (const strict of [false, true]) {
    const { roster, link } = make(strict);
    // As discovery does: the roster keeps the nk of each hello.
    const add = (h: Hello, at: number) => {
      const p = roster.observe(h, "198.18.0.2", at).peer!;
      p.staticKey = h.staticKey;
      return p;
    };
    add(hello({ id: e2e! }), 0);
    add(hello({ id: old!, staticKey: undefined }), 0);
    assert.equal(link.route(e2e!), "e2e");
    assert.equal(link.route(old!), strict ? "refused" : "clear");
    assert.equal(link.route(gone!), "refused", "not in the roster: nothing sent");
    assert.ok(link.refusesClear(msg(e2e!)), "no downgrade by a forged clear packet");
    assert.equal(!!link.refusesClear(msg(old!)), strict);
    assert.equal(link.refusesClear({ ...hello({ id: e2e! }) }), undefined, "hellos stay clear");
    // A peer that spoke e2e and left: its clear packets stay refused.
    link.onRosterEvent({ type: "left", peer: roster.get(e2e!)!, reason: "timeout" }, 1);
    roster.goodbye(e2e!, 1, 1);
    assert.ok(link.refusesClear(msg(e2e!)));
    // One that came back as a previous version (its own signed hello without nk): clear again.
    const back = add(hello({ id: e2e!, incarnation: 2, staticKey: undefined }), 2);
    link.onRosterEvent({ type: "joined", peer: back }, 2);
    assert.equal(!!link.refusesClear(msg(e2e!)), strict);
  }
});
