/**
 * Read receipts: telling a sender that its messages were read here (a small
 * packet, sent again with doubling delays until the sender answers, and again
 * when it comes back), and taking the receipts that come for ours.
 *
 * @module
 */
import type { Endpoint } from "./transmit.ts";
import type { MessagingContext } from "./messaging_shared.ts";
import { encodePacket, type Read } from "../wire/mod.ts";

/** Tries and first retry delay of a read receipt (doubling). */
export const RECEIPT_TRIES = 8;
export const RECEIPT_RETRY_MS = 1000;

/** Read receipts sent and received. */
export class ReadReceipts {
  #ctx: MessagingContext;
  /** Where a peer is reachable, while it is. */
  #endpointOf: (peer: string) => Endpoint | undefined;
  /**
   * Read receipts to send, by peer and conversation (`PEER GROUP`, `PEER `
   * for the direct one): the newest message read there, re-sent until the
   * peer answers (a receipt in one conversation never replaces another's).
   */
  #receipts = new Map<string, { peer: string; messageId: string; nextAt: number; tries: number }>();

  constructor(ctx: MessagingContext, endpointOf: (peer: string) => Endpoint | undefined) {
    this.#ctx = ctx;
    this.#endpointOf = endpointOf;
  }

  /** See {@link Messaging.markRead}. */
  markRead(peer: string, messageId: string, now: number, group?: string): void {
    const key = `${peer} ${group ?? ""}`;
    this.#receipts.set(key, { peer, messageId, nextAt: now, tries: 0 });
    this.#sendReceipt(key, now);
  }

  /** The peer is reachable again: the receipts that waited for it go now. */
  peerBack(peer: string, now: number): void {
    for (const [key, receipt] of [...this.#receipts]) {
      if (receipt.peer !== peer) continue;
      receipt.nextAt = now;
      this.#sendReceipt(key, now);
    }
  }

  /** Receipts due again at `now`. */
  handleTimeout(now: number): void {
    for (const key of [...this.#receipts.keys()]) this.#sendReceipt(key, now);
  }

  /** When the next receipt is due again (Infinity if none). */
  nextTimeout(): number {
    let next = Infinity;
    for (const r of this.#receipts.values()) if (r.nextAt < next) next = r.nextAt;
    return next;
  }

  #sendReceipt(key: string, now: number): void {
    const r = this.#receipts.get(key);
    if (!r || now < r.nextAt) return;
    const peer = r.peer;
    const to = this.#endpointOf(peer);
    if (r.tries >= RECEIPT_TRIES) {
      this.#receipts.delete(key);
      return;
    }
    r.tries++;
    r.nextAt = now + RECEIPT_RETRY_MS * 2 ** (r.tries - 1);
    if (!to) return;
    const read: Read = { kind: "read", ...this.#selfIds(), to: peer, messageId: r.messageId, ack: false };
    this.#ctx.transmits.push({ via: "unicast", to, bytes: encodePacket(read), kind: "read", peer });
  }

  #selfIds(): { id: string; incarnation: number } {
    return { id: this.#ctx.self.id, incarnation: this.#ctx.self.incarnation };
  }

  /** A read receipt from the reader, or the answer to ours. */
  onRead(packet: Read, from: Endpoint, now: number): "not-for-me" | undefined {
    const ctx = this.#ctx;
    if (packet.to !== ctx.self.id) return "not-for-me";
    if (packet.ack) {
      for (const [key, r] of this.#receipts) {
        if (r.peer === packet.id && r.messageId === packet.messageId) this.#receipts.delete(key);
      }
      return undefined;
    }
    try {
      for (const message of ctx.store.markReadOut(packet.id, packet.messageId, ctx.wall(now))) {
        ctx.events.push({ type: "read", message });
      }
    } catch (e) {
      // Not stored: not answered, so the reader sends it again.
      ctx.counters.storeErrors++;
      ctx.events.push({ type: "store-error", error: (e as Error).message });
      return undefined;
    }
    const ack: Read = { kind: "read", ...this.#selfIds(), to: packet.id, messageId: packet.messageId, ack: true };
    ctx.transmits.push({ via: "unicast", to: from, bytes: encodePacket(ack), kind: "read", peer: packet.id });
    return undefined;
  }
}
