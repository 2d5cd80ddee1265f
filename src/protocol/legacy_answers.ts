/**
 * Which one-shot (legacy unicast, RFC 6762 §6.7) mDNS queries are answered:
 * a query from a port other than 5353 is answered to its source, so a
 * spoofed source would make this node send a response (several times the
 * query's size) to a victim. RFC 6762 §11: only a source on one of the
 * receiving interface's subnets is answered; and at most one answer a second
 * per destination address and {@link LEGACY_OVERALL} a second in all.
 *
 * @module
 */

/** Least time between two one-shot answers to one address. */
export const LEGACY_GAP_MS = 1000;
/** One-shot answers a second, all destinations together. */
export const LEGACY_OVERALL = 20;
/** Destinations remembered at most (the map is cleared beyond). */
const MAX_REMEMBERED = 1024;

export type LegacyRefusal = "off-link" | "rate-limit";

export class LegacyAnswers {
  #last = new Map<string, number>();
  #recent: number[] = [];

  /** Whether a one-shot query from `from` is answered at `now` (counted if so), or why not. */
  allow(from: string, onLink: boolean, now: number): true | LegacyRefusal {
    if (!onLink) return "off-link";
    const last = this.#last.get(from);
    if (last !== undefined && now - last < LEGACY_GAP_MS) return "rate-limit";
    this.#recent = this.#recent.filter((t) => t > now - 1000);
    if (this.#recent.length >= LEGACY_OVERALL) return "rate-limit";
    this.#recent.push(now);
    if (this.#last.size >= MAX_REMEMBERED) this.#last.clear();
    this.#last.set(from, now);
    return true;
  }
}
