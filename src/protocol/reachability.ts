/**
 * Whether each peer hears this node, not only this node it: the evidence
 * `lanchat doctor` reads to name a one-way link (AP isolation, a host
 * firewall that drops one direction). Sans-I/O and told the time.
 *
 * Hellos prove the peer → us direction. Any packet it sends to our unicast
 * socket (a pong, a ping, a message, an ack, a hello that answers ours)
 * proves the other one: it knows our address and reaches it. A peer heard
 * only by its hellos is asked now and then with a ping (which every
 * version answers with a pong, also to a sender it does not know): one
 * every {@link CHECK_INTERVALS} of this node's announce interval at most,
 * and only while nothing else came from it in that time, so a LAN that
 * talks sends none, and a quiet one of 1,000 hosts (announcing every 20 s)
 * about 8 a second.
 *
 * @module
 */

/** A peer silent on our unicast socket for this many announce intervals gets a check ping. */
export const CHECK_INTERVALS = 6;
/** A check ping with no answer within this long (ms) counts as unanswered. */
export const CHECK_TIMEOUT_MS = 2000;
/** Most source addresses whose last hello time is kept. */
export const MAX_HELLO_SOURCES = 1024;

/** What this node knows of one peer's two directions. Times are monotonic ms as passed in. */
export interface PeerReach {
  /** Its last hello heard (broadcast or unicast). */
  helloAt?: number;
  /** The last packet it sent to our unicast socket (an answer: it hears us). */
  answerAt?: number;
  /** Check pings sent since its last answer. */
  checksSinceAnswer: number;
  /** When the last check ping went. */
  checkAt?: number;
}

/** The evidence per peer and the last hello per source address. */
export class Reachability {
  #peers = new Map<string, PeerReach>();
  #helloFrom = new Map<string, number>();

  /** A hello from `id` heard from `address`. */
  hello(id: string, address: string, now: number): void {
    this.#of(id).helloAt = now;
    this.#helloFrom.delete(address);
    this.#helloFrom.set(address, now);
    if (this.#helloFrom.size > MAX_HELLO_SOURCES) this.#helloFrom.delete(this.#helloFrom.keys().next().value!);
  }

  /** A packet from `id` to our unicast socket: it hears us. */
  answered(id: string, now: number): void {
    const r = this.#of(id);
    r.answerAt = now;
    r.checksSinceAnswer = 0;
  }

  /** The peer left the roster: its evidence goes with it. */
  forget(id: string): void {
    this.#peers.delete(id);
  }

  /**
   * The peers in `ids` due a check ping at `now` (each one's ping counted as
   * sent): nothing came from it on our unicast socket for `period` ms since
   * it was first heard, and no check went to it in that time.
   */
  due(ids: Iterable<{ id: string; firstSeen: number }>, now: number, period: number): string[] {
    const out: string[] = [];
    for (const { id, firstSeen } of ids) {
      const r = this.#of(id);
      if (now - (r.answerAt ?? firstSeen) < period) continue;
      if (r.checkAt !== undefined && now - r.checkAt < period) continue;
      r.checkAt = now;
      r.checksSinceAnswer++;
      out.push(id);
    }
    return out;
  }

  /** The evidence for `id`, with the check pings already past their timeout at `now`. */
  of(id: string, now: number): (PeerReach & { unanswered: number }) | undefined {
    const r = this.#peers.get(id);
    if (!r) return undefined;
    const pending = r.checkAt !== undefined && r.checksSinceAnswer > 0 && now - r.checkAt < CHECK_TIMEOUT_MS ? 1 : 0;
    return { ...r, unanswered: r.checksSinceAnswer - pending };
  }

  /** When a hello last came from each source address (most recent last). */
  helloSources(): ReadonlyMap<string, number> {
    return this.#helloFrom;
  }

  #of(id: string): PeerReach {
    let r = this.#peers.get(id);
    if (!r) this.#peers.set(id, r = { checksSinceAnswer: 0 });
    return r;
  }
}

/**
 * A one-way link in words, or undefined: we hear `reach`'s hellos (within
 * `freshMs`) but at least two check pings went unanswered since it last
 * answered anything of ours.
 */
export function isOneWay(reach: { helloAt?: number; unanswered: number }, now: number, freshMs: number): boolean {
  return reach.helloAt !== undefined && now - reach.helloAt <= freshMs && reach.unanswered >= 2;
}
