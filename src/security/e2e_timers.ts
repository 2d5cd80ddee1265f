/**
 * When the session table acts on its own for a peer, as pure functions of
 * the peer's times (table-tested): retrying a handshake, giving up, starting
 * one for datagrams that wait or for data that got no answer, and sending a
 * keepalive. WireGuard's timers (its `timers.go`), scaled to a LAN where a
 * round trip is a millisecond and lanchat's own messages are acked.
 *
 * @module
 */
import { REJECT_AFTER_TIME_MS } from "./session.ts";

/** A handshake not answered is tried again for this long. */
export const REKEY_ATTEMPT_TIME_MS = 90_000;
/** First wait for a response before a new initiation; doubles up to {@link HANDSHAKE_RETRY_MAX_MS}. */
export const HANDSHAKE_RETRY_MS = 1_000;
export const HANDSHAKE_RETRY_MAX_MS = 5_000;
/** Up to this much random time is added to each wait, so that two nodes do not retry in step. */
export const RETRY_JITTER_MS = 334;
/** Data received and nothing sent back for this long: send an empty keepalive. */
export const KEEPALIVE_MS = 3_000;
/** Data sent and nothing received for this long: the peer may have lost its keys, handshake again. */
export const NO_REPLY_MS = KEEPALIVE_MS + 2_000;

/** Initiations taken from one node at most once per this (WireGuard's 50 a second). */
export const MIN_INITIATION_INTERVAL_MS = 20;

/** How long to wait for the response to the `attempts`-th initiation (from 1), before jitter. */
export function retryDelay(attempts: number): number {
  return Math.min(HANDSHAKE_RETRY_MS * 2 ** (attempts - 1), HANDSHAKE_RETRY_MAX_MS);
}

/** What the timers look at for one peer. */
export interface PeerClock {
  /** Our initiation in flight. */
  handshake?: { startedAt: number; retryAt: number };
  /** Datagrams waiting for a session. */
  queued: number;
  /** A session that may send now. */
  sending: boolean;
  /** When a responder's unconfirmed session (`next`) was made: the initiator's first packet is due under it. */
  nextCreatedAt?: number;
  /** Data sent since nothing came back. */
  unansweredSince?: number;
  /** Data received since nothing went back. */
  owesKeepaliveSince?: number;
  sessionsCreatedAt: number[];
}

export interface Due {
  /** The handshake ran out of time: drop the queue. */
  giveUp: boolean;
  /** Send a new initiation in place of the unanswered one. */
  retry: boolean;
  /** No handshake runs, and one is needed: datagrams wait, or data went unanswered. */
  initiate: boolean;
  keepalive: boolean;
}

/** What is due for a peer at `now`. */
export function dueAt(c: PeerClock, now: number): Due {
  const h = c.handshake;
  const handshakeDue = h !== undefined && now >= h.retryAt;
  const giveUp = handshakeDue && now - h.startedAt >= REKEY_ATTEMPT_TIME_MS;
  const stalled = c.queued > 0 && !c.sending &&
    (c.nextCreatedAt === undefined || now - c.nextCreatedAt >= HANDSHAKE_RETRY_MS);
  const unanswered = c.unansweredSince !== undefined && now - c.unansweredSince >= NO_REPLY_MS;
  return {
    giveUp,
    retry: handshakeDue && !giveUp,
    initiate: !h && (stalled || unanswered),
    keepalive: c.owesKeepaliveSince !== undefined && now - c.owesKeepaliveSince >= KEEPALIVE_MS,
  };
}

/** The earliest time something is due (see {@link dueAt}) or a session expires; undefined: nothing. */
export function nextDeadline(c: PeerClock): number | undefined {
  const times = c.sessionsCreatedAt.map((t) => t + REJECT_AFTER_TIME_MS);
  if (c.handshake) times.push(c.handshake.retryAt);
  else {
    if (c.queued > 0 && !c.sending) {
      times.push(c.nextCreatedAt === undefined ? 0 : c.nextCreatedAt + HANDSHAKE_RETRY_MS);
    }
    if (c.unansweredSince !== undefined) times.push(c.unansweredSince + NO_REPLY_MS);
  }
  if (c.owesKeepaliveSince !== undefined) times.push(c.owesKeepaliveSince + KEEPALIVE_MS);
  return times.length ? Math.min(...times) : undefined;
}
