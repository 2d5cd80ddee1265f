/**
 * Discovery packets: hello, goodbye, ping, pong. Each has an encoder and a
 * validator; {@link decodePacket} turns any datagram into a typed packet or a
 * drop reason, without throwing.
 *
 * @module
 */
import {
  decodeFrame,
  type DecodeResult,
  encodeFrame,
  MAX_DATAGRAM,
  PacketType,
  type RawFrame,
  reject,
} from "./frame.ts";
import { type PeerList, peerListFields, validatePeerList } from "./peer_list.ts";
import { type ProbePacket, probePacketFields, validateProbePacket } from "./probe_packets.ts";

/** A node id: 32 lowercase hex characters (128 bits of SHA-256 of the node's public key). */
export const NODE_ID_PATTERN = /^[0-9a-f]{32}$/;
/** Longest display name, hostname or version string, in UTF-8 bytes. */
export const MAX_TEXT_FIELD = 64;
/** Announce intervals a peer may advertise, in milliseconds. */
export const MIN_INTERVAL_MS = 50;
export const MAX_INTERVAL_MS = 3_600_000;

/** An announcement: "I am here, and this is how to reach me". */
/** Most characters of a presence note kept from a hello. */
export const MAX_NOTE_CHARS = 100;

export interface Hello {
  kind: "hello";
  /** Sender's node id. */
  id: string;
  /** Bumped on every start of the sender, so restarts are noticed. */
  incarnation: number;
  /** Display name, e.g. `alice@host1`. */
  name: string;
  hostname: string;
  /** The sender's unicast UDP port: every reply, probe and message goes there. */
  port: number;
  /** The sender's HTTP port, 0 when it runs none. */
  httpPort: number;
  /** Sender's software version. */
  version: string;
  /** Sender's announce interval in ms; receivers expire it after 3 of them. */
  interval: number;
  /** True when this hello answers another: the receiver must not answer it. */
  reply: boolean;
  /**
   * When it was sent, ms since the epoch by the sender's clock (`ts`; absent
   * from versions before it): receivers show how far the sender's clock is
   * from theirs.
   */
  sentAt?: number;
  /**
   * `away` or `busy` (`pr`), with an optional note (`pn`, "at lunch until
   * 14:00"); absent: online. Older versions ignore both (unknown fields);
   * an unknown state from a newer one is read as online.
   */
  presence?: "away" | "busy";
  note?: string;
  /**
   * The sender's X25519 static key for end-to-end sessions (`nk`, base64url,
   * 43 characters, the one canonical text of 32 bytes; see
   * security/e2e_wire.ts). Covered by the signature. Absent: a version
   * before end-to-end encryption, spoken to in the clear.
   */
  staticKey?: string;
  /**
   * The sender runs the failure detector (`fd: 1`; protocol/failure_detector.ts):
   * it relays indirect probes and refutes suspicions. Absent from older versions.
   */
  failureDetector?: boolean;
  /** Set on a decoded hello that carries a signature block. */
  signed?: Signed;
}

/**
 * A hello or goodbye's signature block, the payload after its JSON: the
 * sender's raw Ed25519 public key (32 bytes), then an Ed25519 signature (64
 * bytes) of every byte of the datagram before the signature. The node id must
 * be the first 128 bits of SHA-256 of that key. Checked by the daemon
 * (signing.ts), not here: decoding stays free of crypto.
 */
export interface Signed {
  publicKey: Uint8Array;
  signature: Uint8Array;
  /** The bytes the signature covers. */
  data: Uint8Array;
}

/** Bytes of a signature block: public key and signature. */
export const SIGNATURE_BLOCK = 32 + 64;

/** Sent on shutdown: remove me now. */
export interface Goodbye {
  kind: "goodbye";
  id: string;
  incarnation: number;
  signed?: Signed;
}

/** A liveness probe for a peer that has been silent. */
export interface Ping {
  kind: "ping";
  id: string;
  incarnation: number;
  nonce: number;
}

/** The answer to a ping, echoing its nonce. */
export interface Pong {
  kind: "pong";
  id: string;
  incarnation: number;
  nonce: number;
}

/** Longest message text, in UTF-8 bytes. */
export const MAX_TEXT_BYTES = 65_536;
/** Most fragments one message may be cut into. */
export const MAX_FRAGMENTS = 128;
/**
 * Fragment payload size a sender uses: the datagram limit less header, JSON
 * length and the largest message JSON (about 250 bytes), with a margin.
 */
