import assert from "node:assert/strict";
import { fingerprintOf, nodeIdOf, SignatureChecker } from "../../src/security/signing.ts";
import { loadOrCreateIdentity } from "../../src/security/identity.ts";
import { newNodeKey } from "../support/hostile.ts";
import { appendSignature, decodePacket, encodePacket, type Hello, SIGNATURE_BLOCK } from "../../src/wire/mod.ts";

const helloOf = (id: string, name = "alice@h1"): Hello => ({
  kind: "hello",
  id,
  incarnation: 3,
  name,
  hostname: "h1",
  port: 47475,
  httpPort: 0,
  version: "0.1.0",
  interval: 2000,
  reply: false,
});

function signedHello(node: ReturnType<typeof newNodeKey>, hello = helloOf(node.id)): Uint8Array {
  return appendSignature(encodePacket(hello), node.signer.publicKey, node.signer.sign);
}

function decodeHello(bytes: Uint8Array): Hello {
  const r = decodePacket(bytes);
  assert.ok(r.ok && r.value.kind === "hello", JSON.stringify(r));
  return r.value as Hello;
}

Deno.test("a signed hello decodes with its key and verifies", () => {
  const node = newNodeKey();
  const bytes = signedHello(node);
  const hello = decodeHello(bytes);
  assert.deepEqual(hello.signed!.publicKey, node.signer.publicKey);
  assert.equal(hello.signed!.data.length, bytes.length - 64);
  assert.deepEqual(new SignatureChecker().check(hello.id, hello.signed), { ok: true });
});

Deno.test("the node id is SHA-256 of the key, for a daemon's own identity and for receivers", async () => {
  const identity = await loadOrCreateIdentity(Deno.makeTempDirSync({ prefix: "lanchat-id-" }));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", identity.publicKey as Uint8Array<ArrayBuffer>));
  const expected = [...digest.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(identity.id, expected);
  assert.equal(nodeIdOf(identity.publicKey), expected);
  assert.match(fingerprintOf(identity.id), /^[0-9a-f]{4}(:[0-9a-f]{4}){3}$/);
});

Deno.test("a hello claiming another node's id with its own key is an impersonation", () => {
  const victim = newNodeKey();
  const attacker = newNodeKey();
  const forged = decodeHello(signedHello(attacker, helloOf(victim.id, "alice@h1")));
  const r = new SignatureChecker().check(victim.id, forged.signed);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, "impersonation");
});

Deno.test("a hello whose signed bytes were changed, or with no signature, is refused", () => {
  const node = newNodeKey();
  const checker = new SignatureChecker();
  const bytes = signedHello(node);
  // Change the port inside the signed JSON: "47475" → "47476".
  const text = new TextDecoder().decode(bytes.subarray(0, bytes.length - SIGNATURE_BLOCK));
  const at = text.indexOf("47475");
  const tampered = bytes.slice();
  tampered[at + 4] = "6".charCodeAt(0);
  const hello = decodeHello(tampered);
  assert.equal(hello.port, 47476);
  assert.deepEqual(checker.check(node.id, hello.signed), {
    ok: false,
    reason: "bad-signature",
    detail: "signature does not verify",
  });
  const unsigned = decodeHello(encodePacket(helloOf(node.id)));
  assert.equal(unsigned.signed, undefined);
  assert.equal(checker.check(node.id, unsigned.signed).ok, false);
});

Deno.test("a signature block of the wrong size is a bad field", () => {
  const node = newNodeKey();
  const bytes = signedHello(node);
  const r = decodePacket(bytes.subarray(0, bytes.length - 1));
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, "bad-field");
});
