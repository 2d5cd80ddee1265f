/**
 * When peer exchange asks each peer for the nodes it knows (sans-I/O, told
 * the time): when the peer joins, again {@link ASK_AGAIN_MS} later (it may
 * have learnt its own far peers only as it started), then every
 * {@link ASK_GAP_MS}. A request that got no answer (lost, or it came before
 * the peer had us in its roster or a session) is asked again after
 * {@link RETRY_MS}, the gap doubling, at most {@link RETRIES} times until
 * the next regular request.
 *
 * @module
 */

export const ASK_AGAIN_MS = 5_000;
export const ASK_GAP_MS = 600_000;
export const RETRY_MS = 5_000;
export const RETRIES = 6;
/**
 * Least time between two answers to one peer: shorter than the gaps above,
 * so a request asked again is never ignored by the peer.
 */
export const ANSWER_GAP_MS = 4_000;

export class AskSchedule {
  /** Peer id → its next regular request, and how many regular ones it was sent. */
  #regular = new Map<string, { at: number; n: number }>();
  /** Peer id → an unanswered request of ours: when it is asked again, and how often it was already. */
  #retry = new Map<string, { at: number; tries: number }>();
  /** Requests asked again, for the counters. */
  retried = 0;

  /** `id` joined (or restarted): asked now and again {@link ASK_AGAIN_MS} later. */
  joined(id: string, now: number): void {
    this.#regular.set(id, { at: now, n: 0 });
    this.#retry.delete(id);
  }

  /** `id` answered a request: no retry until the next regular one. */
  answered(id: string): void {
    this.#retry.delete(id);
  }

  /** `id` left: not asked any more. */
  left(id: string): void {
    this.#regular.delete(id);
    this.#retry.delete(id);
  }

  /** The peers to ask at `now` (each request then counts as sent and unanswered). */
  due(now: number): string[] {
    const out: string[] = [];
    for (const [id, r] of this.#regular) {
      if (r.at > now) continue;
      // The first request (at the join) is followed by one more soon, then the long gap.
      this.#regular.set(id, { at: now + (r.n === 0 ? ASK_AGAIN_MS : ASK_GAP_MS), n: r.n + 1 });
      this.#retry.set(id, { at: now + RETRY_MS, tries: 0 });
      out.push(id);
    }
    for (const [id, r] of this.#retry) {
      if (r.at > now || out.includes(id)) continue;
      const tries = r.tries + 1;
      if (tries > RETRIES) {
        this.#retry.delete(id);
        continue;
      }
      this.#retry.set(id, { at: now + RETRY_MS * 2 ** tries, tries });
      this.retried++;
      out.push(id);
    }
    return out;
  }

  /** When {@link due} has something next. */
  next(): number | undefined {
    let next = Infinity;
    for (const r of this.#regular.values()) next = Math.min(next, r.at);
    for (const r of this.#retry.values()) next = Math.min(next, r.at);
    return next === Infinity ? undefined : next;
  }
}
