/**
 * Per-source token buckets, pure: the time is passed in. A source gets
 * `burst` datagrams at once and `rate` a second after that; the excess is
 * dropped (and counted by the caller). Idle sources are forgotten, and the
 * number tracked is bounded, so a flood of spoofed sources cannot grow
 * memory without bound.
 *
 * @module
 */

export interface RateLimitOptions {
  /** Tokens added per second. */
  rate: number;
  /** Bucket size: the largest burst allowed. */
  burst: number;
  /** Most sources tracked; past it the least recently seen is forgotten. */
  maxSources?: number;
}

/** Token buckets keyed by source (an address). */
export class RateLimiter {
  readonly rate: number;
  readonly burst: number;
  readonly maxSources: number;
  // Map iteration order is insertion order: re-inserting on use keeps it LRU.
  #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(o: RateLimitOptions) {
    this.rate = o.rate;
    this.burst = o.burst;
    this.maxSources = o.maxSources ?? 4096;
  }

  /** Takes one token for `source` at `now` (ms); false when it has none: drop the datagram. */
  allow(source: string, now: number): boolean {
    let b = this.#buckets.get(source);
    if (b) {
      this.#buckets.delete(source);
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
      b.at = now;
    } else {
      if (this.#buckets.size >= this.maxSources) this.#buckets.delete(this.#buckets.keys().next().value!);
      b = { tokens: this.burst, at: now };
    }
    this.#buckets.set(source, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Sources tracked now. */
  get size(): number {
    return this.#buckets.size;
  }
}
