/**
 * Reliable unicast messaging as a sans-I/O state machine: outbox, fragments,
 * acknowledgements, retransmission with backoff, de-duplication and
 * per-sender ordering. It never reads a clock or touches a socket; the driver
 * feeds it packets and the time and sends what {@link Messaging.drainTransmits}
 * returns. Persistence goes through the synchronous {@link Store}: a message
 * is acknowledged only after the transaction that stores it has committed,
 * so an acknowledged message survives a crash of the receiver.
 *
 * Sender: every message is stored (outbox) before anything is sent. While its
 * peer is in the roster, messages are sent in sequence order, at most
 * {@link WINDOW_FRAGMENTS} unacknowledged fragments at a time; a message not
 * fully acknowledged is re-sent (only its missing fragments) after a timeout
 * that starts at {@link RTO_INITIAL_MS}, doubles on every retry up to
 * {@link RTO_MAX_MS}, and starts over when an ack shows progress. When the peer
 * leaves, its messages wait; when it is seen again they are sent at once.
 *
 * Receiver: fragments are reassembled (bounded in count, bytes and time); a
 * complete message whose id is already stored is acknowledged and dropped
 * (a duplicate). Messages from one sender enter the inbox in sequence order;
 * one that arrives ahead of a gap is stored ("held") and acknowledged, and
 * shown when the gap fills, when the sender's `base` shows the gap will never
 * fill, or when the sender has not shown for {@link GAP_WAIT_MS} that it still
 * holds the missing message (every fragment carries its `base`), with a
 * marker saying how many are missing. So loss never causes a false gap: a
 * sender retries for as long as the peer is in its roster.
 *
 * @module
 */
import type { Endpoint, Transmit } from "./discovery.ts";
import { groupIdOf } from "./groups.ts";

/** What makes a message one member's copy of a message written to a group. */
export interface GroupCopy {
  group: string;
  /** The id of the message written to the group. */
  copyOf: string;
}
import { type HeldMessage, type Release, type Store, type StoredMessage, StoreError } from "../storage/store.ts";
import {
  type Ack,
  encodePacket,
  fragmentCount,
  fragmentSpan,
  MAX_FRAGMENTS,
  MAX_TEXT_BYTES,
  type Msg,
  type Read,
} from "../wire/mod.ts";

/** Finished entries at the front of a peer's queue that are cut off at once. */
const QUEUE_CUT = 64;
const NO_BYTES = new Uint8Array(0);
/**
 * The outbox lives on disk: of the messages waiting for a peer, at most
 * this many are in memory (read in order, as earlier ones are
 * acknowledged: refilled when fewer than {@link OUTBOX_REFILL} are left), so
 * 100,000 messages queued for an absent peer cost memory for 256.
 */
/** Tries and first retry delay of a read receipt (doubling). */
export const RECEIPT_TRIES = 8;
export const RECEIPT_RETRY_MS = 1000;
export const OUTBOX_WINDOW = 256;
export const OUTBOX_REFILL = 128;

/** First retransmission timeout. */
export const RTO_INITIAL_MS = 200;
/** Retransmission timeouts double up to this. */
export const RTO_MAX_MS = 3000;
/** Most unacknowledged fragments in flight to one peer. */
export const WINDOW_FRAGMENTS = 128;
/**
 * How long a gap in a sender's sequence is waited for, after the sender last
 * showed it still holds the missing message, before later messages are shown.
 */
export const GAP_WAIT_MS = 10_000;
/** A partly received message is forgotten when no fragment of it came for this long. */
export const REASSEMBLY_TTL_MS = 60_000;
/** Most partly received messages kept at once, over all senders. */
export const MAX_PARTIAL_MESSAGES = 512;
/** Most bytes of partly received messages kept at once. */
export const MAX_PARTIAL_BYTES = 16 * 1024 * 1024;

