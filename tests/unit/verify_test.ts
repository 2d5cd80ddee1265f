/**
 * Verifying a peer, without a daemon: the trust words, a changed key's note
 * as pins keep it, the safety number as the node builds it (the same from
 * both sides, none for an IP Messenger user), the route and what the CLI
 * prints of a hostile name.
 */
import assert from "node:assert/strict";
import type { Api } from "../../src/api/api.ts";
import { HttpError } from "../../src/api/request.ts";
import { peerRoutes } from "../../src/api/routes/peers.ts";
import type { PeerJson, PeerLookup, VerifyJson } from "../../src/api/types.ts";
import { keyNotes } from "../../src/cli/peers.ts";
import { describeVerification, numberLines } from "../../src/cli/verify.ts";
import { verification } from "../../src/node/verify.ts";
import { Pins } from "../../src/security/pins.ts";
import { safetyNumber } from "../../src/security/safety_number.ts";
import { keyChangeNote, trustState } from "../../src/security/trust_words.ts";
import { Store } from "../../src/storage/store.ts";
import type { Hello } from "../../src/wire/mod.ts";
import { helloFor, newNodeKey } from "../support/hostile.ts";

/** Whether a text has a C0 control character or DEL. */
const hasControl = (s: string) => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

type Key = ReturnType<typeof newNodeKey>;

function signedHello(key: Key, name: string): Hello {
  const signature = new Uint8Array(64);
  return { ...helloFor(key.id, name, 40000), signed: { publicKey: key.signer.publicKey, signature, data: signature } };
}

