/**
 * lanchat's handshake messages, as wireguard-go's `CreateMessageInitiation`,
 * `ConsumeMessageInitiation`, `CreateMessageResponse` and
 * `ConsumeMessageResponse`: the Noise IK messages (noise.ts) in their
 * framing (e2e_wire.ts), with the checks that need no state: mac1, the
 * Noise authentication, the payload, and the node key's signature of the
 * initiator's static key. What needs state (the pin, the last stamp, the
 * pending handshake) is the session table's (e2e_sessions.ts). Pure.
 *
 * @module
 */
import { concat, IkInitiator, IkResponder, NoiseError, type TransportKeys } from "./noise.ts";
import * as w from "./e2e_wire.ts";
import { nodeIdOf } from "./signing.ts";

export type E2eDropReason =
  | "malformed"
  | "auth"
  | "replay"
  | "unknown-session"
  | "bad-signature"
  | "refused"
  | "impersonation"
  | "rate-limit"
  | "self";

export interface Drop {
  kind: "drop";
  reason: E2eDropReason;
  detail: string;
}

export function drop(reason: E2eDropReason, detail: string): Drop {
  return { kind: "drop", reason, detail };
}

const PROLOGUE = w.prologueOf(w.headerOf(w.E2eType.initiation));

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** An initiation from `me` to the node whose static key is `peerStatic`, and the state that reads its response. */
export function createInitiation(
  me: w.StaticIdentity,
  peerStatic: Uint8Array,
  senderIndex: number,
  stamp: w.Stamp,
): { initiator: IkInitiator; bytes: Uint8Array } {
  const initiator = new IkInitiator({ s: me.dh, prologue: PROLOGUE }, peerStatic);
  const payload = w.encodeInitiationPayload({ senderIndex, stamp, edPublic: me.edPublic, binding: me.binding });
  const body = concat(w.headerOf(w.E2eType.initiation), initiator.writeMessage1(payload));
  return { initiator, bytes: concat(body, w.mac1(peerStatic, body)) };
}

/** An initiation that authenticated, from node `id`; not yet checked against its pin nor its last stamp. */
export interface TakenInitiation {
  kind: "initiation";
  id: string;
  edPublic: Uint8Array;
  /** The initiator's X25519 static key, signed by `edPublic`. */
  staticKey: Uint8Array;
  senderIndex: number;
  stamp: w.Stamp;
  responder: IkResponder;
}

/** Reads an initiation (a datagram `parseE2e` called one) addressed to `me`. Never throws. */
export function consumeInitiation(me: w.StaticIdentity, bytes: Uint8Array): TakenInitiation | Drop {
  if (!w.mac1Holds(me.dh.publicKey, bytes)) return drop("auth", "initiation mac1 does not hold");
  let responder: IkResponder;
  try {
    responder = IkResponder.readMessage1(
      { s: me.dh, prologue: PROLOGUE },
      bytes.subarray(w.E2E_HEADER, bytes.length - w.MAC_LEN),
    );
  } catch (e) {
    if (e instanceof NoiseError) return drop("auth", e.message);
    throw e;
  }
  const payload = w.decodeInitiationPayload(responder.payload);
  if (!payload) return drop("malformed", "initiation payload");
  const id = nodeIdOf(payload.edPublic);
  if (id === me.id) return drop("self", "an initiation from this node's own key");
  if (!w.verifyBinding(payload.edPublic, responder.rs, payload.binding)) {
    return drop("bad-signature", `the static key of ${id} is not signed by its node key`);
  }
  const { senderIndex, stamp, edPublic } = payload;
  return { kind: "initiation", id, edPublic, staticKey: responder.rs, senderIndex, stamp, responder };
}

/** The response to a taken initiation, carrying this side's index, and the session's keys. */
export function createResponse(
  taken: TakenInitiation,
  senderIndex: number,
): { bytes: Uint8Array; keys: TransportKeys } {
  const { message, keys } = taken.responder.writeMessage2(u32(senderIndex));
  const body = concat(w.headerOf(w.E2eType.response), u32(taken.senderIndex), message);
  return { bytes: concat(body, w.mac1(taken.staticKey, body)), keys };
}

/**
 * Reads the response to `initiator`'s initiation. Never throws; a forged
 * response leaves `initiator` able to read the genuine one.
 */
export function consumeResponse(
  me: w.StaticIdentity,
  initiator: IkInitiator,
  bytes: Uint8Array,
): { kind: "response"; keys: TransportKeys; remoteIndex: number } | Drop {
  if (!w.mac1Holds(me.dh.publicKey, bytes)) return drop("auth", "response mac1 does not hold");
  try {
    const { payload, keys } = initiator.readMessage2(bytes.subarray(w.E2E_HEADER + 4, bytes.length - w.MAC_LEN));
    if (payload.length !== 4) return drop("malformed", "response payload");
    return { kind: "response", keys, remoteIndex: new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0) };
  } catch (e) {
    if (e instanceof NoiseError) return drop("auth", e.message);
    throw e;
  }
}

/**
 * The last initiation stamp taken from each node (WireGuard keeps the last
 * TAI64N timestamp per peer): an initiation whose stamp is not above it is a
 * replay. Kept apart from the sessions, so it outlives them; at most `max`
 * nodes, the one longest without an initiation forgotten first.
 */
export class StampBook {
  #stamps = new Map<string, w.Stamp>();
  #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** `replay`, `restart` (a higher incarnation than the last: the node restarted), or `fresh`. */
  judge(id: string, stamp: w.Stamp): "replay" | "restart" | "fresh" {
    const last = this.#stamps.get(id);
    if (!last) return "fresh";
    if (w.compareStamps(stamp, last) <= 0) return "replay";
    return stamp.incarnation > last.incarnation ? "restart" : "fresh";
  }

  record(id: string, stamp: w.Stamp): void {
    this.#stamps.delete(id);
    this.#stamps.set(id, stamp);
    if (this.#stamps.size > this.#max) this.#stamps.delete(this.#stamps.keys().next().value!);
  }

  forget(id: string): void {
    this.#stamps.delete(id);
  }
}
