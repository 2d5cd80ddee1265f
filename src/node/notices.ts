/**
 * Warnings about conditions that recur (a flood from one source, running
 * out of file descriptors, a clock that is off, a peer that speaks another
 * version): each logged at most once per key and interval, with how many
 * times it happened since, so that a flood is a line a minute, not a line a
 * packet.
 *
 * @module
 */
import { logger } from "../common/log.ts";
import { OncePer } from "../common/once_per.ts";

export class Notices {
  /** Operations that failed for want of file descriptors. */
  fdExhausted = 0;
  #once = new OncePer();
  #log = logger("daemon");
  #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** A warning logged once per `key` for as long as the daemon runs (keys are bounded: the oldest are forgotten). */
  once(key: string, message: string, properties: Record<string, unknown>): void {
    if (this.#once.hit(`once:${key}`, this.#now(), Infinity) > 0) this.#log.warn(message, properties);
  }

  /** A flood from one source: one line per source and kind per minute, with the count. */
  flood(address: string, what: string, why: string): void {
    const n = this.#once.hit(`flood:${address}:${what}:${why}`, this.#now());
    if (n > 0) {
      this.#log.warn("Refusing {what} from {address}: {why} ({count} since the last such line)", {
        what,
        address,
        why,
        count: n,
      });
    }
  }

  /**
   * A newcomer refused because the roster (or its address's or /64's share)
   * is full: one line a minute in all, whatever the sources, with the count.
   */
  rosterFull(address: string, size: number, maxPeers: number): void {
    const n = this.#once.hit("roster-full", this.#now());
    if (n > 0) {
      this.#log.warn(
        "Roster full: refused {count} newcomer(s) since the last such line, the last from {address} ({size} of --max-peers {maxPeers} peers; at most 16 per address and a quarter per IPv6 /64)",
        { count: n, address, size, maxPeers },
      );
    }
  }

  /**
   * Running out of file descriptors, anywhere: counted, and logged at most
   * once a minute per place, never a crash.
   */
  outOfFds(where: string, e: unknown): void {
    this.fdExhausted++;
    const n = this.#once.hit(`fd:${where}`, this.#now());
    if (n > 0) {
      this.#log.warn(
        "Out of file descriptors while {where} ({count}× since the last such line): {error}; raise the open-file limit (ulimit -n, LimitNOFILE=) or lower --http-max-connections",
        { where, count: n, error: (e as Error)?.message ?? String(e) },
      );
    }
  }

  /**
   * Sealed datagrams refused for their send time: said in words, once an
   * hour per source, since such a host otherwise simply never appears.
   */
  clockSkew(address: string, aheadMs: number): void {
    if (this.#once.hit(`clock:${address}`, this.#now(), 3600_000) === 0) return;
    this.#log.warn(
      "Datagrams from {address} are {seconds} s {direction} this host's clock; a keyed group needs clocks within 30 s: run NTP on both",
      { address, seconds: Math.round(Math.abs(aheadMs) / 1000), direction: aheadMs > 0 ? "ahead of" : "behind" },
    );
  }
}
