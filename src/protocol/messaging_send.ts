/**
 * The sending half of reliable messaging: the outbox, fragments,
 * acknowledgements and retransmission with backoff.
 *
 * Every message is stored (outbox) before anything is sent. While its peer
 * is in the roster, messages are sent in sequence order, at most
 * {@link WINDOW_FRAGMENTS} unacknowledged fragments at a time; a message not
 * fully acknowledged is re-sent (only its missing fragments) after a timeout
 * that starts at {@link RTO_INITIAL_MS}, doubles on every retry up to
 * {@link RTO_MAX_MS}, and starts over when an ack shows progress. When the peer
 * leaves, its messages wait; when it is seen again they are sent at once.
 * The outbox lives on disk: a window of it per peer is in memory.
 *
 * @module
 */
import type { Endpoint } from "./transmit.ts";
import { bit, type MessagingContext, storeError } from "./messaging_shared.ts";
import { type OutgoingRow, type StoredMessage, StoreError } from "../storage/store.ts";
import {
  type Ack,
  encodePacket,
  fragmentCount,
  fragmentSpan,
  MAX_FRAGMENTS,
  MAX_TEXT_BYTES,
  type Msg,
  MSG_REF_BYTES,
  type MsgRef,
} from "../wire/mod.ts";

/** What makes a message one member's copy of a message written to a group. */
export interface GroupCopy {
  group: string;
  /** The id of the message written to the group. */
  copyOf: string;
}

/** Finished entries at the front of a peer's queue that are cut off at once. */
const QUEUE_CUT = 64;
const NO_BYTES = new Uint8Array(0);
/**
 * The outbox lives on disk: of the messages waiting for a peer, at most
 * this many are in memory (read in order, as earlier ones are
 * acknowledged: refilled when fewer than {@link OUTBOX_REFILL} are left), so
 * 100,000 messages queued for an absent peer cost memory for 1,024 (about
 * 400 KiB). Two posted batches of 500 fit: at 256 most of each went to disk
 * and was read back as earlier ones were acked (6 % of a sender's time).
 */
export const OUTBOX_WINDOW = 1024;
export const OUTBOX_REFILL = 512;

/** First retransmission timeout. */
export const RTO_INITIAL_MS = 200;
/** Retransmission timeouts double up to this. */
export const RTO_MAX_MS = 3000;
/** Most unacknowledged fragments in flight to one peer. */
export const WINDOW_FRAGMENTS = 128;

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

/** One message of a batch (see {@link Sender.sendMany}). */
export interface OutgoingItem {
  to: string;
  text: string;
  copy?: GroupCopy;
  ref?: MsgRef;
}

/** How the sender is set up (see {@link MessagingOptions}). */
export interface SenderOptions {
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

/** The outbox and its retransmissions, to every peer. */
export class Sender {
  #ctx: MessagingContext;
  #newId: (wallMs: number) => string;
  #fragmentPayload: number;
  #out = new Map<string, PeerOut>();
  #byId = new Map<string, Outgoing>();
  /** Messages sent and not yet fully acknowledged, to peers that are up: the ones with a timer. */
  #inFlight = new Set<Outgoing>();
  /** Messages not yet acknowledged, to every peer (O(1) for /status). */
  #pending = 0;
  #foreign: (peer: string) => boolean;

