/**
 * Admission: what a lanchat datagram goes through before any protocol sees
 * it, and on its way out. In front of the services:
 *
 * 1. the per-source rate limit of the socket it came in on (a token bucket
 *    per address), before any decryption or signature work;
 * 2. with a network key, opening it (AES-256-GCM, replay window);
 * 3. the per-source limit on discovery packets (hello, goodbye, ping, pong),
 *    by a look at the type byte;
 * 4. past a limit, one exception, so that junk sent under a live peer's
 *    address cannot evict it: the pong that answers one of this node's own
 *    outstanding probes (its random nonce proves it came from the peer).
 *    Unsealed junk costs a look at one byte (only a datagram typed pong is
 *    decoded, and only while a probe awaits one from that address); sealed,
 *    at most {@link RESCUE_BUDGET} a ping are opened. A hello past the limit
 *    is refused, even a known peer's: letting those through costs a decode
 *    (and a signature check) per flooded datagram, and measured, it took
 *    the daemon's read rate under a hello flood from ~200k/s to ~80k/s,
 *    while the pong path alone keeps a flooded peer listed.
 *
 * Signatures and pinned keys (security/pins.ts) are checked once the packet
 * is decoded, through the discovery state's `admit` hook. Out, every
 * datagram is sealed when there is a network key.
 *
 * @module
 */
import type { AwaitedPong, Endpoint } from "../protocol/discovery.ts";
import { decodePacket, PacketType } from "../wire/mod.ts";
import { RateLimiter } from "./rate_limit.ts";
import type { Sealer } from "./seal.ts";
import { E2eType, isE2e } from "./e2e_wire.ts";

/** An end-to-end data packet (docs/e2e.md), by its magic and type byte. */
export function isE2eData(bytes: Uint8Array): boolean {
  return isE2e(bytes) && bytes[TYPE_OFFSET] === E2eType.data;
}

/**
 * Per-source-address limits (token buckets). Discovery packets (hello,
 * goodbye, ping, pong) come from a host at a few a second (one announce
 * every ~2 s per daemon on it, replies, probes), so few suffice whichever
 * socket they reach; the shared broadcast socket carries nothing else. The
 * unicast socket also carries messages, whose bursts are legitimate: the
 * limit there only stops floods (and bounds the work of opening sealed
 * datagrams). IP Messenger's port gets the same two limits.
 */
export const DISCOVERY_RATE = { rate: 50, burst: 100 } as const;
export const UNICAST_RATE = { rate: 20_000, burst: 5_000 } as const;
/** Sealed datagrams past their source's rate limit opened, per ping of a probe, for the pong it awaits. */
export const RESCUE_BUDGET = 2000;

/** First byte of the type field in a lanchat frame, and the discovery types it may hold. */
const TYPE_OFFSET = 5;
const DISCOVERY_TYPES = new Set<number>([
  PacketType.hello,
  PacketType.goodbye,
  PacketType.ping,
  PacketType.pong,
  PacketType.suspect,
  PacketType.preq,
  PacketType.pack,
]);

/** The per-source token buckets of every socket, shared by lanchat's admission and IP Messenger's. */
export class SourceLimits {
  readonly broadcast = new RateLimiter(DISCOVERY_RATE);
  readonly unicast = new RateLimiter(UNICAST_RATE);
  /** Discovery packets (and IP Messenger entries) from an address, whichever socket they reach. */
  readonly discovery = new RateLimiter(DISCOVERY_RATE);
  readonly ipmsg = new RateLimiter(UNICAST_RATE);
}

/** What admission decided about a datagram. */
export type Verdict =
  | { ok: true; plain: Uint8Array }
  | {
    ok: false;
    reason: "rate-limit" | "auth" | "replay";
    detail?: string;
    /** For a sealed datagram refused for its send time: how far its sender's clock is ahead of ours. */
    aheadMs?: number;
    /** For a rate limit: which one. */
    limit?: "datagrams" | "discovery packets";
  };

