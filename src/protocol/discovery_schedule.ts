/**
 * When discovery speaks: the announce schedule (the startup burst, the
 * interval scaled with the roster, ±25 % jitter) and the answers to
 * newcomers, at once on a small LAN and spread over a window on a big one.
 * The rules are pure functions with table tests; {@link NewcomerReplies}
 * holds the answers waiting for their turn.
 *
 * @module
 */
import type { Endpoint } from "./transmit.ts";

/** Default announce interval. */
export const DEFAULT_INTERVAL_MS = 2000;
/** Offsets of the hellos sent right after start, before the periodic schedule. */
export const STARTUP_BURST_MS: readonly number[] = [0, 100, 500];
/** Up to this roster size a newcomer is answered at once. */
export const INSTANT_REPLY_MAX_PEERS = 32;
/**
 * Default announce budget: hellos a second that any one host may receive
 * from all the others together, whatever the roster size.
 */
export const DEFAULT_ANNOUNCE_BUDGET = 50;
/** Longest window replies to a newcomer are spread over. */
export const MAX_REPLY_WINDOW_MS = 2000;

/**
 * The announce interval for a roster of `peers`: the configured interval
 * while it keeps what each host receives under `budget` hellos a second,
 * else long enough that it does (`peers / budget` seconds, rounded up to a
 * whole second so that it does not change with every join), as RTCP scales
 * its report interval with the group. Expiry (3 intervals) and so crash
 * detection scale with it; receivers learn it from each hello.
 */
export function scaledInterval(baseMs: number, peers: number, budget: number): number {
  const needed = (peers * 1000) / budget;
  return needed <= baseMs ? baseMs : Math.ceil(needed / 1000) * 1000;
}

/**
 * The delay before the next periodic announce: the interval with ±25 %
 * jitter, so that daemons started together drift apart.
 */
export function announceDelay(intervalMs: number, random: number): number {
  return Math.round(intervalMs * (0.75 + 0.5 * random));
}

/**
 * How long to wait before answering a newcomer's hello when the roster has
 * `peers` entries: at once on a small LAN; on a big one spread over a window
 * that grows with the roster (as IP Messenger spreads ANSENTRY), so that a
 * join does not make every host answer in the same millisecond.
 */
export function replyDelay(peers: number, random: number): number {
  if (peers <= INSTANT_REPLY_MAX_PEERS) return 0;
  const window = Math.min(MAX_REPLY_WINDOW_MS, peers * 2);
  return Math.floor(random * window);
}

/** An answer to a newcomer's hello, waiting for its turn. */
export interface PendingReply {
  at: number;
  peerId: string;
  to: Endpoint;
}

/** What {@link NewcomerReplies.due} returns when nothing is due: no allocation per call. */
const NOTHING: readonly never[] = Object.freeze([]);

/** The answers to newcomers that wait for their turn ({@link replyDelay}). */
export class NewcomerReplies {
  #replies: PendingReply[] = [];
  /** When the earliest pending reply is due (Infinity if none). */
  #nextReply = Infinity;

  /** When the earliest answer is due (Infinity if none). */
  get next(): number {
    return this.#nextReply;
  }

  /** Whether an answer to `peerId` waits already. */
  has(peerId: string): boolean {
    return this.#replies.some((r) => r.peerId === peerId);
  }

  /** Answers `peerId` at `to` at time `at`. */
  add(at: number, peerId: string, to: Endpoint): void {
    this.#replies.push({ at, peerId, to });
    if (at < this.#nextReply) this.#nextReply = at;
  }

  /** Takes the answers due at `now`. */
  due(now: number): readonly PendingReply[] {
    if (this.#nextReply > now) return NOTHING;
    const due = this.#replies.filter((r) => r.at <= now);
    this.#set(this.#replies.filter((r) => r.at > now));
    return due;
  }

  /** Drops the answer to `peerId` (it left). */
  cancel(peerId: string): void {
    this.#set(this.#replies.filter((r) => r.peerId !== peerId));
  }

  /** Drops every answer. */
  clear(): void {
    this.#set([]);
  }

  #set(replies: PendingReply[]): void {
    this.#replies = replies;
    let next = Infinity;
    for (const r of replies) if (r.at < next) next = r.at;
    this.#nextReply = next;
  }
}
