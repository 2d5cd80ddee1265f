/**
 * The Noise Protocol Framework (revision 34), the IK pattern only, as a
 * state machine without I/O: bytes in, bytes out, no clock, no socket.
 *
 * ```
 * IK:
 *   <- s
 *   ...
 *   -> e, es, s, ss
 *   <- e, ee, se
 * ```
 *
 * lanchat speaks `Noise_IK_25519_ChaChaPoly_SHA256` (docs/e2e.md says why);
 * BLAKE2s is accepted as the hash too, so the same code is checked against
 * the published vectors of both (tests/unit/noise_test.ts). Primitives are
 * node:crypto's (X25519, ChaCha20-Poly1305, SHA-256/BLAKE2s, HMAC), all
 * synchronous, checked in Deno 2.9.6. As in wireguard-go's
 * `noise-protocol.go`, each side is an object with explicit states
 * (`CreateMessageInitiation`, `ConsumeMessageInitiation`, …): a message is
 * read or written once, in order, and the handshake secrets are dropped once
 * the transport keys are split off. The wire framing around these messages
 * is `e2e_wire.ts`; sessions, timers and retries are `session.ts`.
 *
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
} from "node:crypto";
import { diffieHellman, generateKeyPairSync, type KeyObject } from "node:crypto";
import { Buffer } from "node:buffer";

/** The hash functions this implementation takes: lanchat uses SHA-256. */
export type NoiseHash = "sha256" | "blake2s256";

export const DH_LEN = 32;
export const HASH_LEN = 32;
export const TAG_LEN = 16;
/** The largest Noise message (spec §3). */
export const MAX_NOISE_MESSAGE = 65_535;

const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519 = Buffer.from("302a300506032b656e032100", "hex");

/** An X25519 key pair; the private half stays inside a node:crypto KeyObject. */
export class DhKey {
  readonly publicKey: Uint8Array;
  #private: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#private = privateKey;
    const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
    this.publicKey = new Uint8Array(spki.subarray(spki.length - DH_LEN));
  }

  /** A fresh random key pair (an ephemeral). */
  static generate(): DhKey {
    return new DhKey(generateKeyPairSync("x25519").privateKey);
  }

  /** The key pair of a 32-byte private key (clamped by X25519 itself). */
  static fromPrivate(privateKey: Uint8Array): DhKey {
    if (privateKey.length !== DH_LEN) throw new RangeError(`An X25519 private key is ${DH_LEN} bytes`);
    return new DhKey(
      createPrivateKey({ key: Buffer.concat([PKCS8_X25519, privateKey]), format: "der", type: "pkcs8" }),
    );
  }

  /**
   * X25519 with a peer's public key. Throws {@link NoiseError} for a
   * low-order point (the all-zero shared secret, which OpenSSL refuses), as
   * WireGuard does: such a key is never a peer's real key.
   */
  dh(publicKey: Uint8Array): Uint8Array {
    if (publicKey.length !== DH_LEN) throw new NoiseError(`an X25519 public key is ${DH_LEN} bytes`);
    try {
      const peer = createPublicKey({ key: Buffer.concat([SPKI_X25519, publicKey]), format: "der", type: "spki" });
      return new Uint8Array(diffieHellman({ privateKey: this.#private, publicKey: peer }));
    } catch {
      throw new NoiseError("X25519 with a low-order or invalid public key");
    }
  }
}

/** A message that does not authenticate, or a handshake used out of order. Caught by session.ts. */
export class NoiseError extends Error {
  override name = "NoiseError";
}

/** The AEAD nonce of ChaChaPoly in Noise: 32 zero bits, then the 64-bit counter little-endian. */
function nonceOf(n: number): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(n), true);
  return nonce;
}

/** ChaCha20-Poly1305 encryption under key `k`, counter `n`, associated data `ad`; the tag is appended. */
export function aeadSeal(k: Uint8Array, n: number, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = createCipheriv("chacha20-poly1305", k, nonceOf(n), { authTagLength: TAG_LEN });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  const body = c.update(plaintext);
  c.final();
  const out = new Uint8Array(body.length + TAG_LEN);
  out.set(body);
  out.set(c.getAuthTag(), body.length);
  return out;
}