async function withPins(fn: (pins: Pins) => void | Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-verify-" });
  const store = await Store.open(dir);
  try {
    await fn(new Pins(store, () => {}));
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("trust states in words: verified, not verified, key changed, replaced; none without a pin", () => {
  const rows: [Parameters<typeof trustState>[0], string | undefined][] = [
    ["trusted", "verified"],
    ["tofu", "not verified"],
    ["conflict", "key changed"],
    ["replaced", "replaced"],
    [undefined, undefined],
  ];
  for (const [trust, words] of rows) assert.equal(trustState(trust), words, String(trust));
  const pin = { id: "a".repeat(32), key: "00", name: "bob", firstSeen: 0, trust: "tofu" as const };
  assert.equal(keyChangeNote(pin, undefined), undefined, "a key pinned on first use did not change");
  assert.equal(keyChangeNote({ ...pin, trust: "trusted" }, undefined), undefined);
  assert.match(keyChangeNote({ ...pin, trust: "conflict" }, undefined)!, /^bob's key changed: .* pinned for bob\. /);
});

Deno.test("a second key for a pinned name is a key change, said in words; verifying it hands it the name", async () => {
  await withPins((pins) => {
    const bob = newNodeKey();
    const other = newNodeKey();
    pins.pinOnFirstUse(signedHello(bob, "bob"), 1000, "198.18.0.2:47475");
    assert.equal(pins.note(bob.id), undefined);
    pins.trust(bob.id);
    pins.pinOnFirstUse(signedHello(other, "bob"), 2000, "198.18.0.9:47475");
    const note = pins.note(other.id)!;
    assert.match(
      note,
      /^bob's key changed: this key \([0-9a-f:]+\) is not the one pinned for bob \(key [0-9a-f:]+, which you verified\)/,
    );
    assert.match(note, new RegExp(`lanchat verify ${other.id.slice(0, 8)}`));
    assert.deepEqual(pins.keyChanges(), [{ id: other.id, name: "bob", note }]);
    pins.trust(other.id);
    assert.equal(pins.note(other.id), undefined);
    assert.match(pins.note(bob.id)!, /^bob's name went to another key you verified \(key [0-9a-f:]+\)/);
    assert.deepEqual(pins.keyChanges(), []);
  });
});

Deno.test("key changes listed in status are bounded, newest first", async () => {
  await withPins((pins) => {
    pins.pinOnFirstUse(signedHello(newNodeKey(), "bob"), 0, "x");
    const keys = Array.from({ length: 15 }, () => newNodeKey());
    keys.forEach((k, i) => pins.pinOnFirstUse(signedHello(k, "bob"), (i + 1) * 1000, "x"));
    const changes = pins.keyChanges();
    assert.deepEqual(changes.map((c) => c.id), keys.slice(5).reverse().map((k) => k.id));
    assert.ok(changes.every((c) => /first seen, never verified/.test(c.note)));
  });
});

Deno.test("the safety number is the same from both nodes; an IP Messenger user or an unpinned peer gets none", async () => {
  const alice = newNodeKey();
  const bob = newNodeKey();
  await withPins(async (pinsA) => {
    await withPins((pinsB) => {
      pinsA.pinOnFirstUse(signedHello(bob, "bob"), 0, "x");
      pinsB.pinOnFirstUse(signedHello(alice, "alice"), 0, "x");
      const selfA = { id: alice.id, name: () => "alice", publicKey: alice.signer.publicKey };
      const selfB = { id: bob.id, name: () => "bob", publicKey: bob.signer.publicKey };
      const onA = verification({ pins: pinsA, self: selfA, peer: { id: bob.id, name: "bob" }, ipmsg: false });
      const onB = verification({ pins: pinsB, self: selfB, peer: { id: alice.id, name: "alice" }, ipmsg: false });
      assert.equal(onA.safetyNumber, onB.safetyNumber);
      assert.equal(
        onA.safetyNumber,
        safetyNumber({ edPublic: alice.signer.publicKey, id: alice.id }, {
          edPublic: bob.signer.publicKey,
          id: bob.id,
        }),
      );
      assert.deepEqual([onA.state, onA.peer.id, onA.self.id, onA.keyNote], [
        "not verified",
        bob.id,
        alice.id,
        undefined,
      ]);
      const ipmsg = () => verification({ pins: pinsA, self: selfA, peer: { id: bob.id, name: "dave" }, ipmsg: true });
      assert.throws(ipmsg, (e) => e instanceof HttpError && e.status === 422 && /no node key/.test(e.message));
      const unpinned = () =>
        verification({ pins: pinsA, self: selfA, peer: { id: "c".repeat(32), name: "carl" }, ipmsg: false });
      assert.throws(unpinned, (e) => e instanceof HttpError && e.status === 404 && /No key is pinned/.test(e.message));
    });
  });
});

Deno.test("GET /peers/PEER/verify resolves PEER as every route does; a malformed path is a 404, never a crash", async () => {
  const BOB = { id: "b".repeat(32), name: "bob@h2", hostname: "h2", online: true };
  const asked: string[] = [];
  const api = {
    lookupPeer: (q: string): PeerLookup => {
      asked.push(q);
      return q === "bob@h2"
        ? { ok: true, peer: BOB }
        : q === "b"
        ? { ok: false, reason: "ambiguous", candidates: [BOB, { ...BOB, id: "b2".padEnd(32, "0") }] }
        : q === "dave"
        ? { ok: true, peer: { ...BOB, id: "d".repeat(32), name: "dave" } }
        : { ok: false, reason: "unknown", candidates: [] };
    },
    verifyPeer: (id: string): VerifyJson => {
      if (id.startsWith("d")) throw new HttpError(422, "dave is an IP Messenger user: that protocol has no node key");
      return {
        peer: { id, name: "bob@h2", fingerprint: "bbbb:bbbb:bbbb:bbbb" },
        self: { id: "a".repeat(32), name: "alice", fingerprint: "aaaa:aaaa:aaaa:aaaa" },
        safetyNumber: Array(12).fill("12345").join(" "),
        trust: "tofu",
        state: "not verified",
      };
    },
  } as unknown as Api;
  const router = peerRoutes(api);
  const get = (path: string) => router.handle(new Request(`http://127.0.0.1${path}`));
  const ok = await get("/peers/bob%40h2/verify");
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).peer.id, BOB.id);
  const ambiguous = await get("/peers/b/verify");
  assert.equal(ambiguous.status, 409);
  assert.equal((await ambiguous.json()).candidates.length, 2);
  const ipmsg = await get("/peers/dave/verify");
  assert.equal(ipmsg.status, 422);
  assert.match((await ipmsg.json()).error, /no node key/);
  const malformed = await get("/peers/%E0%A4%A/verify");
  assert.equal(malformed.status, 404);
  await malformed.body?.cancel();
  assert.equal(asked.at(-1), "%E0%A4%A");
  const post = await router.handle(new Request("http://127.0.0.1/peers/bob/verify", { method: "POST" }));
  assert.equal(post.status, 405);
  await post.body?.cancel();
});

Deno.test("the CLI prints the number in 3 lines of 4 groups and a hostile name without its control characters", () => {
  const number = Array.from({ length: 12 }, (_, i) => String(i + 1).padStart(5, "0")).join(" ");
  assert.deepEqual(numberLines(number), [
    "    00001  00002  00003  00004",
    "    00005  00006  00007  00008",
    "    00009  00010  00011  00012",
  ]);
  const hostile = "bob\x1b[2J\x1b]0;pwned\x07\nroot";
  const v: VerifyJson = {
    peer: { id: "b".repeat(32), name: hostile, fingerprint: "bbbb:bbbb:bbbb:bbbb" },
    self: { id: "a".repeat(32), name: "alice", fingerprint: "aaaa:aaaa:aaaa:aaaa" },
    safetyNumber: number,
    trust: "conflict",
    state: "key changed",
    keyNote: `${hostile}'s key changed: this key`,
  };
  const text = describeVerification(v).join("\n");
  assert.ok(!hasControl(text.replaceAll("\n", "")), "no control character but newlines between lines");
  assert.match(text, /^KEY CHANGED: bob.*'s key changed: this key$/m);
  const peer = { id: "b".repeat(32), trust: "conflict", keyNote: `${hostile} changed` } as PeerJson;
  const [line] = keyNotes([peer, { ...peer, keyNote: undefined, trust: "tofu" }]);
  assert.ok(!hasControl(line!));
  assert.equal(keyNotes([peer, { ...peer, keyNote: undefined }]).length, 1);
});
