/**
 * The lanchat datagram frame: a fixed 6-byte header followed by a UTF-8 JSON
 * object.
 *
 * ```
 * offset 0..3  magic "LNCH" (0x4c 0x4e 0x43 0x48)
 * offset 4     protocol version (currently 1)
 * offset 5     packet type (append-only numbers, see {@link PacketType})
 * offset 6..   UTF-8 JSON object with the type's fields
 * ```
 *
 * Types that carry a binary payload (a message fragment) put a 2-byte
 * big-endian JSON length at offset 6, then the JSON object, then the payload.
 *
 * Pure code: no I/O, no clock. Decoding never throws; it returns a
 * {@link DecodeResult} whose failure carries a {@link DropReason} that the
 * daemon counts.
 *
 * @module
 */

/** "LNCH": the first four bytes of every lanchat datagram. */
export const MAGIC: Uint8Array = new Uint8Array([0x4c, 0x4e, 0x43, 0x48]);
/** The protocol version this build speaks. */
export const PROTOCOL_VERSION = 1;
/** Header length in bytes: magic, version, type. */
export const HEADER_LENGTH = 6;
/**
 * The largest datagram lanchat sends or accepts: the IPv6 minimum MTU (1280)
 * less IPv6 and UDP headers, so no datagram is ever IP-fragmented.
 */
export const MAX_DATAGRAM = 1232;

/** Packet type numbers. Append-only: they are part of the protocol. */
export const PacketType = {
  hello: 1,
  goodbye: 2,
  ping: 3,
  pong: 4,
  msg: 5,
  ack: 6,
  read: 7,
  note: 8,
  peers: 9,
  suspect: 10,
  preq: 11,
  pack: 12,
} as const;
export type PacketTypeName = keyof typeof PacketType;
export type PacketTypeNumber = (typeof PacketType)[PacketTypeName];

/**
 * Packet types whose JSON is followed by a binary payload: a message's text
 * fragment; the signature block of a hello or goodbye (see packets.ts).
 */
const PAYLOAD_TYPES = new Set<number>([PacketType.hello, PacketType.goodbye, PacketType.msg, PacketType.suspect]);

/** Why a datagram was dropped; each reason is a counter on /status and /metrics. */
export type DropReason =
  | "oversize"
  | "truncated"
  | "bad-magic"
  | "bad-version"
  | "unknown-type"
  | "bad-utf8"
  | "bad-json"
  | "bad-field"
  | "self"
  | "stale-incarnation"
  | "not-for-me"
  | "overload"
  | "roster-full"
  | "rate-limit"
  | "auth"
  | "replay"
  | "bad-signature"
  | "impersonation"
  | "unencrypted"
  | "unknown-session"
  | "refused"
  | "malformed";

/** Every drop reason, in a stable order (for zero-valued counters). */
export const DROP_REASONS: readonly DropReason[] = [
  "oversize",
  "truncated",
  "bad-magic",
  "bad-version",
  "unknown-type",
  "bad-utf8",
  "bad-json",
  "bad-field",
  "self",
  "stale-incarnation",
  "not-for-me",
  "overload",
  "roster-full",
  "rate-limit",
  "auth",
  "replay",
  "bad-signature",
  "impersonation",
  "unencrypted",
  "unknown-session",
  "refused",
  "malformed",
];

/** The outcome of decoding: a value, or the reason it was rejected. */
export type DecodeResult<T> =
  | { ok: true; value: T }
  | { ok: false; reason: DropReason; detail: string };

