/**
 * A new key claiming a pinned name is a key change (`KEY CHANGED`), and a
 * name that reads as the pinned one claims it too: `bo\u00ADb`, `bob\u200B`,
 * `ｂｏｂ` are `bob` with characters that print as nothing or in another
 * form (hostile test of issue 26: six rows named bob, none flagged).
 */
import assert from "node:assert/strict";
import { nameKey } from "../../src/common/name_key.ts";
import { printableLine } from "../../src/common/printable.ts";
import { Pins } from "../../src/security/pins.ts";
import { Store } from "../../src/storage/store.ts";
import type { Hello } from "../../src/wire/mod.ts";
import { helloFor, newNodeKey } from "../support/hostile.ts";

function signedHello(key: ReturnType<typeof newNodeKey>, name: string): Hello {
  const signature = new Uint8Array(64);
  return { ...helloFor(key.id, name, 40000), signed: { publicKey: key.signer.publicKey, signature, data: signature } };
}

async function withPins(fn: (pins: Pins, store: Store) => void): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-claim-" });
  const store = await Store.open(dir);
  try {
    fn(new Pins(store, () => {}), store);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

const LOOKALIKES = [
  "bo\u00adb", // soft hyphen
  "bo\u034fb", // combining grapheme joiner
  "bo\u200cb",
  "bo\u200db",
  "bob\u200b",
  "\u2060bob",
  "bob\u{e0020}", // tag characters
  "bob\u{e0062}",
  "bob\ufe0f", // a variation selector
  "bo\u202ab\u202c", // an embedding
  "\uff42\uff4f\uff42", // fullwidth
  "\u{1d41b}\u{1d428}\u{1d41b}", // mathematical bold
];

Deno.test("a name that reads as a pinned name is a key change for it, said in words", async () => {
  await withPins((pins) => {
    const bob = newNodeKey();
    pins.pinOnFirstUse(signedHello(bob, "bob"), 1000, "198.18.0.2:47475");
    for (const [i, name] of LOOKALIKES.entries()) {
      const other = newNodeKey();
      pins.pinOnFirstUse(signedHello(other, name), 2000 + i, "198.18.0.9:47475");
      assert.equal(pins.get(other.id)?.trust, "conflict", JSON.stringify(name));
      const note = pins.note(other.id)!;
      assert.match(note, /is not the one pinned for bob \(key [0-9a-f:]+, first seen, never verified\)/, note);
      assert.ok(!printableLine(note).startsWith("bob's"), `the claimant reads as bob: ${printableLine(note)}`);
    }
    assert.equal(pins.keyChanges(50).length, LOOKALIKES.length);
    assert.equal(pins.get(bob.id)?.trust, "tofu");
  });
});

Deno.test("names that read differently do not claim each other; case and other scripts are not folded", async () => {
  await withPins((pins) => {
    pins.pinOnFirstUse(signedHello(newNodeKey(), "bob"), 1000, "x");
    for (const name of ["bobby", "bo b", "Bob", "b\u043eb", "bo-b", "bo\u0301b"]) {
      const k = newNodeKey();
      pins.pinOnFirstUse(signedHello(k, name), 2000, "x");
      assert.equal(pins.get(k.id)?.trust, "tofu", JSON.stringify(name));
    }
  });
});

Deno.test("verifying a lookalike's key hands it the name: the key pinned for the plain name is replaced", async () => {
  await withPins((pins, store) => {
    const bob = newNodeKey();
    const other = newNodeKey();
    pins.pinOnFirstUse(signedHello(bob, "bob"), 1000, "x");
    pins.pinOnFirstUse(signedHello(other, "bo\u00adb"), 2000, "x");
    pins.trust(other.id);
    assert.equal(pins.get(bob.id)?.trust, "replaced");
    assert.match(pins.note(bob.id)!, /^bob's name went to another key you verified/);
    // As the database keeps it, after a restart.
    const again = new Pins(store, () => {});
    assert.equal(again.get(bob.id)?.trust, "replaced");
    assert.equal(again.get(other.id)?.trust, "trusted");
  });
});

Deno.test("the name key drops what prints as nothing and folds compatibility forms, and nothing else", () => {
  for (const name of LOOKALIKES) assert.equal(nameKey(name), "bob", JSON.stringify(name));
  assert.equal(nameKey("\ufb01le"), "file");
  assert.equal(nameKey("می\u200cخواهم"), "میخواهم");
  assert.equal(nameKey("Bob"), "Bob");
  assert.equal(nameKey(""), "");
  assert.equal(nameKey("\u200b\u00ad"), "");
  // A lone surrogate (a hostile name) does not throw.
  assert.equal(typeof nameKey("bo\ud800b"), "string");
});