/**
 * A message id: 48 bits of the send time in ms, then 80 random bits, as 32
 * hex characters (the layout of a UUIDv7, without its version bits). Ids
 * made close in time sort together, so a burst of messages lands on a few
 * pages of the stores' id index instead of one random page each (which made
 * every group commit write ~64 scattered pages); 80 random bits per
 * millisecond keep them unique.
 */
export function timeOrderedId(wallMs: number): string {
  const random = crypto.getRandomValues(new Uint8Array(10));
  let hex = Math.max(0, Math.floor(wallMs)).toString(16).padStart(12, "0").slice(-12);
  for (const b of random) hex += (b < 16 ? "0" : "") + b.toString(16);
  return hex;
}

/** Retransmission timeout after `retries` retries without progress. */
export function retransmitTimeout(retries: number): number {
  return Math.min(RTO_MAX_MS, RTO_INITIAL_MS * 2 ** Math.min(retries, 16));
}

/** What messaging reports to the driver. */
export type MessagingEvent =
  | { type: "queued"; message: StoredMessage }
  | { type: "sent"; message: StoredMessage }
  | { type: "delivered"; message: StoredMessage; rttMs: number }
  | { type: "failed"; message: StoredMessage; error: string }
  | { type: "message"; message: StoredMessage }
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
}

export interface MessagingOptions {
  self: { id: string; incarnation: number };
  store: Store;
  /** Wall-clock time (ms since the epoch) for a monotonic time. */
  wall: (now: number) => number;
  /** A fresh message id (32 hex characters) for a message sent at `wallMs`; default {@link timeOrderedId}. */
  newId?: (wallMs: number) => string;
  /** Largest fragment payload; tests make it small to exercise fragmentation. */
  fragmentPayload?: number;
  /** Outbox messages for these peers belong to another protocol (IP Messenger): not resumed here. */
  foreignPeer?: (peer: string) => boolean;
}

interface Outgoing {
  message: StoredMessage;
  bytes: Uint8Array;
  count: number;
  /** Bitmap of fragments the peer has acknowledged. */
  acked: Uint8Array;
  inFlight: boolean;
  retries: number;
  nextAt: number | undefined;
  /** Monotonic time of the first transmission, for the round-trip time. */
  firstSentAt: number | undefined;
  transmissions: number;
  /** Whether any ack for it came back (so `acked` says what is missing). */
  ackSeen: boolean;
  /** The transmission round a bitmap ack last triggered an immediate re-send in. */
  fastRound: number;
  /** Acknowledged or refused: no longer in the outbox. */
  finished: boolean;
}

/**
 * A peer's outbox in sequence order. Acknowledged messages are marked
 * `finished` and skipped; `head` moves past those at the front, and the
 * array is cut only now and then, so an ack costs O(1) however long the
 * queue (splicing each one out was 11 % of a sender's time with 20,000
 * queued).
 */
interface PeerOut {
  queue: Outgoing[];
  head: number;
  endpoint: Endpoint | undefined;
  /** Messages to this peer not yet acknowledged: in the queue, and on disk beyond it. */
  pending: number;
  /** Unfinished messages in the queue (the window read from disk). */
  loaded: number;
  /** The highest sequence number read into the queue. */
  loadedTo: number;
  /** Whether messages may wait on disk beyond `loadedTo`. */
  more: boolean;
}

interface Partial {
  peer: string;
  messageId: string;
  seq: number;
  base: number;
  sentAt: number;
  length: number;
  count: number;
  frags: (Uint8Array | undefined)[];
  got: Uint8Array;
  have: number;
  lastAt: number;
}

interface PeerIn {
  /** Next sequence number to show; undefined before the first message from this peer. */
  expected: number | undefined;
  held: Map<number, HeldMessage>;
  gapDeadline: number | undefined;
}

