/**
 * Discovery packets: hello, goodbye, ping, pong. Each has an encoder and a
 * validator; {@link decodePacket} turns any datagram into a typed packet or a
 * drop reason, without throwing.
 *
 * @module
 */
import { decodeFrame, type DecodeResult, encodeFrame, PacketType, type RawFrame, reject } from "./frame.ts";

/** A node id: 32 lowercase hex characters (128 bits of SHA-256 of the node's public key). */
export const NODE_ID_PATTERN = /^[0-9a-f]{32}$/;
/** Longest display name, hostname or version string, in UTF-8 bytes. */
export const MAX_TEXT_FIELD = 64;
/** Announce intervals a peer may advertise, in milliseconds. */
export const MIN_INTERVAL_MS = 50;
export const MAX_INTERVAL_MS = 3_600_000;

/** An announcement: "I am here, and this is how to reach me". */
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
}

/** Sent on shutdown: remove me now. */
export interface Goodbye {
  kind: "goodbye";
  id: string;
  incarnation: number;
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

export type Packet = Hello | Goodbye | Ping | Pong;

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
      });
    case "goodbye":
      return encodeFrame(PacketType.goodbye, { id: packet.id, inc: packet.incarnation });
    case "ping":
      return encodeFrame(PacketType.ping, { id: packet.id, inc: packet.incarnation, n: packet.nonce });
    case "pong":
      return encodeFrame(PacketType.pong, { id: packet.id, inc: packet.incarnation, n: packet.nonce });
  }
}

/** Decodes and validates a datagram. Never throws. */
export function decodePacket(bytes: Uint8Array): DecodeResult<Packet> {
  const frame = decodeFrame(bytes);
  if (!frame.ok) return frame;
  try {
    return { ok: true, value: validate(frame.value) };
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
      };
    case PacketType.goodbye:
      return { kind: "goodbye", id, incarnation };
    case PacketType.ping:
      return { kind: "ping", id, incarnation, nonce: uint(b, "n", 0, 0xffff_ffff) };
    case PacketType.pong:
      return { kind: "pong", id, incarnation, nonce: uint(b, "n", 0, 0xffff_ffff) };
    default:
      // decodeFrame only passes known types; a new type must be added here.
      throw new FieldError(`no validator for packet type ${frame.type}`);
  }
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
  const bytes = encoder.encode(v).length;
  if (v.length < minLength || bytes > MAX_TEXT_FIELD) {
    throw new FieldError(`${key}: expected ${minLength} to ${MAX_TEXT_FIELD} UTF-8 bytes`);
  }
  // Control characters would garble logs and terminal tables.
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) throw new FieldError(`${key}: control characters`);
  return v;
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
