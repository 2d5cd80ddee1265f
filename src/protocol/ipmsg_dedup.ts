/**
 * Which incoming IP Messenger messages were stored already: a retransmission
 * (the sender missed our RECVMSG) is answered again but not stored twice,
 * while a new message is never taken for one.
 *
 * A message is a duplicate when the same sender (address and user) sent the
 * same packet number with the same content (command and text, hashed) within
 * {@link DEDUP_WINDOW_MS}, and the sender did not restart in between. Packet
 * numbers alone are not enough: iptux starts them again from small values
 * when it restarts, so its second instance's packet 21 is not the first
 * one's. A restart is a `BR_ENTRY` from a sender that is not present (it said
 * goodbye or went silent) or whose packet number is not above every packet
 * number it sent before: it starts a new window for that sender. A
 * `BR_ENTRY` that only refreshes a running client's entry (numbered after
 * its messages) keeps the window, so a retransmission after it stays one.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** How long (ms) an incoming packet number is remembered, to drop duplicates. */
export const DEDUP_WINDOW_MS = 10 * 60_000;
/** Most incoming packet numbers remembered (the oldest go first). */
export const MAX_REMEMBERED_PACKETS = 100_000;
/** Options a client may set on a retransmission only (IPMSG_RETRYOPT): not part of the content. */
const RETRYOPT = 0x4000;

/** What a sender of messages is known by: its address and user name. */
function senderKey(address: string, user: string): string {
  return `${address}|${user}`;
}

/** A short digest of what a message says (its command without RETRYOPT, and its text parts). */
export function messageDigest(command: number, extra: readonly string[]): string {
  return createHash("sha256").update(`${command & ~RETRYOPT}\0${extra.join("\0")}`).digest("base64").slice(0, 16);
}

interface Sender {
  /** Its window: bumped on each restart, never reused (a global counter). */
  epoch: number;
  /** The highest numeric packet number heard from it in this window. */
  high: number;
  /** When it was last heard (expiry). */
  at: number;
}

export class PacketWindow {
  /** `address|user|epoch|packetNo` → when it was stored and its content digest. */
  #seen = new Map<string, { at: number; digest: string }>();
  #senders = new Map<string, Sender>();
  #epochs = 0;

  get size(): number {
    return this.#seen.size;
  }

  #sender(address: string, user: string, now: number): Sender {
    const key = senderKey(address, user);
    let s = this.#senders.get(key);
    if (!s) {
      s = { epoch: ++this.#epochs, high: -1, at: now };
      this.#senders.set(key, s);
      if (this.#senders.size > MAX_REMEMBERED_PACKETS) this.#senders.delete(this.#senders.keys().next().value!);
    }
    s.at = now;
    return s;
  }

  /**
   * A `BR_ENTRY` from a sender: a new window when it restarted (it was not
   * present, or its packet number is not above those it sent before). True
   * when a sender heard from before began a new window.
   */
  entry(address: string, user: string, packetNo: string, present: boolean, now: number): boolean {
    const heard = this.#senders.has(senderKey(address, user));
    const s = this.#sender(address, user, now);
    const n = numeric(packetNo);
    const restarted = !present || n === undefined || n <= s.high;
    if (restarted) {
      s.epoch = ++this.#epochs;
      s.high = n ?? -1;
    } else s.high = n!;
    return restarted && heard;
  }

  /**
   * Whether a message was stored already: same sender, window, packet
   * number and content. A same-numbered message with other content is a
   * new one.
   */
  duplicate(address: string, user: string, packetNo: string, digest: string, now: number): boolean {
    const s = this.#sender(address, user, now);
    return this.#seen.get(`${senderKey(address, user)}|${s.epoch}|${packetNo}`)?.digest === digest;
  }

  /** Remembers a message as stored (once it was accepted): it replaces a same-numbered one with other content. */
  remember(address: string, user: string, packetNo: string, digest: string, now: number): void {
    const s = this.#sender(address, user, now);
    const n = numeric(packetNo);
    if (n !== undefined && n > s.high) s.high = n;
    const key = `${senderKey(address, user)}|${s.epoch}|${packetNo}`;
    this.#seen.delete(key);
    this.#seen.set(key, { at: now, digest });
    if (this.#seen.size > MAX_REMEMBERED_PACKETS) this.#seen.delete(this.#seen.keys().next().value!);
  }

  /** Forgets a message remembered as stored that was not kept after all (its retransmission is then new). */
  forget(address: string, user: string, packetNo: string, digest: string): void {
    const s = this.#senders.get(senderKey(address, user));
    if (!s) return;
    const key = `${senderKey(address, user)}|${s.epoch}|${packetNo}`;
    if (this.#seen.get(key)?.digest === digest) this.#seen.delete(key);
  }

  /** Forgets what is older than the window. */
  expire(now: number): void {
    for (const [key, v] of this.#seen) if (now - v.at > DEDUP_WINDOW_MS) this.#seen.delete(key);
    for (const [key, s] of this.#senders) if (now - s.at > DEDUP_WINDOW_MS) this.#senders.delete(key);
  }
}

function numeric(packetNo: string): number | undefined {
  return /^\d{1,15}$/.test(packetNo) ? Number(packetNo) : undefined;
}
