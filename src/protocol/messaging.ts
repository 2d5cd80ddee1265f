/**
 * Reliable unicast messaging as a sans-I/O state machine: outbox, fragments,
 * acknowledgements, retransmission with backoff, de-duplication and
 * per-sender ordering. It never reads a clock or touches a socket; the driver
 * feeds it packets and the time and sends what {@link Messaging.drainTransmits}
 * returns. Persistence goes through the synchronous {@link Store}: a message
 * is acknowledged only after the transaction that stores it has committed,
 * so an acknowledged message survives a crash of the receiver.
 *
 * {@link Messaging} is the one face the driver sees; its parts live beside it:
 * - `messaging_send.ts`: the outbox, the window, retransmission with backoff,
 *   acks received (sender);
 * - `messaging_receive.ts`: acks sent, de-duplication, per-sender order,
 *   messages held for a gap and released (receiver);
 * - `messaging_reassembly.ts`: fragments into messages, bounded;
 * - `messaging_receipts.ts`: read receipts both ways;
 * - `messaging_shared.ts`: the events, counters and context they share.
 *
 * So loss never causes a false gap: a sender retries for as long as the peer
 * is in its roster, and a receiver waits for a gap while the sender shows it
 * still holds the missing message.
 *
 * @module
 */
import type { Endpoint, Transmit } from "./transmit.ts";
import { type GroupCopy, type OutgoingItem, Sender, type SenderOptions } from "./messaging_send.ts";
import { Receiver } from "./messaging_receive.ts";
import { ReadReceipts } from "./messaging_receipts.ts";
import type { MessagingContext, MessagingCounters, MessagingEvent } from "./messaging_shared.ts";
import type { Store, StoredMessage, StoreError } from "../storage/store.ts";
import type { Ack, Msg, MsgRef, Read } from "../wire/mod.ts";

export {
  type GroupCopy,
  OUTBOX_REFILL,
  OUTBOX_WINDOW,
  type OutgoingItem,
  retransmitTimeout,
  RTO_INITIAL_MS,
  RTO_MAX_MS,
  timeOrderedId,
  WINDOW_FRAGMENTS,
} from "./messaging_send.ts";
export { GAP_WAIT_MS } from "./messaging_receive.ts";
export { MAX_PARTIAL_BYTES, MAX_PARTIAL_MESSAGES, REASSEMBLY_TTL_MS } from "./messaging_reassembly.ts";
export { RECEIPT_RETRY_MS, RECEIPT_TRIES } from "./messaging_receipts.ts";
export type { MessagingCounters, MessagingEvent } from "./messaging_shared.ts";

export interface MessagingOptions extends SenderOptions {
  self: { id: string; incarnation: number };
  store: Store;
  /** Wall-clock time (ms since the epoch) for a monotonic time. */
  wall: (now: number) => number;
  /** Whether messages with `peer` go end-to-end encrypted (the lanchat link knows); default: not known. */
  encryptedWith?: (peer: string) => boolean | undefined;
  /**
   * In-order messages received wait for {@link Messaging.flush} to be stored
   * together (one transaction for all that came since the last flush, instead
   * of one each), and are acknowledged then; default: each is stored as it
   * completes. The driver flushes before each commit.
   */
  deferReleases?: boolean;
}

/** The messaging state machine. */
export class Messaging {
  readonly self: { id: string; incarnation: number };
  readonly counters: MessagingCounters = {
    messagesSent: 0,
    messagesDelivered: 0,
    messagesReceived: 0,
    duplicates: 0,
    fragmentsSent: 0,
    fragmentsRetransmitted: 0,
    fragmentsReceived: 0,
    acksSent: 0,
    acksReceived: 0,
    gapsSkipped: 0,
    storeErrors: 0,
    reassemblyDropped: 0,
    amendsRefused: 0,
    nulsReplaced: 0,
  };
  #ctx: MessagingContext;
  #sender: Sender;
  #receiver: Receiver;
  #receipts: ReadReceipts;

