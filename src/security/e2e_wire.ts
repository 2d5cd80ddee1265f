/**
 * End-to-end encrypted datagrams: how the Noise IK messages (noise.ts) and
 * the transport packets travel in lanchat, and how a node's X25519 static
 * key is tied to its pinned Ed25519 node key. Pure: bytes in, bytes out.
 *
 * ```
 * every e2e datagram: magic "LNCE" (4c 4e 43 45) ‖ version 1 ‖ type
 *
 * type 1 initiation (230 bytes)
 *   6..37    initiator's ephemeral X25519 key
 *   38..85   initiator's static X25519 key, encrypted (32 + 16)
 *   86..213  payload, encrypted (112 + 16):
 *              sender index (4) ‖ stamp (12: incarnation 8 ‖ sequence 4, big-endian)
 *              ‖ Ed25519 node key (32) ‖ its signature of the static key binding (64)
 *   214..229 mac1: HMAC-SHA-256(SHA-256("lanchat e2e mac1" ‖ responder's static), bytes 0..213), 16 bytes
 *
 * type 2 response (78 bytes)
 *   6..9     receiver index: the initiator's sender index
 *   10..41   responder's ephemeral X25519 key
 *   42..61   payload, encrypted (4 + 16): the responder's sender index
 *   62..77   mac1, keyed by the initiator's static key
 *
 * type 3 data (34 bytes + the inner datagram)
 *   6..9     receiver index
 *   10..17   counter, big-endian (the AEAD nonce: 4 zero bytes ‖ counter little-endian, as Noise's)
 *   18..     ChaCha20-Poly1305 of the inner LNCH datagram (empty: a keepalive), bytes 0..17 its associated data
 * ```
 *
 * The prologue of the handshake is "lanchat e2e v1" ‖ bytes 0..5, so the
 * header is authenticated too. A clear datagram starts "LNCH", one sealed
 * with the network key "LNCK": the first four bytes tell the three apart.
 *
 * @module
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  timingSafeEqual,
  verify,
} from "node:crypto";
import { Buffer } from "node:buffer";
import { concat, DH_LEN, DhKey, TAG_LEN } from "./noise.ts";
import { nodeIdOf } from "./signing.ts";
import { MAX_DATAGRAM } from "../wire/mod.ts";

export const E2E_MAGIC: Uint8Array = new Uint8Array([0x4c, 0x4e, 0x43, 0x45]); // "LNCE"
export const E2E_VERSION = 1;
export const E2eType = { initiation: 1, response: 2, data: 3 } as const;
export const E2E_HEADER = 6;
export const MAC_LEN = 16;
export const STAMP_LEN = 12;
export const INITIATION_PAYLOAD = 4 + STAMP_LEN + 32 + 64;
export const INITIATION_SIZE = E2E_HEADER + DH_LEN + DH_LEN + TAG_LEN + INITIATION_PAYLOAD + TAG_LEN + MAC_LEN;
export const RESPONSE_SIZE = E2E_HEADER + 4 + DH_LEN + 4 + TAG_LEN + MAC_LEN;
export const DATA_HEADER = E2E_HEADER + 4 + 8;
/** Bytes a data packet adds to the datagram it carries. */
export const DATA_OVERHEAD = DATA_HEADER + TAG_LEN;
/** The largest inner datagram a data packet carries without passing {@link MAX_DATAGRAM}. */
export const MAX_INNER = MAX_DATAGRAM - DATA_OVERHEAD;

const enc = new TextEncoder();
const BINDING_CONTEXT = enc.encode("lanchat e2e static v1\n");
const MAC1_LABEL = enc.encode("lanchat e2e mac1");
const STATIC_SALT = enc.encode("lanchat e2e v1");
const STATIC_INFO = "x25519 static";

/** The handshake's prologue for a message with header `header` (magic, version, type). */
export function prologueOf(header: Uint8Array): Uint8Array {
  return concat(enc.encode("lanchat e2e v1"), header.subarray(0, E2E_HEADER));
}

