/**
 * The receiving half of reliable messaging: acknowledgements,
 * de-duplication and per-sender ordering.
 *
 * Fragments are reassembled (`messaging_reassembly.ts`); a complete message
 * whose id is already stored is acknowledged and dropped (a duplicate).
 * Messages from one sender enter the inbox in sequence order; one that
 * arrives ahead of a gap is stored ("held") and acknowledged, and shown when
 * the gap fills, when the sender's `base` shows the gap will never fill, or
 * when the sender has not shown for {@link GAP_WAIT_MS} that it still holds
 * the missing message (every fragment carries its `base`), with a marker
 * saying how many are missing. A message is acknowledged only after the
 * transaction that stores it has committed.
 *
 * @module
 */
import type { Endpoint } from "./transmit.ts";
import { GROUP_MARK, parseGroupLine } from "./groups.ts";
import { type MessagingContext, storeError } from "./messaging_shared.ts";
import { Reassembly } from "./messaging_reassembly.ts";
import type { HeldMessage, Release, ThreadChanges } from "../storage/store.ts";
import { type Ack, encodePacket, type Msg } from "../wire/mod.ts";

/**
 * How long a gap in a sender's sequence is waited for, after the sender last
 * showed it still holds the missing message, before later messages are shown.
 */
export const GAP_WAIT_MS = 10_000;

/** Messages stored in one go at {@link Receiver.flush}, with the acks that wait for it, per sender. */
interface Deferred {
  /** The sender's expected sequence number before the first of them (restored if they cannot be stored). */
  from: number;
  next: number;
  messages: Release[];
  acks: { to: Endpoint; messageId: string; count: number }[];
}

interface PeerIn {
  /** Next sequence number to show; undefined before the first message from this peer. */
  expected: number | undefined;
  held: Map<number, HeldMessage>;
  gapDeadline: number | undefined;
}

/** Incoming messages from every sender: reassembled, stored in order, acknowledged. */
export class Receiver {
  #ctx: MessagingContext;
  #in = new Map<string, PeerIn>();
  #reassembly: Reassembly;
  /** Whether in-order messages wait for {@link flush} to be stored together (see {@link MessagingOptions.deferReleases}). */
  #defer: boolean;
  #deferred = new Map<string, Deferred>();
  #deferredIds = new Set<string>();

  constructor(ctx: MessagingContext, defer = false) {
    this.#ctx = ctx;
    this.#defer = defer;
    this.#reassembly = new Reassembly(ctx.counters);
    // Resume the messages a previous run held for order.
    for (const h of ctx.store.heldMessages()) this.#peerIn(h.peer).held.set(h.seq, h);
  }

  /** Whether messages wait for {@link flush}. */
  get deferred(): boolean {
    return this.#deferred.size > 0;
  }

  /**
   * Stores the in-order messages that waited, each sender's in one
   * transaction, then acknowledges them. When they cannot be stored none of
   * them is acknowledged, and the sender's retries bring them again.
   */
  flush(now: number): void {
    const ctx = this.#ctx;
    const all = [...this.#deferred];
    this.#deferred.clear();
    this.#deferredIds.clear();
    for (const [peer, d] of all) {
      try {
        this.#release(peer, d.messages, d.next, now);
      } catch (e) {
        storeError(ctx, e);
        this.#peerIn(peer).expected = d.from;
        continue;
      }
      ctx.counters.messagesReceived += d.messages.length;
      for (const a of d.acks) this.#ack(a.to, peer, a.messageId, a.count, new Uint8Array(Math.ceil(a.count / 8)), true);
    }
  }

  /** Gap waits and reassembly expiry due at `now`. */
  handleTimeout(now: number): void {
    this.flush(now);
    for (const [peer, state] of this.#in) {
      if (state.gapDeadline !== undefined && state.gapDeadline <= now) this.#skipGap(peer, state, now);
    }
    this.#reassembly.expire(now);
  }

  /** The next gap deadline or reassembly expiry (Infinity if none). */
  nextTimeout(): number {
    let next = Infinity;
    for (const s of this.#in.values()) if (s.gapDeadline !== undefined && s.gapDeadline < next) next = s.gapDeadline;
    const expiry = this.#reassembly.nextExpiry();
    return expiry < next ? expiry : next;
  }

  #peerIn(peer: string): PeerIn {
    let s = this.#in.get(peer);
    if (!s) {
      s = { expected: undefined, held: new Map(), gapDeadline: undefined };
      this.#in.set(peer, s);
    }
    return s;
  }

  #ack(
    to: Endpoint,
    peer: string,
    messageId: string,
    count: number,
    received: Uint8Array,
    done: boolean,
    rejected?: string,
  ): void {
    const ctx = this.#ctx;
    const ack: Ack = {
      kind: "ack",
      id: ctx.self.id,
      incarnation: ctx.self.incarnation,
      messageId,
      count,
      received,
      done,
    };
    if (rejected) ack.rejected = rejected;
    ctx.transmits.push({ via: "unicast", to, bytes: encodePacket(ack), kind: "ack", peer });
    ctx.counters.acksSent++;
  }