export interface AdmissionOptions {
  limits: SourceLimits;
  /** The network key, when the group has one. */
  sealer?: Sealer;
  /** The probe awaiting a pong from an address, if any (the discovery state's). */
  awaitedPong: (address: string, now: number) => AwaitedPong | undefined;
}

/** The gate in front of lanchat's two sockets. */
export class Admission {
  readonly limits: SourceLimits;
  readonly sealer: Sealer | undefined;
  /** Pongs to this node's probes let through a flood that had spent their address's rate limit. */
  rescued = 0;
  #awaitedPong: AdmissionOptions["awaitedPong"];

  constructor(o: AdmissionOptions) {
    this.limits = o.limits;
    this.sealer = o.sealer;
    this.#awaitedPong = o.awaitedPong;
  }

  /**
   * Decides on a datagram from `from` that came in on the `via` socket at
   * `now` (monotonic; `wall` the same in ms since the epoch, for the seal's
   * replay window). On success, `plain` is the lanchat datagram inside.
   */
  admit(bytes: Uint8Array, from: Endpoint, via: "broadcast" | "unicast", now: number, wall: number): Verdict {
    if (!this.limits[via].allow(from.address, now)) {
      return this.#overLimit(bytes, undefined, from, now, wall, "datagrams");
    }
    let plain = bytes;
    // An end-to-end data packet is not sealed with the network key: it is
    // encrypted and authenticated to its sender already, and its session was
    // made by a handshake that was sealed (docs/e2e.md).
    if (this.sealer && !isE2eData(bytes)) {
      const r = this.sealer.open(bytes, wall);
      if (!r.ok) return r;
      plain = r.inner;
    }
    // A handshake message costs X25519s and a signature check: it counts
    // against the discovery budget, as hellos do; e2e data does not.
    const type = plain[TYPE_OFFSET];
    const discovery = isE2e(plain) ? !isE2eData(plain) : type !== undefined && DISCOVERY_TYPES.has(type);
    if (discovery && !this.limits.discovery.allow(from.address, now)) {
      return this.#overLimit(bytes, plain, from, now, wall, "discovery packets");
    }
    return { ok: true, plain };
  }

  /**
   * A datagram past its source's rate limit: refused, unless it is the pong
   * answering a probe this node sent to that address. Unsealed, telling it
   * from junk costs a look at the type byte (and a decode for one typed
   * pong); sealed, at most {@link RESCUE_BUDGET} a ping are opened, which
   * bounds the work.
   */
  #overLimit(
    bytes: Uint8Array,
    plain: Uint8Array | undefined,
    from: Endpoint,
    now: number,
    wall: number,
    limit: "datagrams" | "discovery packets",
  ): Verdict {
    const refused: Verdict = { ok: false, reason: "rate-limit", limit };
    const awaited = this.#awaitedPong(from.address, now);
    if (!awaited) return refused;
    // The pong competes with this flood in the socket buffer: discovery pings more often.
    awaited.flooded = true;
    if (plain === undefined) {
      if (!this.sealer) plain = bytes;
      else {
        if (awaited.examined++ >= RESCUE_BUDGET) return refused;
        const r = this.sealer.open(bytes, wall);
        if (!r.ok) return refused;
        plain = r.inner;
      }
    }
    if (!isE2e(plain) && plain[TYPE_OFFSET] === PacketType.pong) {
      const d = decodePacket(plain);
      if (d.ok && d.value.kind === "pong" && d.value.id === awaited.id && d.value.nonce === awaited.nonce) {
        this.rescued++;
        return { ok: true, plain };
      }
    }
    return refused;
  }

  /** A datagram as it goes out: sealed, stamped with `wall`, when the group has a key. */
  seal(bytes: Uint8Array, wall: number): Uint8Array {
    return this.sealer ? this.sealer.seal(bytes, wall) : bytes;
  }
}
