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

/** Lines of one kind a minute before they are held back (see {@link Notices.burst}). */
export const BURST_LINES_PER_MINUTE = 30;

export class Notices {
  /** Operations that failed for want of file descriptors. */
  fdExhausted = 0;
  #once = new OncePer();
  #bursts = new Map<string, { start: number; lines: number; held: number }>();
  #log = logger("daemon");
  #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /**
   * A warning logged once per `key` for as long as the daemon runs (keys are
   * bounded: the oldest are forgotten); beyond 30 such lines a minute, of
   * all keys, they are held back and counted in the next.
   */
  once(key: string, message: string, properties: Record<string, unknown>): void {
    if (this.#once.hit(`once:${key}`, this.#now(), Infinity) === 0) return;
    // Many keys at once (a host inventing peers of an old version): a few lines a minute, and how many were held.
    const b = this.burst("once");
    if (!b.ok) return;
    if (b.held > 0) this.#log.warn("{held} warning(s) not logged (over 30 a minute)", { held: b.held });
    this.#log.warn(message, properties);
  }

  /**
   * Lines of one kind (peers joining) beyond `limit` a minute are held back:
   * `ok` says whether to log this one, `held` how many were held back before it
   * (to say so in it). A host inventing peers costs `limit` lines a minute.
   */
  burst(kind: string, limit = BURST_LINES_PER_MINUTE): { ok: boolean; held: number } {
    const now = this.#now();
    let b = this.#bursts.get(kind);
    if (!b) this.#bursts.set(kind, b = { start: now, lines: 0, held: 0 });
    if (now - b.start >= 60_000) {
      b.start = now;
      b.lines = 0;
    }
    if (b.lines >= limit) {
      b.held++;
      return { ok: false, held: 0 };
    }
    b.lines++;
    const held = b.held;
    b.held = 0;
    return { ok: true, held };
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
