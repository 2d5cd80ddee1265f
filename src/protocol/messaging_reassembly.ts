/**
 * Reassembly of incoming messages from their fragments, bounded in count
 * ({@link MAX_PARTIAL_MESSAGES}), bytes ({@link MAX_PARTIAL_BYTES}) and time
 * ({@link REASSEMBLY_TTL_MS}). What a complete message then is (a duplicate,
 * next in order, held) is for `messaging_receive.ts`.
 *
 * @module
 */
import { bit, type MessagingCounters, setBit } from "./messaging_shared.ts";
import type { Msg, MsgRef } from "../wire/mod.ts";

/** A partly received message is forgotten when no fragment of it came for this long. */
export const REASSEMBLY_TTL_MS = 60_000;
/** Most partly received messages kept at once, over all senders. */
export const MAX_PARTIAL_MESSAGES = 512;
/** Most bytes of partly received messages kept at once. */
export const MAX_PARTIAL_BYTES = 16 * 1024 * 1024;

/** A message of which some fragments came. */
export interface Partial {
  peer: string;
  messageId: string;
  seq: number;
  base: number;
  sentAt: number;
  length: number;
  count: number;
  frags: (Uint8Array | undefined)[];
  /** Bitmap of the fragments that came. */
  got: Uint8Array;
  have: number;
  lastAt: number;
  /** The reference every fragment of it carries, if any. */
  ref?: MsgRef;
}

/** The messages partly received, from every sender. */
export class Reassembly {
  #counters: MessagingCounters;
  #partials = new Map<string, Partial>();
  #partialBytes = 0;

  constructor(counters: MessagingCounters) {
    this.#counters = counters;
  }

  /** The message `messageId` partly received, if any. */
  get(messageId: string): Partial | undefined {
    return this.#partials.get(messageId);
  }

  /** Starts reassembling the message `m` is a fragment of; undefined (counted) when the bounds are reached. */
  start(m: Msg, now: number): Partial | undefined {
    if (this.#partials.size >= MAX_PARTIAL_MESSAGES || this.#partialBytes + m.length > MAX_PARTIAL_BYTES) {
      this.#counters.reassemblyDropped++;
      return undefined;
    }
    const partial: Partial = {
      peer: m.id,
      messageId: m.messageId,
      seq: m.seq,
      base: m.base,
      sentAt: m.sentAt,
      length: m.length,
      count: m.count,
      frags: new Array(m.count),
      got: new Uint8Array(Math.ceil(m.count / 8)),
      have: 0,
      lastAt: now,
      ...(m.ref ? { ref: m.ref } : {}),
    };
    this.#partials.set(m.messageId, partial);
    this.#partialBytes += m.length;
    return partial;
  }

  /**
   * Adds fragment `m` to `partial`. Returns false when it is not one of its
   * fragments (same id, another sender or shape).
   */
  add(partial: Partial, m: Msg, now: number): boolean {
    if (
      partial.peer !== m.id || partial.count !== m.count || partial.length !== m.length || partial.seq !== m.seq ||
      partial.ref?.kind !== m.ref?.kind || partial.ref?.id !== m.ref?.id
    ) {
      return false;
    }
    partial.lastAt = now;
    partial.base = Math.max(partial.base, m.base);
    if (!bit(partial.got, m.index)) {
      partial.frags[m.index] = m.payload;
      setBit(partial.got, m.index);
      partial.have++;
    }
    return true;
  }

  /** The bytes of a complete message, which is forgotten here. */
  finish(partial: Partial): Uint8Array {
    this.#drop(partial.messageId);
    const bytes = new Uint8Array(partial.length);
    let at = 0;
    for (const f of partial.frags) {
      bytes.set(f!, at);
      at += f!.length;
    }
    return bytes;
  }

  /** Forgets the messages no fragment of which came for {@link REASSEMBLY_TTL_MS}. */
  expire(now: number): void {
    for (const [id, partial] of this.#partials) {
      if (partial.lastAt + REASSEMBLY_TTL_MS <= now) this.#drop(id);
    }
  }

  /** When the next partly received message expires (Infinity if none). */
  nextExpiry(): number {
    let next = Infinity;
    for (const partial of this.#partials.values()) {
      if (partial.lastAt + REASSEMBLY_TTL_MS < next) next = partial.lastAt + REASSEMBLY_TTL_MS;
    }
    return next;
  }

  #drop(id: string): void {
    const p = this.#partials.get(id);
    if (!p) return;
    this.#partials.delete(id);
    this.#partialBytes -= p.length;
  }
}
