/**
 * The Noise IK handshake (src/security/noise.ts) against published test
 * vectors, both ways with fresh keys, and with every byte tampered; the e2e
 * framing and the static key binding (src/security/e2e_wire.ts).
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import {
  aeadOpen,
  aeadSeal,
  DhKey,
  IkInitiator,
  IkResponder,
  NoiseError,
  type NoiseHash,
} from "../../src/security/noise.ts";
import * as w from "../../src/security/e2e_wire.ts";
import { nodeIdOf, NodeSigner } from "../../src/security/signing.ts";
import { loadOrCreateIdentity } from "../../src/security/identity.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));
const toHex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

interface Vector {
  source: string;
  hash: NoiseHash;
  prologue: string;
  initStatic: string;
  initEphemeral: string;
  respStatic: string;
  respEphemeral: string;
  handshakeHash?: string;
  /** [payload, ciphertext]: two handshake messages, then transport messages alternating initiator, responder. */
  messages: [string, string][];
}

const CACOPHONY = "haskell-cryptography/cacophony vectors/cacophony.txt @ 8ee9d41e34a1a596cfa3ab12aa4069ff87dc1247";
const CACOPHONY_KEYS = {
  prologue: "4a6f686e2047616c74",
  initStatic: "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
  initEphemeral: "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
  respStatic: "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
  respEphemeral: "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
};
const CACOPHONY_PAYLOADS = [
  "4c756477696720766f6e204d69736573",
  "4d757272617920526f746862617264",
  "462e20412e20486179656b",
  "4361726c204d656e676572",
  "4a65616e2d426170746973746520536179",
  "457567656e2042f6686d20766f6e2042617765726b",
];

const VECTORS: Vector[] = [{
  source: `${CACOPHONY}, Noise_IK_25519_ChaChaPoly_SHA256`,
  hash: "sha256",
  ...CACOPHONY_KEYS,
  handshakeHash: "0b0f68fb0c27e03ce9b97565995ed4838cc0581b762ef72b062f6a546419fad7",
  messages: [
    "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944718da798efbcd91528520204f904b9bd6c7413dccdc214d951e15253e39987f18146e8cd0873654207148333479d4d16c289f0294b29960a72f48e0b7bba2e89083169825e59642148d492020664ccf7",
    "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088435361e70b2ed446e6c9ec387d1d6b3b840f194e373979d241b203c4acafccf5",
    "050e9f3c8fac16b68dbce8f8c4bfbf6617c897f9ada4aa29aa19c8",
    "344233a6cabb7141d80f3da2fedc311d9646bbb0f505afe403a667",
    "62cdeeb172ad7ade7aa7d9e069da5790f12331bfa00177787a1d0810c67dc3b2b4",
    "029bead1b40992327044d409d9a1f3ad8f36c3c452775d557e18bbeb2e8dfcead32d514024",
  ].map((c, i) => [CACOPHONY_PAYLOADS[i]!, c]),
}, {
  source: `${CACOPHONY}, Noise_IK_25519_ChaChaPoly_BLAKE2s`,
  hash: "blake2s256",
  ...CACOPHONY_KEYS,
  handshakeHash: "48f3cb8bc9319da4ba1e9933991b1c4ed4034f1f126a76d3a1fbcfd7f94248d4",
  messages: [
    "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79440b03ddc7aac5123d06a1b23b71670e32e76c28239a7ca4ac8f784de7e44c1adbfc6e83fef7352a58d9d56157400c0a737b1d171ce368229c7b752ac25b8faf4eca690f6d896f543be02c996ab2b86b76",
    "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843d9b5a8927f0ac9655ef76833bc7e5561f42e691ac8404efd6fbd6308b6a27c",
    "2c256ed08fcd08c2980f954ee4beaccb61c9581340f5dd2fd1cf3b",
    "d6033f70eee20945c7c9dba304e397ee3b284ff5e00fd9efb095d3",
    "a9c068ca5d8babf72560652d8e851adbfac35c8a66e810d560863173e96adf4cfe",
    "2a09d8f459e5927e40fdd2eddc99bdafb04e13a26f145cb5cfe9e6ba34c94331ebc17d5156",
  ].map((c, i) => [CACOPHONY_PAYLOADS[i]!, c]),
}, {
  source:
    "mcginty/snow tests/vectors/snow.txt @ 8ac60f51cfe3e010c84f0a454cc575ad9204fa12, Noise_IK_25519_ChaChaPoly_SHA256",
  hash: "sha256",
  prologue:
    "5468657265206973206e6f20726967687420616e642077726f6e672e2054686572652773206f6e6c792066756e20616e6420626f72696e672e",
  initStatic: "f49f93c5112c0787acc808d61716d7e090e076a58f15a3f78d92773f8dcb473b",
  initEphemeral: "dae68498c41315cff7e4a34dded8d973199d8f0cf3fcb8b6651c169de77de8be",
  respStatic: "b790546f98b1e933c48cd01f17e7b281469d46fcacc9a3b584ae65b1d6272e8e",
  respEphemeral: "c0875a5b59c8492bd2135e5432d7d484f938e0a1f5009428c4bcb70b2f69f69f",
  messages: [
    [
      "95a8f51c435a9530ff1f30868ed7b23ec952eb513c26a0774fed82d2978a8c81",
      "6d21fec9141f3f37cc464e936a48b2d9521b5a44e0f3d960895d3c3fba30282f731f445c25e898e2534ac0536715b24308c108fc46bd260c887b36c3f68e3a05654fc8295c068ed53fb2022560961224e0b10b0835e1efc82fc587cd50f7178fe3d9eb06e0351c6e7334162c10bed670bfa2a105f7b2768a140b3fd597782601",
    ],
    [
      "b866b807a6d8b83182b884dbfedc861843c5082bd6e480cb54e4245a72083041",
      "e64e1fb8701c4f4bc3850b255fea657d4d835338b059c89acc99628fbe52473b41a4e79e3c1e6abc46bf80f078a005e15d8a3e04f989af3e6cb99b52031165006163ac3e17b928af8c116009d7bf4fb2",
    ],
    [
      "e3a4937faef391028f759758b428b57652e0069a8dee64dfed01b60846938740",
      "2bebe19102169cdfe79cf41e38930bfd20a5b2fc78ccf33e853ddd939c0983174656eb27b61464a607762848892ca1c0",
    ],
    [
      "693972f27b0cb98aeac1fb54d782125431e7540e0cb2fa882cf51a8184d724fd",
      "c7c56da33b45d12f4754e17978bd49999c9c8f51d00db460f902aba2e6e245d0c46662f507915de8596f43b1d175f1db",
    ],
  ],
}];

