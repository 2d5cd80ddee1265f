/**
 * This node as discovery announces it: {@link SelfInfo}, the hello built from
 * it (with the announce interval, the presence and the send time) and the
 * goodbye, signed when the node has a signing key.
 *
 * @module
 */
import { appendSignature, encodePacket, type Hello } from "../wire/mod.ts";

/** This node, as it announces itself. */
export interface SelfInfo {
  id: string;
  incarnation: number;
  name: string;
  hostname: string;
  version: string;
  /** The unicast port peers must answer to. */
  port: number;
  httpPort: number;
  /**
   * This node's state when not online, sent in every hello, and a note, sent
   * apart to each peer over its end-to-end session (node/services/lanchat.ts).
   */
  presence?: "away" | "busy";
  note?: string;
  /** This node's X25519 static key for end-to-end sessions (base64url), sent in every hello (`nk`). */
  staticKey?: string;
  /** Bumped on every change of presence (an auto-reply is sent once per absence). */
  presenceChanges?: number;
  /** It runs the failure detector: announced as `fd` in its hellos. */
  failureDetector?: boolean;
}

/** Signs this node's hellos and goodbyes (see wire `appendSignature`). */
export interface Signer {
  publicKey: Uint8Array;
  sign: (data: Uint8Array) => Uint8Array;
}

/**
 * This node's hello: announced every `interval` ms, an answer to a newcomer
 * when `reply`, stamped with `sentAt` (wall-clock ms) when given.
 */
export function helloOf(s: SelfInfo, interval: number, reply: boolean, sentAt: number | undefined): Hello {
  return {
    kind: "hello",
    id: s.id,
    incarnation: s.incarnation,
    name: s.name,
    hostname: s.hostname,
    port: s.port,
    httpPort: s.httpPort,
    version: s.version,
    interval,
    reply,
    // The note is not in the hello, which every host on the LAN reads: it goes over each peer's session.
    ...(s.presence ? { presence: s.presence } : {}),
    ...(s.staticKey ? { staticKey: s.staticKey } : {}),
    ...(sentAt !== undefined ? { sentAt } : {}),
    ...(s.failureDetector ? { failureDetector: true } : {}),
  };
}

/** This node's goodbye, signed when there is a signer. */
export function goodbyeBytes(s: SelfInfo, signer: Signer | undefined): Uint8Array {
  return signed(encodePacket({ kind: "goodbye", id: s.id, incarnation: s.incarnation }), signer);
}

/** `unsigned` with this node's signature appended, when there is a signer. */
export function signed(unsigned: Uint8Array, signer: Signer | undefined): Uint8Array {
  // Each hello carries its send time, so each is signed afresh (~30 µs).
  return signer ? appendSignature(unsigned, signer.publicKey, signer.sign) : unsigned;
}