  constructor(options: MessagingOptions) {
    this.self = options.self;
    this.#ctx = {
      self: options.self,
      store: options.store,
      wall: options.wall,
      encryptedWith: options.encryptedWith ?? (() => undefined),
      counters: this.counters,
      transmits: [],
      events: [],
    };
    // Each part resumes what a previous run left: the outbox (a window of it
    // per peer; the rest stays on disk), and messages held for order.
    this.#sender = new Sender(this.#ctx, options);
    this.#receiver = new Receiver(this.#ctx, options.deferReleases ?? false);
    this.#receipts = new ReadReceipts(this.#ctx, (peer) => this.#sender.endpointOf(peer));
  }

  /**
   * Messages waiting to be delivered to `peer` (or to anyone), in sequence
   * order per peer: read from the store, as most of a long outbox is only
   * there (for tests and tools; {@link pendingCount} is what `/status` uses).
   */
  pending(peer?: string): StoredMessage[] {
    return this.#sender.pending(peer);
  }

  /** How many messages wait to be delivered, to every peer. */
  pendingCount(): number {
    return this.#sender.pendingCount();
  }

  /** How many of them are in memory (the windows read from disk). */
  inMemory(): number {
    return this.#sender.inMemory();
  }

  /** Entries in the peers' queues (acknowledged ones not yet cut off included) and the encoded bytes they hold. */
  retained(): { entries: number; bytes: number } {
    return this.#sender.retained();
  }

  /**
   * Stores a message for `to` and sends it now if the peer is reachable;
   * with `ref`, one that answers, edits or deletes another.
   *
   * @throws {RangeError} when the text is longer than 64 KiB or the peer is this node.
   * @throws {StoreError} when it cannot be stored: then nothing is sent.
   */
  send(to: string, text: string, now: number, copy?: GroupCopy, ref?: MsgRef): StoredMessage {
    return this.#sender.send(to, text, now, copy, ref);
  }

  /**
   * Stores several messages (a posted batch) in one transaction and sends
   * them: each item's stored message, or the error that kept it from being
   * stored (a RangeError for that item alone; a StoreError for all of them,
   * as none was stored then).
   */
  sendMany(items: readonly OutgoingItem[], now: number): (StoredMessage | RangeError | StoreError)[] {
    return this.#sender.sendMany(items, now);
  }

  /** The peer is reachable at `endpoint` (joined, restarted, or heard again): send its queue at once. */
  peerUp(peer: string, endpoint: Endpoint, now: number): void {
    if (!this.#sender.reach(peer, endpoint)) return;
    // A receipt that waited for the peer goes now, then its messages.
    this.#receipts.peerBack(peer, now);
    this.#sender.resume(peer, now);
  }

  /** The peer left the roster: its messages wait until it is back. */
  peerDown(peer: string): void {
    this.#sender.peerDown(peer);
  }

  /** The peer restarted: whatever it had half received is gone, so everything unacknowledged goes again. */
  peerRestarted(peer: string, endpoint: Endpoint, now: number): void {
    this.#sender.restarted(peer);
    this.peerUp(peer, endpoint, now);
  }

  /**
   * Tells `peer` that messages up to `messageId` (one of its, received
   * here) were read, in that message's conversation (`group`'s, or the
   * direct one): a small packet, sent again (1 s, doubling, 8 times) until
   * the peer answers, and again when it comes back. The packet names only
   * the message: the peer knows which conversation it is in.
   */
  markRead(peer: string, messageId: string, now: number, group?: string): void {
    this.#receipts.markRead(peer, messageId, now, group);
  }

  /**
   * Handles a message fragment, an ack or a read receipt from `from`.
   * Returns a drop reason when the packet is not for this node.
   */
  handlePacket(packet: Msg | Ack | Read, from: Endpoint, now: number): "not-for-me" | "overload" | undefined {
    if (packet.kind === "read") return this.#receipts.onRead(packet, from, now);
    if (packet.kind === "ack") {
      this.#sender.onAck(packet, now);
      return undefined;
    }
    return this.#receiver.onMsg(packet, from, now);
  }

  /** Whether received messages wait for {@link flush} (with `deferReleases`). */
  get deferred(): boolean {
    return this.#receiver.deferred;
  }

  /** Stores the received messages that wait (with `deferReleases`) and acknowledges them. */
  flush(now: number): void {
    this.#receiver.flush(now);
  }

  /** Retransmissions, gap waits and reassembly expiry due at `now`. */
  handleTimeout(now: number): void {
    this.#receipts.handleTimeout(now);
    this.#sender.handleTimeout(now);
    this.#receiver.handleTimeout(now);
  }

  /** The next time {@link handleTimeout} has something to do. */
  pollTimeout(): number | undefined {
    const next = Math.min(this.#receipts.nextTimeout(), this.#sender.nextTimeout(), this.#receiver.nextTimeout());
    return next === Infinity ? undefined : next;
  }

  drainTransmits(): Transmit[] {
    const out = this.#ctx.transmits;
    this.#ctx.transmits = [];
    return out;
  }

  drainEvents(): MessagingEvent[] {
    const out = this.#ctx.events;
    this.#ctx.events = [];
    return out;
  }
}
