/**
 * The sliding window of counters a session has received (RFC 6479, as
 * wireguard-go's `replay/replay.go`): a ring of 64 32-bit words, 2,048 bits,
 * so any counter within the last {@link WINDOW} of the highest seen is taken
 * once, whatever order it comes in, and one further back or seen before is
 * refused. UDP loses, duplicates and reorders; this takes the first two
 * without a false refusal and the third up to 2,016 packets deep.
 *
 * @module
 */

const WORD_BITS = 32;
const RING_WORDS = 64;
/** How far behind the highest counter seen a counter is still taken. */
export const WINDOW = (RING_WORDS - 1) * WORD_BITS;

export class ReplayWindow {
  #last = 0;
  #ring = new Uint32Array(RING_WORDS);

  /**
   * True (and remembered) when `counter` is below `limit` and has not been
   * seen; false for a replay or a counter too old for the window. Call it
   * only for a packet that authenticated, so a forger cannot move the window.
   */
  accept(counter: number, limit: number): boolean {
    if (!Number.isSafeInteger(counter) || counter < 0 || counter >= limit) return false;
    const block = Math.floor(counter / WORD_BITS);
    if (counter > this.#last) {
      const current = Math.floor(this.#last / WORD_BITS);
      const diff = Math.min(block - current, RING_WORDS);
      for (let i = current + 1; i <= current + diff; i++) this.#ring[i % RING_WORDS] = 0;
      this.#last = counter;
    } else if (this.#last - counter > WINDOW) {
      return false;
    }
    const word = block % RING_WORDS;
    const bit = 1 << (counter % WORD_BITS);
    const old = this.#ring[word]!;
    if ((old & bit) !== 0) return false;
    this.#ring[word] = old | bit;
    return true;
  }
}