export const FRAGMENT_PAYLOAD = 900;
/**
 * Bytes a {@link MsgRef} adds to every fragment's JSON (`,"rt":"<32 hex>"`,
 * the longest of its keys): a sender cuts such a message into fragments that
 * much smaller, so that the largest fragment still fits.
 */
export const MSG_REF_BYTES = 40;

/**
 * What a message says about another message of the conversation, by id: it
 * answers it (`reply`, wire key `rt`), replaces its text (`edit`, `ed`), or
 * takes it back (`delete`, `dl`). At most one per message; a receiver that
 * does not know the key (a previous version) ignores it and shows the text.
 */
export interface MsgRef {
  kind: "reply" | "edit" | "delete";
  /** The message referred to: 32 hex characters. */
  id: string;
}

/** The wire key of each kind of {@link MsgRef}. */
const REF_KEYS = { reply: "rt", edit: "ed", delete: "dl" } as const;

/** One fragment of a chat message. The text is cut into `count` equal spans (the last may be shorter). */
export interface Msg {
  kind: "msg";
  /** Sender's node id. */
  id: string;
  incarnation: number;
  /** Recipient's node id. */
  to: string;
  /** Globally unique message id: 32 hex characters (128 random bits). */
  messageId: string;
  /** Per (sender, recipient) sequence number, from 1. */
  seq: number;
  /** Lowest sequence number the sender has not had acknowledged yet: all below it were delivered. */
  base: number;
  /** When the user sent it, ms since the Unix epoch. */
  sentAt: number;
  /** Text length in UTF-8 bytes. */
  length: number;
  count: number;
  index: number;
  /** Transmission number of this fragment: 0 the first time. */
  retry: number;
  /** Last fragment of a transmission round: the receiver answers it with a bitmap of what it has. */
  end: boolean;
  /** This fragment's bytes of the UTF-8 text. */
  payload: Uint8Array;
  /** The message this one answers, edits or deletes (on every fragment). */
  ref?: MsgRef;
}

/** Acknowledges fragments of a message, or (done) the whole message, stored. */
export interface Ack {
  kind: "ack";
  /** The acknowledging node's id. */
  id: string;
  incarnation: number;
  messageId: string;
  count: number;
  /** Bitmap of fragments received (bit i of byte i>>3, LSB first); empty when done. */
  received: Uint8Array;
  /** True when the whole message is stored (or was already: a duplicate). */
  done: boolean;
  /** Set when the receiver refuses the message for good (e.g. "bad-utf8"): the sender stops retrying. */
  rejected?: string;
}

/**
 * A read receipt: the reader (`id`) has read, from `to`, every message up to
 * and including `m`; with `ack`, the answer of `to` saying it has that.
 * Sent again until answered (see protocol/messaging.ts).
 */
export interface Read {
  kind: "read";
  id: string;
  incarnation: number;
  to: string;
  messageId: string;
  ack: boolean;
}

/**
 * A presence note ("at lunch until 14:00"), sent to each peer over its
 * end-to-end session (on a change, and to a peer that joins) rather than in
 * the hello, which any host on the LAN reads. `presence` is the state it
 * goes with: a receiver takes the note only while the sender's hellos say
 * that state, so a late note does not outlive a change.
 */
export interface Note {
  kind: "note";
  id: string;
  incarnation: number;
  presence?: "away" | "busy";
  /** Empty: no note. */
  note: string;
}

export type Packet = Hello | Goodbye | Ping | Pong | Msg | Ack | Read | Note | PeerList | ProbePacket;

/** The byte span [start, end) of fragment `index` of a text of `length` bytes cut into `count` fragments. */
export function fragmentSpan(length: number, count: number, index: number): [number, number] {
  const size = Math.ceil(length / count);
  const start = Math.min(length, index * size);
  return [start, Math.min(length, start + size)];
}

/** How many fragments a text of `length` UTF-8 bytes is cut into. */
export function fragmentCount(length: number, maxPayload = FRAGMENT_PAYLOAD): number {
  return Math.max(1, Math.ceil(length / maxPayload));
}

const encoder = new TextEncoder();