/** The 6-byte header of an e2e datagram of `type`. */
export function headerOf(type: number): Uint8Array {
  const h = new Uint8Array(E2E_HEADER);
  h.set(E2E_MAGIC);
  h[4] = E2E_VERSION;
  h[5] = type;
  return h;
}

/** True when a datagram is an e2e one (by its magic); the version and type are checked by the reader. */
export function isE2e(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x4c && bytes[1] === 0x4e && bytes[2] === 0x43 && bytes[3] === 0x45;
}

/**
 * This node's side of end-to-end encryption: its node id and Ed25519 key,
 * its X25519 static key, and the signature that binds the latter to the
 * former (carried in every initiation).
 */
export interface StaticIdentity {
  id: string;
  edPublic: Uint8Array;
  dh: DhKey;
  /** Ed25519 signature of {@link bindingMessage}(dh.publicKey). */
  binding: Uint8Array;
}

/** What a node key signs to vouch for its X25519 static key. */
export function bindingMessage(staticPublic: Uint8Array): Uint8Array {
  return concat(BINDING_CONTEXT, staticPublic);
}

/**
 * This node's X25519 static key, derived from its Ed25519 node key's seed:
 * HKDF-SHA-256(seed, salt "lanchat e2e v1", info "x25519 static"). Derived,
 * not converted: the signing scalar is never used for Diffie-Hellman, and no
 * second secret file is needed; the static key lives and dies with the node
 * key. `sign` is the node's signer (signing.ts `NodeSigner.sign`).
 */
export function staticIdentityOf(
  pkcs8: Uint8Array,
  edPublic: Uint8Array,
  sign: (data: Uint8Array) => Uint8Array,
): StaticIdentity {
  const jwk = createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" }).export({ format: "jwk" });
  if (jwk.crv !== "Ed25519" || !jwk.d) throw new TypeError("The node key is not an Ed25519 private key");
  const seed = Buffer.from(jwk.d, "base64url");
  const dh = DhKey.fromPrivate(new Uint8Array(hkdfSync("sha256", seed, STATIC_SALT, STATIC_INFO, DH_LEN)));
  seed.fill(0);
  return { id: nodeIdOf(edPublic), edPublic, dh, binding: sign(bindingMessage(dh.publicKey)) };
}

/** A static key as the hello's `nk` field carries it: base64url, 43 characters. */
export function staticKeyText(staticPublic: Uint8Array): string {
  return Buffer.from(staticPublic).toString("base64url");
}

/** The static key of a hello's `nk` field; undefined when it is not 32 bytes of base64url. Never throws. */
export function parseStaticKeyText(text: unknown): Uint8Array | undefined {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]{43}$/.test(text)) return undefined;
  const bytes = new Uint8Array(Buffer.from(text, "base64url"));
  return bytes.length === DH_LEN && staticKeyText(bytes) === text ? bytes : undefined;
}

const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

/** True when `signature` is `edPublic`'s signature of the binding of `staticPublic`. Never throws. */
export function verifyBinding(edPublic: Uint8Array, staticPublic: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, edPublic]), format: "der", type: "spki" });
    return verify(null, bindingMessage(staticPublic), key, signature);
  } catch {
    return false;
  }
}

/** mac1 of `body` for the receiver whose static X25519 key is `receiverStatic`. */
export function mac1(receiverStatic: Uint8Array, body: Uint8Array): Uint8Array {
  const key = createHash("sha256").update(MAC1_LABEL).update(receiverStatic).digest();
  return new Uint8Array(createHmac("sha256", key).update(body).digest().subarray(0, MAC_LEN));
}

/** True when the last 16 bytes of `packet` are the mac1 of the rest for `receiverStatic`. */
export function mac1Holds(receiverStatic: Uint8Array, packet: Uint8Array): boolean {
  const body = packet.subarray(0, packet.length - MAC_LEN);
  return timingSafeEqual(mac1(receiverStatic, body), packet.subarray(packet.length - MAC_LEN));
}