  /** A message fragment from `from`. Returns a drop reason when it is not taken. */
  onMsg(m: Msg, from: Endpoint, now: number): "not-for-me" | "overload" | undefined {
    const ctx = this.#ctx;
    if (m.to !== ctx.self.id) return "not-for-me";
    ctx.counters.fragmentsReceived++;
    // Any fragment (a duplicate too) whose sender still holds the message we
    // wait for (its base is at or below our gap) means it will come: the gap
    // wait starts over.
    const waiting = this.#in.get(m.id);
    if (waiting?.gapDeadline !== undefined && waiting.expected !== undefined && m.base <= waiting.expected) {
      waiting.gapDeadline = now + GAP_WAIT_MS;
    }

    const empty = new Uint8Array(Math.ceil(m.count / 8));
    let partial = this.#reassembly.get(m.messageId);
    if (!partial) {
      const unstored = this.#deferredIds.has(m.messageId) ? this.#deferred.get(m.id) : undefined;
      if (unstored) {
        // A retry of one that waits to be stored: acknowledged with it.
        ctx.counters.duplicates++;
        unstored.acks.push({ to: from, messageId: m.messageId, count: m.count });
        return undefined;
      }
      if (ctx.store.hasMessage(m.messageId)) {
        ctx.counters.duplicates++;
        this.#ack(from, m.id, m.messageId, m.count, empty, true);
        return undefined;
      }
      partial = this.#reassembly.start(m, now);
      if (!partial) return "overload";
    }
    // Same id, different shape: not a fragment of this message.
    if (!this.#reassembly.add(partial, m, now)) return "overload";
    if (partial.have < partial.count) {
      // At the end of each of the sender's rounds, tell it what is missing.
      if (m.end) this.#ack(from, m.id, m.messageId, m.count, partial.got.slice(), false);
      return undefined;
    }
    // Complete.
    const bytes = this.#reassembly.finish(partial);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      this.#ack(from, m.id, m.messageId, m.count, empty, true, "bad-utf8");
      return undefined;
    }
    if (text.includes("\0")) {
      // SQLite hands a text back cut at its first NUL: each becomes U+FFFD, so nothing after it is lost (counted).
      text = text.replaceAll("\0", "\uFFFD");
      ctx.counters.nulsReplaced++;
    }
    const held: HeldMessage = {
      id: m.messageId,
      peer: m.id,
      seq: m.seq,
      text,
      sentAt: m.sentAt,
      receivedAt: ctx.wall(now),
      ...(partial.ref ? { ref: partial.ref } : {}),
    };
    if (this.#deferInOrder(held, partial.base, from, m.count)) return undefined;
    try {
      this.#accept(held, partial.base, now);
    } catch (e) {
      // Not stored, so not acknowledged: the sender will try again.
      storeError(ctx, e);
      return undefined;
    }
    ctx.counters.messagesReceived++;
    this.#ack(from, m.id, m.messageId, m.count, empty, true);
    return undefined;
  }

  /**
   * The common case, deferred (when deferring): the next message of a sender
   * whose order is known, with nothing held for a gap. Anything else stores
   * what waited first, then goes the whole way ({@link #accept}).
   */
  #deferInOrder(m: HeldMessage, base: number, from: Endpoint, count: number): boolean {
    if (!this.#defer) return false;
    const s = this.#in.get(m.peer);
    const expected = s?.expected;
    if (!s || expected === undefined || m.seq !== expected || base > expected || s.held.size > 0) return false;
    let d = this.#deferred.get(m.peer);
    if (!d) this.#deferred.set(m.peer, d = { from: expected, next: expected, messages: [], acks: [] });
    d.messages.push({ ...m, gapBefore: 0, late: false, wasHeld: false });
    d.acks.push({ to: from, messageId: m.id, count });
    d.next = expected + 1;
    this.#deferredIds.add(m.id);
    s.expected = expected + 1;
    s.gapDeadline = undefined;
    return true;
  }

  /** Stores a complete incoming message: into the inbox if it is next, else held. */
  #accept(m: HeldMessage, base: number, now: number): void {
    // What waited goes first: the order of the inbox and the sequence numbers stored are the senders'.
    this.flush(now);
    const s = this.#peerIn(m.peer);
    if (s.expected === undefined) {
      const stored = this.#ctx.store.expectedSeq(m.peer);
      // First contact: start at the sender's base, without a gap marker for
      // what was delivered before this node's history began.
      s.expected = stored === 1 ? base : stored;
    }
    const toRelease: Release[] = [];
    let expected = s.expected;
    // Everything below the sender's base was acknowledged: what we hold below
    // it can be shown; what we do not hold will never come.
    if (base > expected) {
      for (const seq of [...s.held.keys()].sort((a, b) => a - b)) {
        if (seq >= base) break;
        const h = s.held.get(seq)!;
        toRelease.push({ ...h, gapBefore: seq - expected, late: false });
        if (seq > expected) this.#ctx.counters.gapsSkipped += seq - expected;
        expected = seq + 1;
        s.held.delete(seq);
      }
      if (base > expected) this.#ctx.counters.gapsSkipped += base - expected;
      expected = Math.max(expected, base);
    }
    if (m.seq < expected) {
      toRelease.push({ ...m, gapBefore: 0, late: true, wasHeld: false });
    } else if (m.seq === expected) {
      toRelease.push({ ...m, gapBefore: 0, late: false, wasHeld: false });
      expected++;
      while (s.held.has(expected)) {
        toRelease.push({ ...s.held.get(expected)!, gapBefore: 0, late: false });
        s.held.delete(expected);
        expected++;
      }
    } else {
      if (toRelease.length > 0) this.#release(m.peer, toRelease, expected, now);
      this.#ctx.store.hold(m);
      s.expected = expected;
      s.held.set(m.seq, m);
      s.gapDeadline ??= now + GAP_WAIT_MS;
      return;
    }
    this.#release(m.peer, toRelease, expected, now);
    s.expected = expected;
    if (s.held.size === 0) s.gapDeadline = undefined;
    else s.gapDeadline = now + GAP_WAIT_MS;
  }