/** Encodes any packet to a datagram (≤ 1,232 bytes). */
export function encodePacket(packet: Packet): Uint8Array {
  switch (packet.kind) {
    case "hello":
      return encodeFrame(PacketType.hello, {
        id: packet.id,
        inc: packet.incarnation,
        name: packet.name,
        host: packet.hostname,
        port: packet.port,
        http: packet.httpPort,
        ver: packet.version,
        ivl: packet.interval,
        ...(packet.reply ? { re: true } : {}),
        ...(packet.sentAt !== undefined ? { ts: packet.sentAt } : {}),
        ...(packet.presence ? { pr: packet.presence } : {}),
        ...(packet.presence && packet.note ? { pn: packet.note } : {}),
        ...(packet.staticKey ? { nk: packet.staticKey } : {}),
        ...(packet.failureDetector ? { fd: 1 } : {}),
      });
    case "note":
      return encodeFrame(PacketType.note, {
        id: packet.id,
        inc: packet.incarnation,
        ...(packet.presence ? { pr: packet.presence } : {}),
        pn: packet.note,
      });
    case "goodbye":
      return encodeFrame(PacketType.goodbye, { id: packet.id, inc: packet.incarnation });
    case "peers":
      return encodeFrame(PacketType.peers, peerListFields(packet));
    case "suspect":
    case "preq":
    case "pack":
      return encodeFrame(PacketType[packet.kind], probePacketFields(packet));
    case "ping":
      return encodeFrame(PacketType.ping, { id: packet.id, inc: packet.incarnation, n: packet.nonce });
    case "pong":
      return encodeFrame(PacketType.pong, { id: packet.id, inc: packet.incarnation, n: packet.nonce });
    case "msg":
      return encodeFrame(PacketType.msg, {
        id: packet.id,
        inc: packet.incarnation,
        to: packet.to,
        m: packet.messageId,
        seq: packet.seq,
        base: packet.base,
        ts: packet.sentAt,
        len: packet.length,
        n: packet.count,
        i: packet.index,
        ...(packet.retry ? { r: packet.retry } : {}),
        ...(packet.end ? { e: true } : {}),
        ...(packet.ref ? { [REF_KEYS[packet.ref.kind]]: packet.ref.id } : {}),
      }, packet.payload);
    case "read":
      return encodeFrame(PacketType.read, {
        id: packet.id,
        inc: packet.incarnation,
        to: packet.to,
        m: packet.messageId,
        ...(packet.ack ? { ack: true } : {}),
      });
    case "ack":
      return encodeFrame(PacketType.ack, {
        id: packet.id,
        inc: packet.incarnation,
        m: packet.messageId,
        n: packet.count,
        ...(packet.done ? { done: true } : { got: toHex(packet.received) }),
        ...(packet.rejected ? { rej: packet.rejected } : {}),
      });
  }
}

/** Bytes as lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Decodes and validates a datagram. Never throws. */
export function decodePacket(bytes: Uint8Array): DecodeResult<Packet> {
  const frame = decodeFrame(bytes);
  if (!frame.ok) return frame;
  try {
    const packet = validate(frame.value);
    if (packet.kind === "hello" || packet.kind === "goodbye" || packet.kind === "suspect") {
      const block = frame.value.payload ?? new Uint8Array();
      if (block.length === SIGNATURE_BLOCK) {
        packet.signed = {
          publicKey: block.slice(0, 32),
          signature: block.slice(32),
          data: bytes.subarray(0, bytes.length - 64),
        };
      } else if (block.length !== 0) {
        throw new FieldError(`signature block: ${block.length} bytes, expected 0 or ${SIGNATURE_BLOCK}`);
      }
    }
    return { ok: true, value: packet };
  } catch (e) {
    if (e instanceof FieldError) return reject("bad-field", e.message);
    throw e;
  }
}

/** Thrown inside validation only; turned into a "bad-field" drop. */
class FieldError extends Error {}