  constructor(ctx: MessagingContext, options: SenderOptions) {
    this.#ctx = ctx;
    this.#fragmentPayload = options.fragmentPayload ?? 900;
    this.#newId = options.newId ?? timeOrderedId;
    this.#foreign = options.foreignPeer ?? (() => false);
    // Resume what a previous run left: the outbox (a window of it per peer;
    // the rest stays on disk).
    for (const [peer, n] of ctx.store.outboxCounts()) {
      if (this.#foreign(peer)) continue;
      const p = this.#peerOut(peer);
      p.pending = n;
      p.more = true;
      this.#pending += n;
      this.#load(p, peer);
    }
  }

  /**
   * Messages waiting to be delivered to `peer` (or to anyone), in sequence
   * order per peer: read from the store, as most of a long outbox is only
   * there (for tests and tools; {@link pendingCount} is what `/status` uses).
   */
  pending(peer?: string): StoredMessage[] {
    return this.#ctx.store.outbox(peer).filter((m) => !this.#foreign(m.peer));
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

  /** Where `peer` is reachable, while it is. */
  endpointOf(peer: string): Endpoint | undefined {
    return this.#out.get(peer)?.endpoint;
  }

  /** Reads the next messages waiting for `peer` from disk into its queue, up to the window. */
  #load(p: PeerOut, peer: string): void {
    const room = OUTBOX_WINDOW - p.loaded;
    if (!p.more || room <= 0) return;
    const page = this.#ctx.store.outboxPage(peer, p.loadedTo, room);
    for (const m of page) this.#enqueue(m);
    if (page.length < room) p.more = false;
  }

  /** See {@link Messaging.send}. */
  send(to: string, text: string, now: number, copy?: GroupCopy, ref?: MsgRef): StoredMessage {
    const row = this.#row(to, text, now, copy, ref);
    const message = this.#ctx.store.insertOutgoing(row.stored);
    this.#stored(message, row.bytes);
    this.#sendNow(to, message, now);
    return message;
  }

  /** See {@link Messaging.sendMany}. */
  sendMany(items: readonly OutgoingItem[], now: number): (StoredMessage | RangeError | StoreError)[] {
    const out: (StoredMessage | RangeError | StoreError)[] = new Array(items.length);
    const rows: { at: number; row: { stored: OutgoingRow; bytes: Uint8Array<ArrayBuffer> } }[] = [];
    items.forEach((it, at) => {
      try {
        rows.push({ at, row: this.#row(it.to, it.text, now, it.copy, it.ref) });
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        out[at] = e;
      }
    });
    let stored: StoredMessage[];
    try {
      stored = this.#ctx.store.insertOutgoingMany(rows.map((r) => r.row.stored));
    } catch (e) {
      if (!(e instanceof StoreError)) throw e;
      for (const r of rows) out[r.at] = e;
      return out;
    }
    const peers = new Set<string>();
    rows.forEach((r, i) => {
      const message = stored[i]!;
      this.#stored(message, r.row.bytes);
      out[r.at] = message;
      if (this.#out.get(message.peer)?.endpoint) peers.add(message.peer);
      else this.#ctx.events.push({ type: "queued", message });
    });
    // One pass over each peer's window for the whole batch.
    for (const peer of peers) this.#fill(peer, now);
    return out;
  }

  /** The row a message to `to` is stored as, and its text's bytes. @throws {RangeError} for one that cannot go. */
  #row(
    to: string,
    text: string,
    now: number,
    copy?: GroupCopy,
    ref?: MsgRef,
  ): { stored: OutgoingRow; bytes: Uint8Array<ArrayBuffer> } {
    if (to === this.#ctx.self.id) throw new RangeError("Cannot send a message to this node itself");
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > MAX_TEXT_BYTES) {
      throw new RangeError(`Text is ${bytes.length} bytes; the limit is ${MAX_TEXT_BYTES} bytes (64 KiB)`);
    }
    const reachable = this.#peerOut(to).endpoint !== undefined;
    const sentAt = this.#ctx.wall(now);
    const stored = {
      id: this.#newId(sentAt),
      peer: to,
      text,
      sentAt,
      // Sent right after it is stored when the peer is reachable: saves a second write.
      status: reachable ? "sent" as const : "queued" as const,
      ...copy,
      encrypted: this.#ctx.encryptedWith(to),
      ...(ref ? { ref } : {}),
    };
    return { stored, bytes };
  }

  /** A message just stored: counted, and into memory when the window has room and nothing older waits on disk. */
  #stored(message: StoredMessage, bytes: Uint8Array<ArrayBuffer>): void {
    const p = this.#peerOut(message.peer);
    p.pending++;
    this.#pending++;
    // Else it waits on disk, read when its turn comes.
    if (!p.more && p.loaded < OUTBOX_WINDOW) this.#enqueue(message, bytes);
    else p.more = true;
  }

  #sendNow(to: string, message: StoredMessage, now: number): void {
    if (this.#out.get(to)?.endpoint) this.#fill(to, now);
    else this.#ctx.events.push({ type: "queued", message });
  }

  /** Sets where `peer` is reachable. Returns whether it was down until now (see {@link resume}). */
  reach(peer: string, endpoint: Endpoint): boolean {
    const p = this.#peerOut(peer);
    const wasDown = p.endpoint === undefined;
    p.endpoint = endpoint;
    return wasDown;
  }

  /** The peer came back: its queue goes at once, the backoff started over. */
  resume(peer: string, now: number): void {
    const p = this.#peerOut(peer);
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

  /** The peer restarted: it is down, and whatever it had half received is gone. */
  restarted(peer: string): void {
    this.peerDown(peer);
    for (const o of this.#out.get(peer)?.queue ?? []) {
      o.acked.fill(0);
      o.ackSeen = false;
    }
  }

  /** Retransmissions due at `now`. */
  handleTimeout(now: number): void {
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
  }

  /** The next retransmission (Infinity if none). */
  nextTimeout(): number {
    let next = Infinity;
    for (const o of this.#inFlight) if (o.nextAt !== undefined && o.nextAt < next) next = o.nextAt;
    return next;
  }

  #peerOut(peer: string): PeerOut {
    let p = this.#out.get(peer);
    if (!p) {
      p = { queue: [], head: 0, endpoint: undefined, pending: 0, loaded: 0, loadedTo: 0, more: false };
      this.#out.set(peer, p);
    }
    return p;
  }

  #enqueue(message: StoredMessage, bytes = new TextEncoder().encode(message.wireText ?? message.text)): void {
    // At most MAX_FRAGMENTS: spans then stay ≤ 512 bytes for a 64 KiB text. A reference rides on every
    // fragment: those are cut smaller by its size.
    const payload = message.ref ? Math.max(1, this.#fragmentPayload - MSG_REF_BYTES) : this.#fragmentPayload;
    const count = Math.min(MAX_FRAGMENTS, fragmentCount(bytes.length, payload));
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
    const ctx = this.#ctx;
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
        id: ctx.self.id,
        incarnation: ctx.self.incarnation,
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
        ...(o.message.ref ? { ref: o.message.ref } : {}),
      };
      ctx.transmits.push({ via: "unicast", to, bytes: encodePacket(msg), kind: "msg", peer: msg.to });
      ctx.counters.fragmentsSent++;
      if (o.transmissions > 0) ctx.counters.fragmentsRetransmitted++;
    }
    if (o.transmissions === 0) {
      o.firstSentAt = now;
      ctx.counters.messagesSent++;
      try {
        // A message stored while its peer was up was stored as sent already.
        if (o.message.status === "queued") ctx.store.markSent(o.message.id);
        o.message.status = "sent";
        ctx.events.push({ type: "sent", message: o.message });
      } catch (e) {
        storeError(ctx, e);
      }
    }
    o.transmissions++;
    o.nextAt = now + retransmitTimeout(o.retries);
  }

  /** An ack from the recipient: delivered, refused, or a bitmap of the fragments it holds. */
  onAck(ack: Ack, now: number): void {
    const ctx = this.#ctx;
    ctx.counters.acksReceived++;
    const o = this.#byId.get(ack.messageId);
    // An ack for a message we no longer wait for (a late duplicate), or from
    // a node that is not its recipient: nothing to do.
    if (!o || o.message.peer !== ack.id || ack.count !== o.count) return;
    if (ack.rejected) {
      this.#finish(o);
      try {
        ctx.store.markFailed(o.message.id, `refused by the peer: ${ack.rejected}`);
      } catch (e) {
        storeError(ctx, e);
      }
      o.message.status = "failed";
      ctx.events.push({ type: "failed", message: o.message, error: ack.rejected });
      this.#fill(o.message.peer, now);
      return;
    }
    if (ack.done) {
      const rttMs = now - (o.firstSentAt ?? now);
      this.#finish(o);
      const at = ctx.wall(now);
      try {
        ctx.store.markDelivered(o.message.id, at, rttMs, ctx.encryptedWith(o.message.peer));
      } catch (e) {
        storeError(ctx, e);
      }
      Object.assign(o.message, { status: "delivered", deliveredAt: at, rttMs });
      ctx.counters.messagesDelivered++;
      ctx.events.push({ type: "delivered", message: o.message, rttMs });
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
}