/** Opens what {@link aeadSeal} made; undefined when it does not authenticate. Never throws. */
export function aeadOpen(k: Uint8Array, n: number, ad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < TAG_LEN) return undefined;
  try {
    const d = createDecipheriv("chacha20-poly1305", k, nonceOf(n), { authTagLength: TAG_LEN });
    d.setAAD(ad, { plaintextLength: sealed.length - TAG_LEN });
    d.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
    const body = d.update(sealed.subarray(0, sealed.length - TAG_LEN));
    d.final();
    return new Uint8Array(body.buffer, body.byteOffset, body.length);
  } catch {
    return undefined;
  }
}

function hash(alg: NoiseHash, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function hmac(alg: NoiseHash, key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac(alg, key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** Noise's HKDF (spec §4.3): two or three 32-byte outputs of HMAC-HASH chained from `ck`. */
export function noiseHkdf(alg: NoiseHash, ck: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const temp = hmac(alg, ck, ikm);
  const out1 = hmac(alg, temp, Uint8Array.of(1));
  const out2 = hmac(alg, temp, out1, Uint8Array.of(2));
  if (outputs === 2) return [out1, out2];
  return [out1, out2, hmac(alg, temp, out2, Uint8Array.of(3))];
}

/** The keys a finished handshake leaves, one per direction, and its hash (channel binding). */
export interface TransportKeys {
  send: Uint8Array;
  receive: Uint8Array;
  handshakeHash: Uint8Array;
}

/** Noise's SymmetricState with its CipherState folded in (spec §5.1, §5.2). */
class SymmetricState {
  ck: Uint8Array;
  h: Uint8Array;
  private cipherKey: Uint8Array | undefined;
  private nonce = 0;
  readonly alg: NoiseHash;

  constructor(alg: NoiseHash, protocolName: string, prologue: Uint8Array) {
    this.alg = alg;
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= HASH_LEN) {
      this.h = new Uint8Array(HASH_LEN);
      this.h.set(name);
    } else this.h = hash(alg, name);
    this.ck = this.h;
    this.mixHash(prologue);
  }

  /** A copy to try a message on, so that a forged one leaves this state as it was. */
  clone(): SymmetricState {
    return Object.assign(Object.create(SymmetricState.prototype), this) as SymmetricState;
  }

  mixHash(data: Uint8Array): void {
    this.h = hash(this.alg, this.h, data);
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = noiseHkdf(this.alg, this.ck, ikm, 2);
    this.ck = ck!;
    this.cipherKey = k!;
    this.nonce = 0;
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const out = this.cipherKey ? aeadSeal(this.cipherKey, this.nonce++, this.h, plaintext) : plaintext.slice();
    this.mixHash(out);
    return out;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    let plain = ciphertext;
    if (this.cipherKey) {
      const opened = aeadOpen(this.cipherKey, this.nonce, this.h, ciphertext);
      if (!opened) throw new NoiseError("handshake message does not authenticate");
      this.nonce++;
      plain = opened;
    }
    this.mixHash(ciphertext);
    return plain;
  }

  /** Split (spec §5.2): the initiator sends with the first key. Drops the handshake secrets. */
  split(initiator: boolean): TransportKeys {
    const [k1, k2] = noiseHkdf(this.alg, this.ck, new Uint8Array(0), 2);
    const keys = { send: initiator ? k1! : k2!, receive: initiator ? k2! : k1!, handshakeHash: this.h };
    // The handshake's secrets are not needed any more: overwritten, as wireguard-go's setZero.
    this.ck.fill(0);
    this.cipherKey?.fill(0);
    this.ck = new Uint8Array(0);
    this.cipherKey = undefined;
    return keys;
  }
}

/** What both sides of an IK handshake agree on beforehand. */
export interface IkConfig {
  /** This side's static key. */
  s: DhKey;
  prologue: Uint8Array;
  /** Default SHA-256. */
  hash?: NoiseHash;
  /** A fixed ephemeral (test vectors only); by default a fresh one. */
  e?: DhKey;
}

function protocolName(alg: NoiseHash): string {
  return `Noise_IK_25519_ChaChaPoly_${alg === "sha256" ? "SHA256" : "BLAKE2s"}`;
}

/** The initiator: knows the responder's static key (from its signed hello), writes message 1, reads message 2. */
export class IkInitiator {
  #state: "start" | "sent" | "done" = "start";
  #ss: SymmetricState;
  #s: DhKey;
  #e: DhKey;
  #rs: Uint8Array;

  constructor(config: IkConfig, rs: Uint8Array) {
    if (rs.length !== DH_LEN) throw new RangeError(`A static key is ${DH_LEN} bytes`);
    this.#ss = new SymmetricState(config.hash ?? "sha256", protocolName(config.hash ?? "sha256"), config.prologue);
    this.#ss.mixHash(rs); // pre-message: <- s
    this.#s = config.s;
    this.#e = config.e ?? DhKey.generate();
    this.#rs = rs;
  }

  /** `-> e, es, s, ss` and the payload: e (32) ‖ enc s (48) ‖ enc payload (len + 16). */
  writeMessage1(payload: Uint8Array): Uint8Array {
    if (this.#state !== "start") throw new NoiseError("message 1 was already written");
    this.#state = "sent";
    const ss = this.#ss;
    ss.mixHash(this.#e.publicKey);
    ss.mixKey(this.#e.dh(this.#rs));
    const s = ss.encryptAndHash(this.#s.publicKey);
    ss.mixKey(this.#s.dh(this.#rs));
    const body = ss.encryptAndHash(payload);
    return concat(this.#e.publicKey, s, body);
  }

  /** `<- e, ee, se`: the payload and the transport keys; throws NoiseError when it does not authenticate. */
  readMessage2(message: Uint8Array): { payload: Uint8Array; keys: TransportKeys } {
    if (this.#state !== "sent") throw new NoiseError("message 2 read out of order");
    if (message.length < DH_LEN + TAG_LEN) throw new NoiseError("message 2 is too short");
    // Work on a copy: a forged message 2 must not spoil the state for the genuine one behind it.
    const ss = this.#ss.clone();
    const re = message.subarray(0, DH_LEN);
    ss.mixHash(re);
    ss.mixKey(this.#e.dh(re));
    ss.mixKey(this.#s.dh(re));
    const payload = ss.decryptAndHash(message.subarray(DH_LEN));
    this.#state = "done";
    return { payload, keys: ss.split(true) };
  }
}

/** The responder: reads message 1 (learning the initiator's static key), then writes message 2. */
export class IkResponder {
  /** The initiator's static key, decrypted from message 1. */
  readonly rs: Uint8Array;
  /** Message 1's payload. */
  readonly payload: Uint8Array;
  #state: "read" | "done" = "read";
  #ss: SymmetricState;
  #re: Uint8Array;

  private constructor(ss: SymmetricState, rs: Uint8Array, re: Uint8Array, payload: Uint8Array) {
    this.#ss = ss;
    this.rs = rs;
    this.#re = re;
    this.payload = payload;
  }

  /** Reads `-> e, es, s, ss`; throws NoiseError when it does not authenticate. */
  static readMessage1(config: IkConfig, message: Uint8Array): IkResponder {
    if (message.length < DH_LEN + DH_LEN + TAG_LEN + TAG_LEN) throw new NoiseError("message 1 is too short");
    const alg = config.hash ?? "sha256";
    const ss = new SymmetricState(alg, protocolName(alg), config.prologue);
    ss.mixHash(config.s.publicKey); // pre-message: <- s
    const re = message.slice(0, DH_LEN);
    ss.mixHash(re);
    ss.mixKey(config.s.dh(re));
    const rs = ss.decryptAndHash(message.subarray(DH_LEN, DH_LEN * 2 + TAG_LEN)).slice();
    ss.mixKey(config.s.dh(rs));
    const payload = ss.decryptAndHash(message.subarray(DH_LEN * 2 + TAG_LEN)).slice();
    return new IkResponder(ss, rs, re, payload);
  }

  /** `<- e, ee, se` and the payload: e (32) ‖ enc payload (len + 16), and the transport keys. */
  writeMessage2(payload: Uint8Array, e: DhKey = DhKey.generate()): { message: Uint8Array; keys: TransportKeys } {
    if (this.#state !== "read") throw new NoiseError("message 2 was already written");
    this.#state = "done";
    const ss = this.#ss;
    ss.mixHash(e.publicKey);
    ss.mixKey(e.dh(this.#re));
    ss.mixKey(e.dh(this.rs));
    const body = ss.encryptAndHash(payload);
    return { message: concat(e.publicKey, body), keys: ss.split(false) };
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
