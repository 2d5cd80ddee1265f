/**
 * Log lines for recurring conditions (a flood from one source, running out
 * of file descriptors): at most one line per key per interval, saying how
 * many times it happened since the last line. Pure: the time is passed in.
 *
 * @module
 */

/** One line per key per interval. */
export class OncePer {
  readonly intervalMs: number;
  readonly maxKeys: number;
  // Insertion order is recency order: a key is re-inserted on each line.
  #keys = new Map<string, { at: number; count: number }>();

  constructor(intervalMs = 60_000, maxKeys = 1024) {
    this.intervalMs = intervalMs;
    this.maxKeys = maxKeys;
  }

  /**
   * Records one occurrence of `key` at `now` (with its own interval if
   * given). Returns how many occurrences
   * the line due now reports (this one and those held back since the last
   * line), or 0 when no line is due (the occurrence is counted for the next).
   */
  hit(key: string, now: number, intervalMs = this.intervalMs): number {
    const k = this.#keys.get(key);
    if (k && now - k.at < intervalMs) {
      k.count++;
      return 0;
    }
    const count = (k?.count ?? 0) + 1;
    this.#keys.delete(key);
    if (this.#keys.size >= this.maxKeys) this.#keys.delete(this.#keys.keys().next().value!);
    this.#keys.set(key, { at: now, count: 0 });
    return count;
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#keys.size;
  }
}
