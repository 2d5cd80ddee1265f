/**
 * What the parts of reliable messaging share (sending in
 * `messaging_send.ts`, receiving in `messaging_receive.ts`, read receipts in
 * `messaging_receipts.ts`): the events and counters they report, and one
 * context object with this node's identity, the store, the clock mapping and
 * the queues of datagrams and events that {@link Messaging} drains.
 *
 * @module
 */
import type { Transmit } from "./transmit.ts";
import { type Store, type StoredMessage, StoreError } from "../storage/store.ts";

/** What messaging reports to the driver. */
export type MessagingEvent =
  | { type: "queued"; message: StoredMessage }
  | { type: "sent"; message: StoredMessage }
  | { type: "delivered"; message: StoredMessage; rttMs: number }
  | { type: "failed"; message: StoredMessage; error: string }
  | { type: "message"; message: StoredMessage }
  /** A message edited or deleted (by its sender: here, or the peer that sent it). */
  | { type: "message-updated"; message: StoredMessage }
  /** The peer read it (its read receipt came). */
  | { type: "read"; message: StoredMessage }
  | { type: "store-error"; error: string };

/** Counters kept by messaging. */
export interface MessagingCounters {
  messagesSent: number;
  messagesDelivered: number;
  messagesReceived: number;
  duplicates: number;
  fragmentsSent: number;
  fragmentsRetransmitted: number;
  fragmentsReceived: number;
  acksSent: number;
  acksReceived: number;
  gapsSkipped: number;
  storeErrors: number;
  reassemblyDropped: number;
  /** Edits and deletions refused: they named a message their sender did not send. */
  amendsRefused: number;
  /** Messages (edits too) that held NUL characters, each replaced by U+FFFD before it was stored. */
  nulsReplaced: number;
}

/**
 * The state every part of messaging reads and writes. `transmits` and
 * `events` are replaced when drained: push to them through this object, do
 * not keep the arrays.
 */
export interface MessagingContext {
  readonly self: { id: string; incarnation: number };
  readonly store: Store;
  /** Wall-clock time (ms since the epoch) for a monotonic time. */
  readonly wall: (now: number) => number;
  /** Whether messages with `peer` go end-to-end encrypted (undefined: not known), for the stored mark. */
  readonly encryptedWith: (peer: string) => boolean | undefined;
  readonly counters: MessagingCounters;
  transmits: Transmit[];
  events: MessagingEvent[];
}

/** Counts a failed store call and reports it as an event. */
export function storeError(ctx: MessagingContext, e: unknown): void {
  ctx.counters.storeErrors++;
  const error = e instanceof StoreError ? e.message : `Storage failed: ${(e as Error)?.message ?? e}`;
  ctx.events.push({ type: "store-error", error });
}

/** Bit `i` of a fragment bitmap. */
export const bit = (map: Uint8Array, i: number) => (map[i >> 3]! >> (i & 7)) & 1;
/** Sets bit `i` of a fragment bitmap. */
export const setBit = (map: Uint8Array, i: number) => {
  map[i >> 3]! |= 1 << (i & 7);
};
