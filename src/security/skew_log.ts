/**
 * Sealed datagrams refused for their send time, counted per source address:
 * a host whose clock is off by more than the replay window never appears,
 * and `lanchat doctor` names it with how far off its clock is. Bounded (the
 * oldest source is forgotten first); time passed in.
 *
 * @module
 */

/** Most source addresses kept. */
export const MAX_SKEW_SOURCES = 256;

/** Refusals from one source. */
export interface SkewEntry {
  address: string;
  /** Datagrams refused for their send time. */
  count: number;
  /** How far the sender's clock was ahead of ours in the last one (ms; negative: behind). */
  aheadMs: number;
  /** When the last one came (monotonic ms). */
  at: number;
}

export class SkewLog {
  #entries = new Map<string, SkewEntry>();

  /** A datagram from `address` refused at `now` for a send time `aheadMs` ahead of our clock. */
  refused(address: string, aheadMs: number, now: number): void {
    const e = this.#entries.get(address);
    this.#entries.delete(address);
    this.#entries.set(address, { address, count: (e?.count ?? 0) + 1, aheadMs, at: now });
    if (this.#entries.size > MAX_SKEW_SOURCES) this.#entries.delete(this.#entries.keys().next().value!);
  }

  /** The sources refused, most recent last. */
  entries(): SkewEntry[] {
    return [...this.#entries.values()];
  }
}