function validate(frame: RawFrame): Packet {
  const b = frame.body;
  const id = nodeId(b, "id");
  const incarnation = uint(b, "inc", 0, Number.MAX_SAFE_INTEGER);
  switch (frame.type) {
    case PacketType.hello:
      return {
        kind: "hello",
        id,
        incarnation,
        name: text(b, "name", 1),
        hostname: text(b, "host", 0),
        port: uint(b, "port", 1, 65535),
        httpPort: uint(b, "http", 0, 65535),
        version: text(b, "ver", 0),
        interval: uint(b, "ivl", MIN_INTERVAL_MS, MAX_INTERVAL_MS),
        reply: optionalBool(b, "re"),
        ...(b.ts === undefined ? {} : { sentAt: uint(b, "ts", 0, Number.MAX_SAFE_INTEGER) }),
        ...(b.pr === "away" || b.pr === "busy" ? { presence: b.pr } : {}),
        ...((b.pr === "away" || b.pr === "busy") && b.pn !== undefined
          ? { note: text(b, "pn", 0).slice(0, MAX_NOTE_CHARS) }
          : {}),
        ...(b.nk === undefined ? {} : { staticKey: staticKeyField(b, "nk") }),
        ...(b.fd === 1 ? { failureDetector: true } : {}),
      };
    case PacketType.note:
      return {
        kind: "note",
        id,
        incarnation,
        ...(b.pr === "away" || b.pr === "busy" ? { presence: b.pr } : {}),
        note: [...noteText(b, "pn")].slice(0, MAX_NOTE_CHARS).join(""),
      };
    case PacketType.goodbye:
      return { kind: "goodbye", id, incarnation };
    case PacketType.ping:
      return { kind: "ping", id, incarnation, nonce: uint(b, "n", 0, 0xffff_ffff) };
    case PacketType.pong:
      return { kind: "pong", id, incarnation, nonce: uint(b, "n", 0, 0xffff_ffff) };
    case PacketType.msg:
      return validateMsg(b, id, incarnation, frame.payload ?? new Uint8Array());
    case PacketType.ack: {
      const count = uint(b, "n", 1, MAX_FRAGMENTS);
      const done = optionalBool(b, "done");
      const rejected = b.rej === undefined ? undefined : text(b, "rej", 1);
      let received = new Uint8Array(Math.ceil(count / 8));
      if (!done) {
        const got = b.got;
        if (typeof got !== "string" || got.length !== received.length * 2 || !/^[0-9a-f]*$/.test(got)) {
          throw new FieldError(`got: expected ${received.length * 2} hex characters`);
        }
        received = received.map((_, i) => parseInt(got.slice(i * 2, i * 2 + 2), 16));
      }
      const ack: Ack = { kind: "ack", id, incarnation, messageId: hex32(b, "m"), count, received, done };
      if (rejected !== undefined) ack.rejected = rejected;
      return ack;
    }
    case PacketType.read:
      return {
        kind: "read",
        id,
        incarnation,
        to: nodeId(b, "to"),
        messageId: hex32(b, "m"),
        ack: optionalBool(b, "ack"),
      };
    case PacketType.peers: {
      const list = validatePeerList(b, id, incarnation);
      if (typeof list === "string") throw new FieldError(list);
      return list;
    }
    case PacketType.suspect:
    case PacketType.preq:
    case PacketType.pack: {
      const kind = frame.type === PacketType.suspect ? "suspect" : frame.type === PacketType.preq ? "preq" : "pack";
      const p = validateProbePacket(kind, b, id, incarnation);
      if (typeof p === "string") throw new FieldError(p);
      return p;
    }
    default:
      // decodeFrame only passes known types; a new type must be added here.
      throw new FieldError(`no validator for packet type ${frame.type}`);
  }
}

function validateMsg(b: Record<string, unknown>, id: string, incarnation: number, payload: Uint8Array): Msg {
  const seq = uint(b, "seq", 1, Number.MAX_SAFE_INTEGER);
  const base = uint(b, "base", 1, seq);
  const length = uint(b, "len", 0, MAX_TEXT_BYTES);
  const count = uint(b, "n", 1, MAX_FRAGMENTS);
  const index = uint(b, "i", 0, count - 1);
  if (count > Math.max(1, length)) throw new FieldError(`n: ${count} fragments for ${length} bytes`);
  // No empty fragment: the last one must start before the end of the text.
  if (length > 0 && fragmentSpan(length, count, count - 1)[0] >= length) {
    throw new FieldError(`n: ${count} fragments leave an empty one for ${length} bytes`);
  }
  const [start, end] = fragmentSpan(length, count, index);
  if (payload.length !== end - start) {
    throw new FieldError(`payload: fragment ${index} of ${count} must be ${end - start} bytes, is ${payload.length}`);
  }
  return {
    kind: "msg",
    id,
    incarnation,
    to: nodeId(b, "to"),
    messageId: hex32(b, "m"),
    seq,
    base,
    sentAt: uint(b, "ts", 0, Number.MAX_SAFE_INTEGER),
    length,
    count,
    index,
    retry: b.r === undefined ? 0 : uint(b, "r", 0, 1_000_000),
    end: optionalBool(b, "e"),
    payload,
    ...msgRef(b),
  };
}