/** A frame whose header was valid; the body is still unvalidated JSON. */
export interface RawFrame {
  type: number;
  body: Record<string, unknown>;
  /** The binary payload of types that carry one (a copy, not a view). */
  payload?: Uint8Array;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const typeNumbers = new Set<number>(Object.values(PacketType));

/** Shorthand for a failed {@link DecodeResult}. */
export function reject<T>(reason: DropReason, detail: string): DecodeResult<T> {
  return { ok: false, reason, detail };
}

/**
 * Builds a datagram from a packet type and its JSON body.
 *
 * @throws {RangeError} if the datagram would exceed {@link MAX_DATAGRAM}:
 *   callers cap every variable field, so this is a programming error.
 */
export function encodeFrame(type: PacketTypeNumber, body: object, payload?: Uint8Array): Uint8Array {
  const json = encoder.encode(JSON.stringify(body));
  const hasPayload = PAYLOAD_TYPES.has(type);
  const jsonAt = HEADER_LENGTH + (hasPayload ? 2 : 0);
  const size = jsonAt + json.length + (hasPayload ? payload?.length ?? 0 : 0);
  if (size > MAX_DATAGRAM) {
    throw new RangeError(
      `Cannot encode packet type ${type}: ${size} bytes exceeds the ${MAX_DATAGRAM}-byte datagram limit`,
    );
  }
  const out = new Uint8Array(size);
  out.set(MAGIC, 0);
  out[4] = PROTOCOL_VERSION;
  out[5] = type;
  if (hasPayload) {
    out[6] = json.length >> 8;
    out[7] = json.length & 0xff;
  }
  out.set(json, jsonAt);
  if (hasPayload && payload) out.set(payload, jsonAt + json.length);
  return out;
}

/** Checks the header and parses the JSON body. Never throws. */
export function decodeFrame(bytes: Uint8Array): DecodeResult<RawFrame> {
  if (bytes.length > MAX_DATAGRAM) {
    return reject("oversize", `${bytes.length} bytes > ${MAX_DATAGRAM}`);
  }
  if (bytes.length < HEADER_LENGTH) {
    // Too short to carry a header; if what is there is not our magic, say so.
    for (let i = 0; i < Math.min(bytes.length, MAGIC.length); i++) {
      if (bytes[i] !== MAGIC[i]) return reject("bad-magic", "not a lanchat datagram");
    }
    return reject("truncated", `${bytes.length} bytes < ${HEADER_LENGTH}-byte header`);
  }
  if (bytes[0] === 0x4c && bytes[1] === 0x4e && bytes[2] === 0x43 && bytes[3] === 0x4b) {
    return reject("auth", "sealed with a network key; this daemon has none (--key-file)");
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) return reject("bad-magic", "not a lanchat datagram");
  }
  const version = bytes[4]!;
  if (version !== PROTOCOL_VERSION) {
    return reject("bad-version", `protocol version ${version}, this build speaks ${PROTOCOL_VERSION}`);
  }
  const type = bytes[5]!;
  if (!typeNumbers.has(type)) return reject("unknown-type", `packet type ${type}`);
  let jsonBytes = bytes.subarray(HEADER_LENGTH);
  let payload: Uint8Array | undefined;
  if (PAYLOAD_TYPES.has(type)) {
    if (bytes.length < HEADER_LENGTH + 2) return reject("truncated", "no JSON length");
    const jsonLength = (bytes[6]! << 8) | bytes[7]!;
    if (HEADER_LENGTH + 2 + jsonLength > bytes.length) {
      return reject("truncated", `JSON length ${jsonLength} runs past the datagram`);
    }
    jsonBytes = bytes.subarray(HEADER_LENGTH + 2, HEADER_LENGTH + 2 + jsonLength);
    payload = bytes.slice(HEADER_LENGTH + 2 + jsonLength);
  }
  let text: string;
  try {
    text = strictDecoder.decode(jsonBytes);
  } catch {
    return reject("bad-utf8", "body is not valid UTF-8");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return reject("bad-json", "body is not valid JSON");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return reject("bad-json", "body is not a JSON object");
  }
  const frame: RawFrame = { type, body: body as Record<string, unknown> };
  if (payload) frame.payload = payload;
  return { ok: true, value: frame };
}
