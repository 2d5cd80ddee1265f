import assert from "node:assert/strict";
import { safetyHalf, safetyNumber } from "../../src/security/safety_number.ts";
import { nodeIdOf } from "../../src/security/signing.ts";
import { newNodeKeys } from "../support/e2e_lan.ts";

const node = (edPublic: Uint8Array) => ({ edPublic, id: nodeIdOf(edPublic) });

Deno.test("the safety number matches one computed independently (Python hashlib, the same construction)", () => {
  // python3: h = sha512(b"lanchat safety number v1\n" + pub + id); 5,200 × h = sha512(h + pub);
  // six 40-bit big-endian chunks mod 100,000, five digits each; the two halves sorted.
  const a = node(Uint8Array.from({ length: 32 }, (_, i) => i));
  const b = node(Uint8Array.from({ length: 32 }, (_, i) => 32 + i));
  assert.equal(a.id, "630dcd2966c4336691125448bbb25b4f");
  assert.equal(safetyHalf(a.edPublic, a.id), "270440101101886220484767924645");
  assert.equal(safetyHalf(b.edPublic, b.id), "454066258835829357006925200716");
  assert.equal(
    safetyNumber(a, b),
    "27044 01011 01886 22048 47679 24645 45406 62588 35829 35700 69252 00716",
  );
});

Deno.test("both people see the same 60 digits; another key on either side changes them", () => {
  const alice = node(newNodeKeys().edPublic), bob = node(newNodeKeys().edPublic);
  const number = safetyNumber(alice, bob);
  assert.match(number, /^(\d{5} ){11}\d{5}$/);
  assert.equal(safetyNumber(bob, alice), number);
  const mallory = node(newNodeKeys().edPublic);
  assert.notEqual(safetyNumber(alice, mallory), number);
  assert.notEqual(safetyNumber(mallory, bob), number);
  assert.throws(() => safetyHalf(new Uint8Array(31), alice.id), RangeError);
});