/** The {@link MsgRef} of a message's fields, if any; two of them is a malformed fragment. */
function msgRef(b: Record<string, unknown>): { ref?: MsgRef } {
  const kinds = (Object.keys(REF_KEYS) as MsgRef["kind"][]).filter((k) => b[REF_KEYS[k]] !== undefined);
  if (kinds.length === 0) return {};
  if (kinds.length > 1) throw new FieldError(`${kinds.map((k) => REF_KEYS[k]).join(", ")}: at most one of them`);
  const kind = kinds[0]!;
  return { ref: { kind, id: hex32(b, REF_KEYS[kind]) } };
}

/** 32 bytes in base64url without padding, in its one canonical text (the last character's low bits zero). */
const STATIC_KEY_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

function staticKeyField(b: Record<string, unknown>, key: string): string {
  const v = b[key];
  if (typeof v !== "string" || !STATIC_KEY_PATTERN.test(v)) {
    throw new FieldError(`${key}: expected 32 bytes in canonical base64url (43 characters)`);
  }
  return v;
}

/** A note's text: a string of at most MAX_NOTE_CHARS characters (longer ones cut) without control characters. */
function noteText(b: Record<string, unknown>, key: string): string {
  const v = b[key];
  if (typeof v !== "string") throw new FieldError(`${key}: expected a string`);
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) throw new FieldError(`${key}: contains control characters`);
  return v;
}

function hex32(b: Record<string, unknown>, key: string): string {
  return nodeId(b, key);
}

function nodeId(b: Record<string, unknown>, key: string): string {
  const v = b[key];
  if (typeof v !== "string" || !NODE_ID_PATTERN.test(v)) {
    throw new FieldError(`${key}: expected 32 lowercase hex characters`);
  }
  return v;
}

function uint(b: Record<string, unknown>, key: string, min: number, max: number): number {
  const v = b[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new FieldError(`${key}: expected an integer from ${min} to ${max}`);
  }
  return v;
}

function text(b: Record<string, unknown>, key: string, minLength: number): string {
  const v = b[key];
  if (typeof v !== "string") throw new FieldError(`${key}: expected a string`);
  const problem = textFieldProblem(v, minLength);
  if (problem) throw new FieldError(`${key}: ${problem}`);
  return v;
}

/**
 * What is wrong with a text field (a name, a hostname), or undefined: it
 * must be `minLength` to {@link MAX_TEXT_FIELD} UTF-8 bytes without control
 * characters (they would garble logs and terminal tables). The daemon checks
 * its own `--name` with it, so a name every peer would refuse fails at start.
 */
export function textFieldProblem(v: string, minLength: number): string | undefined {
  const bytes = encoder.encode(v).length;
  if (v.length < minLength || bytes > MAX_TEXT_FIELD) {
    return v.length < minLength && minLength === 1
      ? "must not be empty"
      : `is ${bytes} UTF-8 bytes; expected ${minLength} to ${MAX_TEXT_FIELD}`;
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) return "contains control characters";
  return undefined;
}

function optionalBool(b: Record<string, unknown>, key: string): boolean {
  const v = b[key];
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw new FieldError(`${key}: expected a boolean`);
  return v;
}

/**
 * Cuts a string to at most `maxBytes` UTF-8 bytes without splitting a
 * character, and replaces control characters, so it fits a text field.
 */
export function fitTextField(s: string, maxBytes = MAX_TEXT_FIELD): string {
  // deno-lint-ignore no-control-regex
  let out = s.replace(/[\u0000-\u001f\u007f]/g, "?");
  while (encoder.encode(out).length > maxBytes) out = [...out].slice(0, -1).join("");
  return out;
}

/**
 * Appends a signature block to an encoded hello or goodbye (which must carry
 * no payload yet): `publicKey`, then `sign(every byte before the signature)`.
 */
export function appendSignature(
  unsigned: Uint8Array,
  publicKey: Uint8Array,
  sign: (data: Uint8Array) => Uint8Array,
): Uint8Array {
  if (publicKey.length !== 32) throw new RangeError("An Ed25519 public key is 32 bytes");
  if (unsigned.length + SIGNATURE_BLOCK > MAX_DATAGRAM) {
    throw new RangeError(`A signed packet would exceed the ${MAX_DATAGRAM}-byte datagram limit`);
  }
  const out = new Uint8Array(unsigned.length + SIGNATURE_BLOCK);
  out.set(unsigned);
  out.set(publicKey, unsigned.length);
  const signature = sign(out.subarray(0, unsigned.length + 32));
  if (signature.length !== 64) throw new RangeError("An Ed25519 signature is 64 bytes");
  out.set(signature, unsigned.length + 32);
  return out;
}