for (const v of VECTORS) {
  Deno.test(`IK matches the published vector: ${v.source}`, () => {
    const prologue = hex(v.prologue);
    const rs = DhKey.fromPrivate(hex(v.respStatic));
    const initiator = new IkInitiator(
      { s: DhKey.fromPrivate(hex(v.initStatic)), prologue, hash: v.hash, e: DhKey.fromPrivate(hex(v.initEphemeral)) },
      rs.publicKey,
    );
    const [m1, m2, ...transport] = v.messages;
    const msg1 = initiator.writeMessage1(hex(m1![0]));
    assert.equal(toHex(msg1), m1![1]);
    const responder = IkResponder.readMessage1({ s: rs, prologue, hash: v.hash }, msg1);
    assert.equal(toHex(responder.payload), m1![0]);
    assert.equal(toHex(responder.rs), toHex(DhKey.fromPrivate(hex(v.initStatic)).publicKey));
    const r2 = responder.writeMessage2(hex(m2![0]), DhKey.fromPrivate(hex(v.respEphemeral)));
    assert.equal(toHex(r2.message), m2![1]);
    const i2 = initiator.readMessage2(r2.message);
    assert.equal(toHex(i2.payload), m2![0]);
    if (v.handshakeHash) {
      assert.equal(toHex(i2.keys.handshakeHash), v.handshakeHash);
      assert.equal(toHex(r2.keys.handshakeHash), v.handshakeHash);
    }
    transport.forEach(([payload, ciphertext], i) => {
      const [sender, receiver] = i % 2 === 0 ? [i2.keys, r2.keys] : [r2.keys, i2.keys];
      const n = Math.floor(i / 2);
      assert.equal(toHex(aeadSeal(sender.send, n, new Uint8Array(), hex(payload))), ciphertext, `message ${i + 2}`);
      assert.equal(toHex(aeadOpen(receiver.receive, n, new Uint8Array(), hex(ciphertext))!), payload);
    });
  });
}

function handshake(prologue = new Uint8Array(3)) {
  const a = DhKey.generate(), b = DhKey.generate();
  const initiator = new IkInitiator({ s: a, prologue }, b.publicKey);
  const msg1 = initiator.writeMessage1(new TextEncoder().encode("hi"));
  return { a, b, initiator, msg1, prologue };
}

Deno.test("IK with fresh keys: both sides agree, and each direction has its own key", () => {
  const { a, b, initiator, msg1, prologue } = handshake();
  const responder = IkResponder.readMessage1({ s: b, prologue }, msg1);
  assert.deepEqual(responder.rs, a.publicKey);
  const { message, keys: rk } = responder.writeMessage2(new Uint8Array());
  const { keys: ik } = initiator.readMessage2(message);
  assert.deepEqual(ik.send, rk.receive);
  assert.deepEqual(ik.receive, rk.send);
  assert.notDeepEqual(ik.send, ik.receive);
  assert.deepEqual(ik.handshakeHash, rk.handshakeHash);
});

