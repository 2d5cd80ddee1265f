/**
 * Suspicions are authenticated like hellos: the daemon's admission hook
 * (Pins.check, the one hellos and goodbyes go through) takes a suspicion only
 * when it is signed by the key its sender's node id derives from, and that
 * key is the one pinned for the id. Unsigned, tampered or impersonated ones
 * never reach the failure detector.
 */
import assert from "node:assert/strict";
import { Pins } from "../../src/security/pins.ts";
import { Store } from "../../src/storage/store.ts";
import { appendSignature, decodePacket, encodePacket, type Suspect } from "../../src/wire/mod.ts";
import { newNodeKey } from "../support/hostile.ts";

const FROM = { address: "198.18.0.9", port: 47475 };

function suspicionBy(key: ReturnType<typeof newNodeKey>, id = key.id, sign = true): Uint8Array {
  const s: Suspect = { kind: "suspect", id, incarnation: 1, suspect: "b".repeat(32), suspectIncarnation: 4, nonce: 9 };
  const bytes = encodePacket(s);
  return sign ? appendSignature(bytes, key.signer.publicKey, key.signer.sign) : bytes;
}

function decoded(bytes: Uint8Array): Suspect {
  const d = decodePacket(bytes);
  if (!d.ok || d.value.kind !== "suspect") throw new Error(`not a suspicion: ${JSON.stringify(d)}`);
  return d.value;
}

Deno.test("a suspicion reaches the detector only signed by its sender's own, pinned key", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-suspect-" });
  const store = await Store.open(dir);
  try {
    const pins = new Pins(store, () => {});
    const alice = newNodeKey();
    const mallory = newNodeKey();
    // Signed by its sender: taken.
    assert.equal(pins.check(decoded(suspicionBy(alice)), FROM, 0), undefined);
    // Unsigned: refused.
    assert.equal(pins.check(decoded(suspicionBy(alice, alice.id, false)), FROM, 0)?.reason, "bad-signature");
    // Mallory signs a suspicion in Alice's name: the key does not give Alice's id.
    assert.equal(pins.check(decoded(suspicionBy(mallory, alice.id)), FROM, 0)?.reason, "impersonation");
    // A suspicion altered after signing (another suspect): the signature no longer verifies.
    const bytes = suspicionBy(alice);
    const text = new TextDecoder().decode(bytes);
    const at = text.indexOf("b".repeat(32));
    const tampered = bytes.slice();
    tampered.set(new TextEncoder().encode("c".repeat(32)), new TextEncoder().encode(text.slice(0, at)).length);
    assert.equal(pins.check(decoded(tampered), FROM, 0)?.reason, "bad-signature");
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