/**
 * An initiation's stamp, as WireGuard's TAI64N timestamp but from lanchat's
 * incarnation (bumped and stored on every start) and a count of initiations
 * within it: strictly increasing across restarts without trusting the wall
 * clock. A responder refuses one not above the last it took from that node.
 */
export interface Stamp {
  incarnation: number;
  sequence: number;
}

/** Negative, zero or positive as `a` is before, equal to or after `b`. */
export function compareStamps(a: Stamp, b: Stamp): number {
  return a.incarnation !== b.incarnation ? a.incarnation - b.incarnation : a.sequence - b.sequence;
}

/** The decrypted payload of an initiation. */
export interface InitiationPayload {
  senderIndex: number;
  stamp: Stamp;
  edPublic: Uint8Array;
  binding: Uint8Array;
}

export function encodeInitiationPayload(p: InitiationPayload): Uint8Array {
  const out = new Uint8Array(INITIATION_PAYLOAD);
  const v = new DataView(out.buffer);
  v.setUint32(0, p.senderIndex);
  v.setBigUint64(4, BigInt(p.stamp.incarnation));
  v.setUint32(12, p.stamp.sequence);
  out.set(p.edPublic, 16);
  out.set(p.binding, 48);
  return out;
}

/** Undefined when the payload has the wrong size or an incarnation past 2^53 (nothing lanchat sends). */
export function decodeInitiationPayload(bytes: Uint8Array): InitiationPayload | undefined {
  if (bytes.length !== INITIATION_PAYLOAD) return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const incarnation = v.getBigUint64(4);
  if (incarnation > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return {
    senderIndex: v.getUint32(0),
    stamp: { incarnation: Number(incarnation), sequence: v.getUint32(12) },
    edPublic: bytes.slice(16, 48),
    binding: bytes.slice(48, 112),
  };
}

/** A data packet's header (the AEAD's associated data). */
export function dataHeader(receiverIndex: number, counter: number): Uint8Array {
  const h = new Uint8Array(DATA_HEADER);
  h.set(headerOf(E2eType.data));
  const v = new DataView(h.buffer);
  v.setUint32(6, receiverIndex);
  v.setUint32(10, Math.floor(counter / 2 ** 32));
  v.setUint32(14, counter >>> 0);
  return h;
}

/** A parsed e2e datagram, before any cryptography. */
export type E2ePacket =
  | { type: "initiation"; noise: Uint8Array }
  | { type: "response"; receiverIndex: number; noise: Uint8Array }
  | { type: "data"; receiverIndex: number; counter: number; header: Uint8Array; sealed: Uint8Array };

/** Reads an e2e datagram's framing; a string says why it is not one. Never throws. */
export function parseE2e(bytes: Uint8Array): E2ePacket | string {
  if (!isE2e(bytes) || bytes.length < E2E_HEADER) return "not an e2e datagram";
  if (bytes[4] !== E2E_VERSION) return `e2e version ${bytes[4]}`;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  switch (bytes[5]) {
    case E2eType.initiation:
      if (bytes.length !== INITIATION_SIZE) return `initiation of ${bytes.length} bytes, not ${INITIATION_SIZE}`;
      return { type: "initiation", noise: bytes.subarray(E2E_HEADER, bytes.length - MAC_LEN) };
    case E2eType.response:
      if (bytes.length !== RESPONSE_SIZE) return `response of ${bytes.length} bytes, not ${RESPONSE_SIZE}`;
      return { type: "response", receiverIndex: v.getUint32(6), noise: bytes.subarray(10, bytes.length - MAC_LEN) };
    case E2eType.data: {
      if (bytes.length < DATA_OVERHEAD) return `data packet of ${bytes.length} bytes, under ${DATA_OVERHEAD}`;
      const counter = v.getUint32(10) * 2 ** 32 + v.getUint32(14);
      return {
        type: "data",
        receiverIndex: v.getUint32(6),
        counter,
        header: bytes.subarray(0, DATA_HEADER),
        sealed: bytes.subarray(DATA_HEADER),
      };
    }
    default:
      return `unknown e2e type ${bytes[5]}`;
  }
}
