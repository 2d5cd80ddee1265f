/**
 * The safety number two people compare to verify each other's node keys
 * (`lanchat verify PEER`, the web page), on the model of Signal's numeric
 * fingerprint: 60 digits, the same on both sides, read aloud in 12 groups of
 * five. Each side's half is 30 digits from its own Ed25519 key and node id,
 * hashed 5,200 times with SHA-512 so that making a key whose half matches
 * another's costs about 2^112 hashes rather than 2^100; the halves are put in
 * ascending order, so neither side's view depends on who is "local".
 *
 * @module
 */
import { createHash } from "node:crypto";

const VERSION = new TextEncoder().encode("lanchat safety number v1\n");
const ITERATIONS = 5200;

/** The 30-digit half of a safety number for one node. */
export function safetyHalf(edPublic: Uint8Array, nodeId: string): string {
  if (edPublic.length !== 32) throw new RangeError("An Ed25519 public key is 32 bytes");
  let hash = createHash("sha512").update(VERSION).update(edPublic).update(nodeId).digest();
  for (let i = 0; i < ITERATIONS; i++) hash = createHash("sha512").update(hash).update(edPublic).digest();
  let digits = "";
  for (let chunk = 0; chunk < 6; chunk++) {
    let n = 0;
    for (let i = 0; i < 5; i++) n = n * 256 + hash[chunk * 5 + i]!;
    digits += String(n % 100_000).padStart(5, "0");
  }
  return digits;
}

/** The 60-digit safety number of two nodes, as 12 groups of five digits; symmetric. */
export function safetyNumber(
  a: { edPublic: Uint8Array; id: string },
  b: { edPublic: Uint8Array; id: string },
): string {
  return joinHalves(safetyHalf(a.edPublic, a.id), safetyHalf(b.edPublic, b.id));
}

/** The safety number of two halves (see {@link safetyHalf}), for a caller that keeps halves already made. */
export function joinHalves(a: string, b: string): string {
  return [a, b].sort().join("").match(/\d{5}/g)!.join(" ");
}
