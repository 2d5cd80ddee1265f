/**
 * Probes of silent peers: the pings the roster asks for (repeated over the
 * probe timeout, more of them under a flood) and the pongs awaited for them,
 * which the driver lets through a flood under the peer's address. Whether a
 * probe removes its peer is the roster's decision (`roster.ts`).
 *
 * @module
 */
import type { Roster, TickResult } from "./roster.ts";
import type { Endpoint } from "./transmit.ts";
import { encodePacket } from "../wire/mod.ts";

/**
 * Pings a probe sends, spread over the probe timeout (at 0, ⅓ and ⅔ of it):
 * one lost ping or pong (loss on the link, or a flood filling the peer's
 * receive buffer) does not remove a peer that is alive.
 */
export const PINGS_PER_PROBE = 3;
/**
 * Pings a probe sends, spread over the probe timeout, once the driver saw
 * a flood under the probed address (see {@link AwaitedPong.flooded}): the
 * pongs then share the socket's receive buffer with that flood and the
 * kernel drops most of what comes while it is full, so each pong has a
 * small chance; more of them, spread in time, make one arriving near sure.
 */
export const FLOODED_PINGS_PER_PROBE = 10;

/** A probe sent to an address whose pong has not come yet. */
export interface AwaitedPong {
  /** The probed peer. */
  id: string;
  nonce: number;
  /** Sealed datagrams from the address the driver opened for this pong past their rate limit (it bounds that work). */
  examined: number;
  /** Set by the driver when datagrams from the address came past its rate limit while this pong was awaited. */
  flooded: boolean;
  /** Where the pings go, the ping itself, when the last one went and how many went. */
  to: Endpoint;
  ping: Uint8Array;
  sentAt: number;
  pings: number;
}

/**
 * Pings a probe sends with the failure detector on (`discovery.ts`): at 5 %
 * loss three pings all go unanswered once in a thousand probes, which at
 * N = 1000 (thousands of stale probes an hour from lost hellos) removed live
 * peers; six, once in a million.
 */
export const DETECTOR_PINGS_PER_PROBE = 6;

/** How many pings a probe sends in all, and when its next one is due. */
function pingPlan(a: AwaitedPong, timeoutMs: number, pings: number): { max: number; nextAt: number } {
  const max = a.flooded ? FLOODED_PINGS_PER_PROBE : pings;
  return { max, nextAt: a.sentAt + timeoutMs / max };
}

/** The probes under way and the pongs they wait for. */
export class Probes {
  #roster: Roster;
  #self: { id: string; incarnation: number };
  /** Sends a ping (counted by discovery). */
  #sendPing: (to: Endpoint, ping: Uint8Array) => void;
  /** address → the probe awaiting a pong from it. */
  #awaiting = new Map<string, AwaitedPong>();

  /** Pings per probe when not flooded ({@link PINGS_PER_PROBE} unless told). */
  pings = PINGS_PER_PROBE;

  constructor(
    roster: Roster,
    self: { id: string; incarnation: number },
    sendPing: (to: Endpoint, ping: Uint8Array) => void,
  ) {
    this.#roster = roster;
    this.#self = self;
    this.#sendPing = sendPing;
  }

  /** Starts the probes the roster asked for at `now`; returns how many. */
  start(probes: TickResult["probes"], now: number): number {
    for (const probe of probes) {
      const ping = encodePacket({
        kind: "ping",
        id: this.#self.id,
        incarnation: this.#self.incarnation,
        nonce: probe.nonce,
      });
      for (const a of probe.addresses) {
        this.#sendPing(a, ping);
        this.#awaiting.set(a.address, {
          id: probe.peer.id,
          nonce: probe.nonce,
          examined: 0,
          flooded: false,
          to: { address: a.address, port: a.port },
          ping,
          sentAt: now,
          pings: 1,
        });
      }
    }
    return probes.length;
  }

  /** Sends the pings due again at `now`, and forgets the probes the roster decided. */
  repeat(now: number): void {
    const timeout = this.#roster.probeTimeoutMs;
    for (const [address, a] of this.#awaiting) {
      if (!this.#stillAwaited(a)) {
        this.#awaiting.delete(address);
        continue;
      }
      const plan = pingPlan(a, timeout, this.pings);
      if (a.pings < plan.max && plan.nextAt <= now) {
        this.#sendPing(a.to, a.ping);
        // Each ping's pong gets its own look past the rate limit: under a
        // flood the first pong may have been dropped by a full socket buffer.
        a.examined = 0;
        a.pings++;
        a.sentAt = now;
      }
    }
  }

  /** A pong from `peerId` at `address`: that probe is answered. */
  answered(address: string, peerId: string): void {
    if (this.#awaiting.get(address)?.id === peerId) this.#awaiting.delete(address);
  }

  /** See {@link Discovery.awaitedPong}. */
  awaited(address: string): AwaitedPong | undefined {
    const a = this.#awaiting.get(address);
    if (a && !this.#stillAwaited(a)) {
      this.#awaiting.delete(address);
      return undefined;
    }
    return a;
  }

  /** When the next ping is to be repeated (Infinity if none). */
  nextPing(): number {
    let next = Infinity;
    // Pings still to repeat (only while peers are being probed: few, if any).
    const timeout = this.#roster.probeTimeoutMs;
    for (const a of this.#awaiting.values()) {
      const plan = pingPlan(a, timeout, this.pings);
      if (a.pings < plan.max && plan.nextAt < next) next = plan.nextAt;
    }
    return next;
  }

  /**
   * Whether the probe `a` is for is still open: its peer still probed with
   * its nonce. Not a fixed time: a pong read after the probe's deadline but
   * before the roster looked (the loop was busy reading, its timer late) is
   * still the answer, and the roster, told how late it looked, takes it.
   */
  #stillAwaited(a: AwaitedPong): boolean {
    const peer = this.#roster.get(a.id);
    return peer !== undefined && peer.state === "probing" && peer.probeNonce === a.nonce;
  }
}