  #release(
    peer: string,
    ms: Release[],
    next: number,
    now: number,
  ) {
    for (const m of ms) {
      const line = m.text.includes(GROUP_MARK) ? parseGroupLine(m.text) : undefined;
      m.group = line?.group.id;
      if (line?.message) m.groupMessage = line.message;
    }
    const thread: ThreadChanges = { updated: [], refused: 0 };
    const wall = this.#ctx.wall(now);
    const stored = this.#ctx.store.release(peer, ms, next, wall, this.#ctx.encryptedWith(peer), thread);
    // An edit or a deletion is not a message to show: the message it changed is updated (one that came
    // after its edit is shown edited).
    const updated = new Map(thread.updated.map((m) => [m.id, m]));
    for (const message of stored) {
      if (message.ref?.kind === "edit" || message.ref?.kind === "delete") continue;
      this.#ctx.events.push({ type: "message", message: updated.get(message.id) ?? message });
      updated.delete(message.id);
    }
    for (const message of updated.values()) this.#ctx.events.push({ type: "message-updated", message });
    this.#ctx.counters.amendsRefused += thread.refused;
  }

  /** The gap wait is over: show what is held, in order, marking what is missing. */
  #skipGap(peer: string, s: PeerIn, now: number): void {
    s.gapDeadline = undefined;
    let expected = s.expected ?? 1;
    const toRelease: Release[] = [];
    for (const seq of [...s.held.keys()].sort((a, b) => a - b)) {
      const h = s.held.get(seq)!;
      toRelease.push({ ...h, gapBefore: seq - expected, late: false });
      this.#ctx.counters.gapsSkipped += seq - expected;
      expected = seq + 1;
    }
    try {
      this.#release(peer, toRelease, expected, now);
      s.held.clear();
      s.expected = expected;
    } catch (e) {
      storeError(this.#ctx, e);
      s.gapDeadline = now + GAP_WAIT_MS;
    }
  }
}
