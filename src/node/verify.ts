/**
 * A peer's safety number and trust, for `GET /peers/PEER/verify` (`lanchat
 * verify PEER`, the web page's Verify): the 60-digit number over this
 * node's and the peer's pinned Ed25519 keys, the same on both sides, and
 * what the pin's trust means in words. IP Messenger users have no node
 * key: no number is made up for them.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { HttpError } from "../api/request.ts";
import type { VerifyJson } from "../api/types.ts";
import type { Pins } from "../security/pins.ts";
import { joinHalves, safetyHalf } from "../security/safety_number.ts";
import { fingerprintOf } from "../security/signing.ts";
import { trustState } from "../security/trust_words.ts";

/** Most halves kept; past it the cache starts over. */
const HALVES_KEPT = 1024;
/** Halves made (~20 ms of SHA-512 each, on the event loop), by node id and key: asked again, they cost nothing. */
const halves = new Map<string, string>();

/** A node's half of a safety number, made once per id and key. */
function half(id: string, key: Uint8Array): string {
  const k = `${id}:${Buffer.from(key).toString("hex")}`;
  let h = halves.get(k);
  if (h === undefined) {
    if (halves.size >= HALVES_KEPT) halves.clear();
    halves.set(k, h = safetyHalf(key, id));
  }
  return h;
}

/** This node, as the safety number needs it. */
export interface SelfKey {
  id: string;
  name: () => string;
  publicKey: Uint8Array;
}

/**
 * The safety number and trust of the peer `id`: a 422 for an IP Messenger
 * user (that protocol has no node key), a 404 when no key is pinned for it.
 */
export function verification(
  o: { pins: Pins; self: SelfKey; peer: { id: string; name: string }; ipmsg: boolean },
): VerifyJson {
  const { pins, self, peer } = o;
  if (o.ipmsg) {
    throw new HttpError(
      422,
      `${peer.name} is an IP Messenger user: that protocol has no node key, so there is no safety number to ` +
        `compare (its messages are not end-to-end encrypted by lanchat)`,
    );
  }
  const pin = pins.get(peer.id);
  if (!pin) {
    throw new HttpError(
      404,
      `No key is pinned for ${peer.name} (${peer.id}): it has not been seen since its key was forgotten; ` +
        `verify it once it is online again`,
    );
  }
  const note = pins.note(pin.id);
  return {
    peer: { id: pin.id, name: pin.name, fingerprint: fingerprintOf(pin.id) },
    self: { id: self.id, name: self.name(), fingerprint: fingerprintOf(self.id) },
    safetyNumber: joinHalves(
      half(self.id, self.publicKey),
      half(pin.id, new Uint8Array(Buffer.from(pin.key, "hex"))),
    ),
    trust: pin.trust,
    state: trustState(pin.trust)!,
    ...(note ? { keyNote: note } : {}),
  };
}
