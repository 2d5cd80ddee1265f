/**
 * The bounds on what a hostile responder or peer can make this node probe
 * (send its hello to): new candidates per source and overall, unverified
 * probes per minute, and an address that did not answer left alone for a
 * while whatever port it is named on. Sans-I/O, told the time.
 *
 * @module
 */

/**
 * How long an address that did not answer is left alone, whatever records
 * name it and on whatever port (a liar naming a victim on a fresh port each
 * time gains nothing).
 */
export const PROBE_BACKOFF_MS = 300_000;
/** Candidates one address may have at once, whatever their ports (several nodes on one host are rare). */
export const PER_ADDRESS = 4;
/** Unverified candidates probed per minute, all sources and addresses together. */
export const PROBES_PER_MINUTE = 64;
/** New candidates one responder may bring in per {@link RATE_WINDOW_MS}, and all responders together. */
export const NEW_PER_SOURCE = 8;
export const NEW_OVERALL = 32;
export const RATE_WINDOW_MS = 10_000;

export class ProbeBounds {
  #backoff = new Map<string, number>();
  #newBySource = new Map<string, number[]>();
  #newOverall: number[] = [];
  /** When each unverified probe of the last minute began. */
  #lastMinute: number[] = [];

  /** Whether `address` did not answer a probe less than {@link PROBE_BACKOFF_MS} ago. */
  backedOff(address: string, now: number): boolean {
    const until = this.#backoff.get(address);
    return until !== undefined && until > now;
  }

  /** A probe of `address` given up: the address is left alone for a while. */
  giveUp(address: string, now: number): void {
    this.#backoff.set(address, now + PROBE_BACKOFF_MS);
  }

  /** Whether a new probe brought by `source` is within the bounds (counted if so). */
  allowNew(source: string, now: number): boolean {
    const fresh = (l: number[]) => l.filter((t) => t > now - RATE_WINDOW_MS);
    const mine = fresh(this.#newBySource.get(source) ?? []);
    this.#newOverall = fresh(this.#newOverall);
    this.#lastMinute = this.#lastMinute.filter((t) => t > now - 60_000);
    if (mine.length >= NEW_PER_SOURCE || this.#newOverall.length >= NEW_OVERALL) return false;
    if (this.#lastMinute.length >= PROBES_PER_MINUTE) return false;
    mine.push(now);
    this.#newOverall.push(now);
    this.#lastMinute.push(now);
    if (this.#newBySource.size > 1024) this.#newBySource.clear();
    this.#newBySource.set(source, mine);
    return true;
  }

  /** Forgets backoffs that ended. */
  expire(now: number): void {
    for (const [address, until] of this.#backoff) if (until <= now) this.#backoff.delete(address);
  }
}