const bit = (map: Uint8Array, i: number) => (map[i >> 3]! >> (i & 7)) & 1;
const setBit = (map: Uint8Array, i: number) => {
  map[i >> 3]! |= 1 << (i & 7);
};

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
  };
  #store: Store;
  #wall: (now: number) => number;
  #newId: (wallMs: number) => string;
  #fragmentPayload: number;
  #out = new Map<string, PeerOut>();
  #byId = new Map<string, Outgoing>();
  /** Messages sent and not yet fully acknowledged, to peers that are up: the ones with a timer. */
  #inFlight = new Set<Outgoing>();
  #in = new Map<string, PeerIn>();
  #partials = new Map<string, Partial>();
  #partialBytes = 0;
  #transmits: Transmit[] = [];
  #events: MessagingEvent[] = [];
  /** Messages not yet acknowledged, to every peer (O(1) for /status). */
  #pending = 0;
  #foreign: (peer: string) => boolean;
  /** Read receipts to send, by peer: the newest message read, re-sent until the peer answers. */
  #receipts = new Map<string, { messageId: string; nextAt: number; tries: number }>();

  constructor(options: MessagingOptions) {
    this.self = options.self;
    this.#store = options.store;
    this.#wall = options.wall;
    this.#fragmentPayload = options.fragmentPayload ?? 900;
    this.#newId = options.newId ?? timeOrderedId;
    this.#foreign = options.foreignPeer ?? (() => false);
    // Resume what a previous run left: the outbox (a window of it per peer;
    // the rest stays on disk), and messages held for order.
    for (const [peer, n] of this.#store.outboxCounts()) {
      if (this.#foreign(peer)) continue;
      const p = this.#peerOut(peer);
      p.pending = n;
      p.more = true;
      this.#pending += n;
      this.#load(p, peer);
    }
    for (const h of this.#store.heldMessages()) this.#peerIn(h.peer).held.set(h.seq, h);
  }

  /**
   * Messages waiting to be delivered to `peer` (or to anyone), in sequence
   * order per peer: read from the store, as most of a long outbox is only
   * there (for tests and tools; {@link pendingCount} is what `/status` uses).
   */
  pending(peer?: string): StoredMessage[] {
    return this.#store.outbox(peer).filter((m) => !this.#foreign(m.peer));
  }

  /** How many messages wait to be delivered, to every peer. */
  pendingCount(): number {
    return this.#pending;
  }

  /** How many of them are in memory (the windows read from disk). */
  inMemory(): number {
    let n = 0;
    for (const p of this.#out.values()) n += p.loaded;
    return n;
  }

  /** Entries in the peers' queues (acknowledged ones not yet cut off included) and the encoded bytes they hold. */
  retained(): { entries: number; bytes: number } {
    let entries = 0;
    let bytes = 0;
    for (const p of this.#out.values()) {
      entries += p.queue.length;
      for (const o of p.queue) bytes += o.bytes.length;
    }
    return { entries, bytes };
  }

  /** Reads the next messages waiting for `peer` from disk into its queue, up to the window. */
  #load(p: PeerOut, peer: string): void {
    const room = OUTBOX_WINDOW - p.loaded;
    if (!p.more || room <= 0) return;
    const page = this.#store.outboxPage(peer, p.loadedTo, room);
    for (const m of page) this.#enqueue(m);
    if (page.length < room) p.more = false;
  }

  /**
   * Stores a message for `to` and sends it now if the peer is reachable.
   *
   * @throws {RangeError} when the text is longer than 64 KiB or the peer is this node.
   * @throws {StoreError} when it cannot be stored: then nothing is sent.
   */
  send(to: string, text: string, now: number, copy?: GroupCopy): StoredMessage {
    if (to === this.self.id) throw new RangeError("Cannot send a message to this node itself");
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > MAX_TEXT_BYTES) {
      throw new RangeError(`Text is ${bytes.length} bytes; the limit is ${MAX_TEXT_BYTES} bytes (64 KiB)`);
    }
    const p = this.#peerOut(to);
    const reachable = p.endpoint !== undefined;
    const sentAt = this.#wall(now);
    const message = this.#store.insertOutgoing({
      id: this.#newId(sentAt),
      peer: to,
      text,
      sentAt,
      // Sent right below when the peer is reachable: saves a second write.
      status: reachable ? "sent" : "queued",
      ...copy,
    });
    p.pending++;
    this.#pending++;
    // Into memory when the window has room and nothing older waits on disk;
    // else it waits on disk, read when its turn comes.
    if (!p.more && p.loaded < OUTBOX_WINDOW) this.#enqueue(message, bytes);
    else p.more = true;
    if (reachable) this.#fill(to, now);
    else this.#events.push({ type: "queued", message });
    return message;
  }

  /** The peer is reachable at `endpoint` (joined, restarted, or heard again): send its queue at once. */
  peerUp(peer: string, endpoint: Endpoint, now: number): void {
    const p = this.#peerOut(peer);
    const wasDown = p.endpoint === undefined;
    p.endpoint = endpoint;
    if (!wasDown) return;
    // A receipt that waited for the peer goes now.
    const receipt = this.#receipts.get(peer);
    if (receipt) {
      receipt.nextAt = now;
      this.#sendReceipt(peer, now);
    }
    for (const o of p.queue) {
      this.#setInFlight(o, false);
      o.retries = 0;
      o.nextAt = undefined;
    }
    this.#fill(peer, now);
  }

  /** The peer left the roster: its messages wait until it is back. */
  peerDown(peer: string): void {
    const p = this.#out.get(peer);
    if (!p) return;
    p.endpoint = undefined;
    for (const o of p.queue) {
      this.#setInFlight(o, false);
      o.nextAt = undefined;
    }
  }

  /** The peer restarted: whatever it had half received is gone, so everything unacknowledged goes again. */
  peerRestarted(peer: string, endpoint: Endpoint, now: number): void {
    this.peerDown(peer);
    for (const o of this.#out.get(peer)?.queue ?? []) {
      o.acked.fill(0);
      o.ackSeen = false;
    }
    this.peerUp(peer, endpoint, now);
  }

  /**
   * Handles a message fragment or an ack from `from`. Returns a drop reason
   * when the packet is not for this node.
   */
  /**
   * Tells `peer` that messages up to `messageId` (one of its, received
   * here) were read: a small packet, sent again (1 s, doubling, 8 times)
   * until the peer answers, and again when it comes back.
   */
  markRead(peer: string, messageId: string, now: number): void {
    this.#receipts.set(peer, { messageId, nextAt: now, tries: 0 });
    this.#sendReceipt(peer, now);
  }

  #sendReceipt(peer: string, now: number): void {
    const r = this.#receipts.get(peer);
    const to = this.#out.get(peer)?.endpoint;
    if (!r || now < r.nextAt) return;
    if (r.tries >= RECEIPT_TRIES) {
      this.#receipts.delete(peer);
      return;
    }
    r.tries++;
    r.nextAt = now + RECEIPT_RETRY_MS * 2 ** (r.tries - 1);
    if (!to) return;
    const read: Read = { kind: "read", ...this.#selfIds(), to: peer, messageId: r.messageId, ack: false };
    this.#transmits.push({ via: "unicast", to, bytes: encodePacket(read), kind: "read" });
  }

  #selfIds(): { id: string; incarnation: number } {
    return { id: this.self.id, incarnation: this.self.incarnation };
  }

  /** A read receipt from the reader, or the answer to ours. */
  #onRead(packet: Read, from: Endpoint, now: number): "not-for-me" | undefined {
    if (packet.to !== this.self.id) return "not-for-me";
    if (packet.ack) {
      if (this.#receipts.get(packet.id)?.messageId === packet.messageId) this.#receipts.delete(packet.id);
      return undefined;
    }
    try {
      for (const message of this.#store.markReadOut(packet.id, packet.messageId, this.#wall(now))) {
        this.#events.push({ type: "read", message });
      }
    } catch (e) {
      // Not stored: not answered, so the reader sends it again.
      this.counters.storeErrors++;
      this.#events.push({ type: "store-error", error: (e as Error).message });
      return undefined;
    }
    const ack: Read = { kind: "read", ...this.#selfIds(), to: packet.id, messageId: packet.messageId, ack: true };
    this.#transmits.push({ via: "unicast", to: from, bytes: encodePacket(ack), kind: "read" });
    return undefined;
  }

  handlePacket(packet: Msg | Ack | Read, from: Endpoint, now: number): "not-for-me" | "overload" | undefined {
    if (packet.kind === "read") return this.#onRead(packet, from, now);
    if (packet.kind === "ack") {
      this.#onAck(packet, now);
      return undefined;
    }
    return this.#onMsg(packet, from, now);
  }

  /** Retransmissions, gap waits and reassembly expiry due at `now`. */
  handleTimeout(now: number): void {
    for (const peer of [...this.#receipts.keys()]) this.#sendReceipt(peer, now);
    const due = new Set<string>();
    for (const o of this.#inFlight) {
      const endpoint = this.#out.get(o.message.peer)?.endpoint;
      if (endpoint && o.nextAt !== undefined && o.nextAt <= now) {
        o.retries++;
        this.#transmit(o, endpoint, now);
        due.add(o.message.peer);
      }
    }
    for (const peer of due) this.#fill(peer, now);
    for (const [peer, state] of this.#in) {
      if (state.gapDeadline !== undefined && state.gapDeadline <= now) this.#skipGap(peer, state, now);
    }
    for (const [id, partial] of this.#partials) {
      if (partial.lastAt + REASSEMBLY_TTL_MS <= now) this.#dropPartial(id);
    }
  }

  /** The next time {@link handleTimeout} has something to do. */
  pollTimeout(): number | undefined {
    let next = Infinity;
    for (const r of this.#receipts.values()) if (r.nextAt < next) next = r.nextAt;
    for (const o of this.#inFlight) if (o.nextAt !== undefined && o.nextAt < next) next = o.nextAt;
    for (const s of this.#in.values()) if (s.gapDeadline !== undefined && s.gapDeadline < next) next = s.gapDeadline;
    for (const partial of this.#partials.values()) {
      if (partial.lastAt + REASSEMBLY_TTL_MS < next) next = partial.lastAt + REASSEMBLY_TTL_MS;
    }
    return next === Infinity ? undefined : next;
  }

  drainTransmits(): Transmit[] {
    const out = this.#transmits;
    this.#transmits = [];
    return out;
  }

  drainEvents(): MessagingEvent[] {
    const out = this.#events;
    this.#events = [];
    return out;
  }

  // ---- sender ----

  #peerOut(peer: string): PeerOut {
    let p = this.#out.get(peer);
    if (!p) {
      p = { queue: [], head: 0, endpoint: undefined, pending: 0, loaded: 0, loadedTo: 0, more: false };
      this.#out.set(peer, p);
    }
    return p;
  }

  #enqueue(message: StoredMessage, bytes = new TextEncoder().encode(message.text)): void {
    // At most MAX_FRAGMENTS: spans then stay ≤ 512 bytes for a 64 KiB text.
    const count = Math.min(MAX_FRAGMENTS, fragmentCount(bytes.length, this.#fragmentPayload));
    const o: Outgoing = {
      message,
      bytes,
      count,
      acked: new Uint8Array(Math.ceil(count / 8)),
      inFlight: false,
      retries: 0,
      nextAt: undefined,
      firstSentAt: undefined,
      transmissions: 0,
      ackSeen: false,
      fastRound: -1,
      finished: false,
    };
    const p = this.#peerOut(message.peer);
    const q = p.queue;
    // In sequence order; a new message is almost always the last.
    let at = q.length;
    while (at > p.head && q[at - 1]!.message.seq > message.seq) at--;
    q.splice(at, 0, o);
    this.#byId.set(message.id, o);
    p.loaded++;
    if (message.seq > p.loadedTo) p.loadedTo = message.seq;
  }

  #missing(o: Outgoing): number {
    let n = 0;
    for (let i = 0; i < o.count; i++) if (!bit(o.acked, i)) n++;
    return n;
  }

  /**
   * Starts sending queued messages to `peer` while the window has room. The
   * messages in flight are the front of the queue (they start in order), so
   * the scan stops at the first one the window cannot take: a long queue
   * costs nothing per ack.
   */
  #fill(peer: string, now: number): void {
    const p = this.#out.get(peer);
    if (!p?.endpoint) return;
    let inFlight = 0;
    for (let i = p.head; i < p.queue.length; i++) {
      const o = p.queue[i]!;
      if (o.finished) continue;
      const need = this.#missing(o);
      if (o.inFlight) {
        inFlight += need;
        continue;
      }
      if (inFlight > 0 && inFlight + need > WINDOW_FRAGMENTS) break;
      inFlight += need;
      this.#setInFlight(o, true);
      o.retries = 0;
      this.#transmit(o, p.endpoint, now);
    }
  }

  #setInFlight(o: Outgoing, on: boolean): void {
    o.inFlight = on;
    if (on) this.#inFlight.add(o);
    else this.#inFlight.delete(o);
  }

  /**
   * Sends every fragment of `o` not yet acknowledged, and arms its
   * retransmission timer. A retry of a message nothing came back for sends
   * only its last fragment: the receiver answers a retried fragment with a
   * bitmap of what it has, so only what is missing goes next (it costs one
   * round trip instead of the whole message, when only the last was lost).
   */
  #transmit(o: Outgoing, to: Endpoint, now: number): void {
    const p = this.#out.get(o.message.peer)!;
    const base = p.queue[p.head]?.message.seq ?? o.message.seq;
    let last = o.count - 1;
    while (last > 0 && bit(o.acked, last)) last--;
    const probeOnly = o.transmissions > 0 && !o.ackSeen && o.count > 1;
    for (let i = probeOnly ? last : 0; i < o.count; i++) {
      if (bit(o.acked, i)) continue;
      // The round's last fragment asks the receiver for a bitmap.
      const [start, end] = fragmentSpan(o.bytes.length, o.count, i);
      const msg: Msg = {
        kind: "msg",
        id: this.self.id,
        incarnation: this.self.incarnation,
        to: o.message.peer,
        messageId: o.message.id,
        seq: o.message.seq,
        base: Math.min(base, o.message.seq),
        sentAt: o.message.sentAt,
        length: o.bytes.length,
        count: o.count,
        index: i,
        retry: o.transmissions,
        end: i === last,
        payload: o.bytes.subarray(start, end),
      };
      this.#transmits.push({ via: "unicast", to, bytes: encodePacket(msg), kind: "msg" });
      this.counters.fragmentsSent++;
      if (o.transmissions > 0) this.counters.fragmentsRetransmitted++;
    }
    if (o.transmissions === 0) {
      o.firstSentAt = now;
      this.counters.messagesSent++;
      try {
        // A message stored while its peer was up was stored as sent already.
        if (o.message.status === "queued") this.#store.markSent(o.message.id);
        o.message.status = "sent";
        this.#events.push({ type: "sent", message: o.message });
      } catch (e) {
        this.#storeError(e);
      }
    }
    o.transmissions++;
    o.nextAt = now + retransmitTimeout(o.retries);
  }

  #onAck(ack: Ack, now: number): void {
    this.counters.acksReceived++;
    const o = this.#byId.get(ack.messageId);
    // An ack for a message we no longer wait for (a late duplicate), or from
    // a node that is not its recipient: nothing to do.
    if (!o || o.message.peer !== ack.id || ack.count !== o.count) return;
    if (ack.rejected) {
      this.#finish(o);
      try {
        this.#store.markFailed(o.message.id, `refused by the peer: ${ack.rejected}`);
      } catch (e) {
        this.#storeError(e);
      }
      o.message.status = "failed";
      this.#events.push({ type: "failed", message: o.message, error: ack.rejected });
      this.#fill(o.message.peer, now);
      return;
    }
    if (ack.done) {
      const rttMs = now - (o.firstSentAt ?? now);
      this.#finish(o);
      const at = this.#wall(now);
      try {
        this.#store.markDelivered(o.message.id, at, rttMs);
      } catch (e) {
        this.#storeError(e);
      }
      Object.assign(o.message, { status: "delivered", deliveredAt: at, rttMs });
      this.counters.messagesDelivered++;
      this.#events.push({ type: "delivered", message: o.message, rttMs });
      this.#fill(o.message.peer, now);
      return;
    }
    o.ackSeen = true;
    let progress = false;
    for (let i = 0; i < o.count && !progress; i++) progress = bit(ack.received, i) === 1 && !bit(o.acked, i);
    // The bitmap is what the receiver holds now, so it replaces ours: a
    // receiver that lost half a message (its store failed a commit and it
    // started over from disk) would otherwise never be sent the fragments we
    // had marked as received.
    o.acked.set(ack.received);
    if (progress && o.inFlight) {
      // Progress: the path works, start the backoff over.
      o.retries = 0;
      o.nextAt = now + RTO_INITIAL_MS;
    }
    // A bitmap answers the end of a round: whatever it lacks was lost (a LAN
    // does not reorder a burst), so re-send it now, once per round, rather
    // than wait for the timer.
    const endpoint = this.#out.get(o.message.peer)?.endpoint;
    if (o.inFlight && endpoint && o.fastRound !== o.transmissions && this.#missing(o) > 0) {
      o.fastRound = o.transmissions;
      this.#transmit(o, endpoint, now);
    }
  }

  #finish(o: Outgoing): void {
    this.#setInFlight(o, false);
    this.#byId.delete(o.message.id);
    const p = this.#out.get(o.message.peer);
    o.finished = true;
    // Its encoded bytes are not needed any more, though the entry may wait
    // in the queue behind one not yet acknowledged.
    o.bytes = NO_BYTES;
    o.acked = NO_BYTES;
    if (!p) return;
    p.pending--;
    p.loaded--;
    this.#pending--;
    while (p.head < p.queue.length && p.queue[p.head]!.finished) p.head++;
    // The queue holds at most a window of messages (OUTBOX_WINDOW) and those
    // acknowledged before it: cut the front off once it is a good part of it.
    if (p.head >= QUEUE_CUT && p.head * 2 > p.queue.length) {
      p.queue.splice(0, p.head);
      p.head = 0;
    }
    // Running low: the next messages come from disk.
    if (p.more && p.loaded < OUTBOX_REFILL) this.#load(p, o.message.peer);
  }

  // ---- receiver ----

  #peerIn(peer: string): PeerIn {
    let s = this.#in.get(peer);
    if (!s) {
      s = { expected: undefined, held: new Map(), gapDeadline: undefined };
      this.#in.set(peer, s);
    }
    return s;
  }

  #ack(to: Endpoint, messageId: string, count: number, received: Uint8Array, done: boolean, rejected?: string): void {
    const ack: Ack = {
      kind: "ack",
      id: this.self.id,
      incarnation: this.self.incarnation,
      messageId,
      count,
      received,
      done,
    };
    if (rejected) ack.rejected = rejected;
    this.#transmits.push({ via: "unicast", to, bytes: encodePacket(ack), kind: "ack" });
    this.counters.acksSent++;
  }

  #onMsg(m: Msg, from: Endpoint, now: number): "not-for-me" | "overload" | undefined {
    if (m.to !== this.self.id) return "not-for-me";
    this.counters.fragmentsReceived++;
    // Any fragment (a duplicate too) whose sender still holds the message we
    // wait for (its base is at or below our gap) means it will come: the gap
    // wait starts over.
    const waiting = this.#in.get(m.id);
    if (waiting?.gapDeadline !== undefined && waiting.expected !== undefined && m.base <= waiting.expected) {
      waiting.gapDeadline = now + GAP_WAIT_MS;
    }

    const empty = new Uint8Array(Math.ceil(m.count / 8));
    let partial = this.#partials.get(m.messageId);
    if (!partial) {
      if (this.#store.hasMessage(m.messageId)) {
        this.counters.duplicates++;
        this.#ack(from, m.messageId, m.count, empty, true);
        return undefined;
      }
      if (this.#partials.size >= MAX_PARTIAL_MESSAGES || this.#partialBytes + m.length > MAX_PARTIAL_BYTES) {
        this.counters.reassemblyDropped++;
        return "overload";
      }
      partial = {
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
      };
      this.#partials.set(m.messageId, partial);
      this.#partialBytes += m.length;
    } else if (
      partial.peer !== m.id || partial.count !== m.count || partial.length !== m.length || partial.seq !== m.seq
    ) {
      // Same id, different shape: not a fragment of this message.
      return "overload";
    }
    partial.lastAt = now;
    partial.base = Math.max(partial.base, m.base);
    if (!bit(partial.got, m.index)) {
      partial.frags[m.index] = m.payload;
      setBit(partial.got, m.index);
      partial.have++;
    }
    if (partial.have < partial.count) {
      // At the end of each of the sender's rounds, tell it what is missing.
      if (m.end) this.#ack(from, m.messageId, m.count, partial.got.slice(), false);
      return undefined;
    }
    // Complete.
    this.#dropPartial(m.messageId);
    const bytes = new Uint8Array(partial.length);
    let at = 0;
    for (const f of partial.frags) {
      bytes.set(f!, at);
      at += f!.length;
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      this.#ack(from, m.messageId, m.count, empty, true, "bad-utf8");
      return undefined;
    }
    const held: HeldMessage = {
      id: m.messageId,
      peer: m.id,
      seq: m.seq,
      text,
      sentAt: m.sentAt,
      receivedAt: this.#wall(now),
    };
    try {
      this.#accept(held, partial.base, now);
    } catch (e) {
      // Not stored, so not acknowledged: the sender will try again.
      this.#storeError(e);
      return undefined;
    }
    this.counters.messagesReceived++;
    this.#ack(from, m.messageId, m.count, empty, true);
    return undefined;
  }

  #dropPartial(id: string): void {
    const p = this.#partials.get(id);
    if (!p) return;
    this.#partials.delete(id);
    this.#partialBytes -= p.length;
  }

  /** Stores a complete incoming message: into the inbox if it is next, else held. */
  #accept(m: HeldMessage, base: number, now: number): void {
    const s = this.#peerIn(m.peer);
    if (s.expected === undefined) {
      const stored = this.#store.expectedSeq(m.peer);
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
        if (seq > expected) this.counters.gapsSkipped += seq - expected;
        expected = seq + 1;
        s.held.delete(seq);
      }
      if (base > expected) this.counters.gapsSkipped += base - expected;
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
      this.#store.hold(m);
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
    for (const m of ms) m.group = groupIdOf(m.text);
    const stored = this.#store.release(peer, ms, next, this.#wall(now));
    for (const message of stored) this.#events.push({ type: "message", message });
  }

  /** The gap wait is over: show what is held, in order, marking what is missing. */
  #skipGap(peer: string, s: PeerIn, now: number): void {
    s.gapDeadline = undefined;
    let expected = s.expected ?? 1;
    const toRelease: Release[] = [];
    for (const seq of [...s.held.keys()].sort((a, b) => a - b)) {
      const h = s.held.get(seq)!;
      toRelease.push({ ...h, gapBefore: seq - expected, late: false });
      this.counters.gapsSkipped += seq - expected;
      expected = seq + 1;
    }
    try {
      this.#release(peer, toRelease, expected, now);
      s.held.clear();
      s.expected = expected;
    } catch (e) {
      this.#storeError(e);
      s.gapDeadline = now + GAP_WAIT_MS;
    }
  }

  #storeError(e: unknown): void {
    this.counters.storeErrors++;
    const error = e instanceof StoreError ? e.message : `Storage failed: ${(e as Error)?.message ?? e}`;
    this.#events.push({ type: "store-error", error });
  }
}