Deno.test("IK refuses every tampered byte of either message, and another prologue or responder", () => {
  const { b, initiator, msg1, prologue } = handshake();
  for (let i = 0; i < msg1.length; i++) {
    const bad = msg1.slice();
    bad[i]! ^= 0x01;
    assert.throws(() => IkResponder.readMessage1({ s: b, prologue }, bad), NoiseError, `message 1 byte ${i}`);
  }
  assert.throws(() => IkResponder.readMessage1({ s: b, prologue: new Uint8Array(4) }, msg1), NoiseError);
  assert.throws(() => IkResponder.readMessage1({ s: DhKey.generate(), prologue }, msg1), NoiseError);
  const { message } = IkResponder.readMessage1({ s: b, prologue }, msg1).writeMessage2(new Uint8Array(4));
  for (let i = 0; i < message.length; i++) {
    const bad = message.slice();
    bad[i]! ^= 0x80;
    assert.throws(() => initiator.readMessage2(bad), NoiseError, `message 2 byte ${i}`);
  }
  // The forgeries left the initiator as it was: the genuine answer still completes it, once.
  initiator.readMessage2(message);
  assert.throws(() => initiator.readMessage2(message), NoiseError);
});

Deno.test("IK messages are used once and in order", () => {
  const { b, initiator, msg1, prologue } = handshake();
  assert.throws(() => initiator.writeMessage1(new Uint8Array()), NoiseError);
  const responder = IkResponder.readMessage1({ s: b, prologue }, msg1);
  responder.writeMessage2(new Uint8Array());
  assert.throws(() => responder.writeMessage2(new Uint8Array()), NoiseError);
  const fresh = new IkInitiator({ s: DhKey.generate(), prologue }, b.publicKey);
  assert.throws(() => fresh.readMessage2(new Uint8Array(48)), NoiseError);
});

Deno.test("X25519 refuses low-order public keys (an all-zero shared secret)", () => {
  const k = DhKey.generate();
  assert.throws(() => k.dh(new Uint8Array(32)), NoiseError);
  assert.throws(() => k.dh(Uint8Array.of(1, ...new Uint8Array(31))), NoiseError);
  const { msg1, prologue } = handshake();
  const zeroE = msg1.slice();
  zeroE.fill(0, 0, 32);
  assert.throws(() => IkResponder.readMessage1({ s: k, prologue }, zeroE), NoiseError);
});

function nodeKey() {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(12));
  const pkcs8 = new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" }));
  return { raw, pkcs8, signer: new NodeSigner(pkcs8, raw) };
}

Deno.test("the X25519 static key is derived from the node key, stable, and bound to it by a signature", () => {
  const k = nodeKey();
  const one = w.staticIdentityOf(k.pkcs8, k.raw, k.signer.sign);
  const again = w.staticIdentityOf(k.pkcs8, k.raw, k.signer.sign);
  assert.equal(one.id, nodeIdOf(k.raw));
  assert.deepEqual(one.dh.publicKey, again.dh.publicKey, "the same node key gives the same static key");
  assert.ok(w.verifyBinding(k.raw, one.dh.publicKey, one.binding));
  const other = nodeKey();
  const theirs = w.staticIdentityOf(other.pkcs8, other.raw, other.signer.sign);
  assert.notDeepEqual(theirs.dh.publicKey, one.dh.publicKey);
  assert.ok(!w.verifyBinding(k.raw, theirs.dh.publicKey, one.binding), "a binding vouches for one static key");
  assert.ok(!w.verifyBinding(other.raw, one.dh.publicKey, one.binding), "and by one node key");
  assert.ok(!w.verifyBinding(k.raw.subarray(1), one.dh.publicKey, one.binding), "a malformed key is false, no throw");
  const flipped = one.binding.slice();
  flipped[10]! ^= 4;
  assert.ok(!w.verifyBinding(k.raw, one.dh.publicKey, flipped));
});

Deno.test("a daemon's own node key (WebCrypto, from its data directory) gives the same static key after a restart", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-e2e-id-" });
  try {
    const first = await loadOrCreateIdentity(dir);
    const again = await loadOrCreateIdentity(dir);
    assert.ok(first.created && !again.created);
    const mine = (i: typeof first) =>
      w.staticIdentityOf(i.pkcs8, i.publicKey, new NodeSigner(i.pkcs8, i.publicKey).sign);
    const before = mine(first), after = mine(again);
    assert.deepEqual(after.dh.publicKey, before.dh.publicKey);
    assert.equal(after.id, first.id);
    assert.ok(w.verifyBinding(first.publicKey, after.dh.publicKey, before.binding));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the hello's nk field: a static key as 43 base64url characters, and nothing else taken", () => {
  const key = DhKey.generate().publicKey;
  const text = w.staticKeyText(key);
  assert.match(text, /^[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(w.parseStaticKeyText(text), key);
  for (const bad of [undefined, 42, "", text + "A", text.slice(1), text.replace(/.$/, "="), "+".repeat(43)]) {
    assert.equal(w.parseStaticKeyText(bad), undefined, String(bad));
  }
  // 43 characters carry 258 bits: the last two must be zero, or two texts would name one key.
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const noncanonical = text.slice(0, -1) + alphabet[alphabet.indexOf(text.at(-1)!) | 1];
  assert.equal(w.parseStaticKeyText(noncanonical), undefined);
});

Deno.test("initiation payloads round-trip, and stamps order by incarnation then sequence", () => {
  const p = {
    senderIndex: 0xdeadbeef,
    stamp: { incarnation: 2 ** 40 + 3, sequence: 7 },
    edPublic: new Uint8Array(32).fill(1),
    binding: new Uint8Array(64).fill(2),
  };
  const bytes = w.encodeInitiationPayload(p);
  assert.equal(bytes.length, w.INITIATION_PAYLOAD);
  assert.deepEqual(w.decodeInitiationPayload(bytes), p);
  assert.equal(w.decodeInitiationPayload(bytes.subarray(1)), undefined);
  const huge = bytes.slice();
  huge[4] = 0xff;
  assert.equal(w.decodeInitiationPayload(huge), undefined, "an incarnation past 2^53 is refused");
  const rows: [w.Stamp, w.Stamp, number][] = [
    [{ incarnation: 1, sequence: 9 }, { incarnation: 2, sequence: 0 }, -1],
    [{ incarnation: 2, sequence: 0 }, { incarnation: 2, sequence: 0 }, 0],
    [{ incarnation: 2, sequence: 5 }, { incarnation: 2, sequence: 4 }, 1],
  ];
  for (const [a, b, sign] of rows) assert.equal(Math.sign(w.compareStamps(a, b)), sign);
});

Deno.test("e2e framing: sizes, magic, and what parseE2e refuses", () => {
  assert.equal(w.INITIATION_SIZE, 230);
  assert.equal(w.RESPONSE_SIZE, 78);
  assert.equal(w.DATA_OVERHEAD, 34);
  assert.equal(w.MAX_INNER, 1232 - 34);
  assert.ok(w.isE2e(w.headerOf(1)));
  assert.ok(!w.isE2e(new TextEncoder().encode("LNCH\x01\x05")), "a clear datagram is not e2e");
  assert.ok(!w.isE2e(new TextEncoder().encode("LNCK\x01")), "nor one sealed with the network key");
  const data = w.dataHeader(0x01020304, 2 ** 32 + 5);
  const parsed = w.parseE2e(new Uint8Array([...data, ...new Uint8Array(16)]));
  assert.ok(typeof parsed !== "string" && parsed.type === "data");
  assert.equal(parsed.receiverIndex, 0x01020304);
  assert.equal(parsed.counter, 2 ** 32 + 5);
  const rows: [Uint8Array, RegExp][] = [
    [new Uint8Array([0x4c, 0x4e, 0x43]), /not an e2e/],
    [Uint8Array.of(...w.E2E_MAGIC, 2, 1), /version 2/],
    [Uint8Array.of(...w.headerOf(9)), /unknown e2e type 9/],
    [Uint8Array.of(...w.headerOf(1), 0), /initiation of 7 bytes/],
    [Uint8Array.of(...w.headerOf(2), ...new Uint8Array(80)), /response of 86 bytes/],
    [Uint8Array.of(...w.headerOf(3), ...new Uint8Array(20)), /under 34/],
  ];
  for (const [bytes, why] of rows) assert.match(w.parseE2e(bytes) as string, why);
});

Deno.test("mac1 is keyed by the receiver's static key and covers every byte before it", () => {
  const receiver = DhKey.generate().publicKey;
  const body = new Uint8Array(40).fill(7);
  const packet = new Uint8Array([...body, ...w.mac1(receiver, body)]);
  assert.ok(w.mac1Holds(receiver, packet));
  assert.ok(!w.mac1Holds(DhKey.generate().publicKey, packet));
  for (let i = 0; i < packet.length; i++) {
    const bad = packet.slice();
    bad[i]! ^= 1;
    assert.ok(!w.mac1Holds(receiver, bad), `byte ${i}`);
  }
});
