/**
 * IP Messenger interop (IP Messenger, FeiQ, iptux) as a sans-I/O state
 * machine, like discovery and messaging: it is fed datagrams and the time,
 * and returns datagrams to send and events. {@link Ipmsg} is its one face:
 * it reads a datagram, hands it to the part its command belongs to, and
 * keeps the time; the parts work on one state object (./ipmsg_state.ts):
 *
 * - Entries, the roster side (./ipmsg_entries.ts): BR_ENTRY, ANSENTRY,
 *   BR_ABSENCE, BR_EXIT, silence, our absence, GETINFO.
 * - Messages out (./ipmsg_outbox.ts): SENDMSG re-sent until a RECVMSG names
 *   it, while the peer is present; queued while it is not.
 * - Messages in (./ipmsg_receive.ts): RECVMSG answers, duplicates
 *   (./ipmsg_dedup.ts), the per-address budget, a message not kept withdrawn.
 * - Sealed messages and their read notices (./ipmsg_sealed.ts).
 * - Files offered in messages, RELEASEFILES (./ipmsg_offers.ts).
 * - Encoding (./ipmsg_encoding.ts): UTF-8 to peers that say they read it,
 *   GBK to the others; names in entries.
 *
 * @module
 */
import type { Endpoint } from "./discovery.ts";
import { fits, LANCHAT_VERSION_FIELD, readPacket } from "./ipmsg_encoding.ts";
import {
  announce,
  onEntry,
  onExit,
  onGetAbsenceInfo,
  onGetInfo,
  sayGoodbye,
  setAbsence,
  upsert,
} from "./ipmsg_entries.ts";
import { onReleaseFiles, releaseFiles } from "./ipmsg_offers.ts";
import { attachTo, nextRetransmit, onRecvMsg, queue, retransmit } from "./ipmsg_outbox.ts";
import { onSendMsg, unstored } from "./ipmsg_receive.ts";
import { nextRead, onAnsReadMsg, onReadMsg, openedSealed, sendReads } from "./ipmsg_sealed.ts";
import {
  countAt,
  type IpmsgCounters,
  type IpmsgEvent,
  type IpmsgOptions,
  type IpmsgPeer,
  ipmsgPeerId,
  type IpmsgReceipt,
  type IpmsgState,
  type IpmsgTransmit,
  newIpmsgState,
  nextPacketNo,
  touch,
} from "./ipmsg_state.ts";
import { IPMSG, IPMSG_MAX_PACKET } from "../wire/ipmsg.ts";

export { DEDUP_WINDOW_MS, MAX_REMEMBERED_PACKETS } from "./ipmsg_dedup.ts";
export { LANCHAT_VERSION_FIELD } from "./ipmsg_encoding.ts";
export { IPMSG_EXPIRY_ANNOUNCES } from "./ipmsg_entries.ts";
export { MESSAGE_BURST, MESSAGE_RATE_PER_S } from "./ipmsg_receive.ts";
export { MAX_PENDING_READS, READ_ATTEMPTS } from "./ipmsg_sealed.ts";
export { IPMSG_PORT, ipmsgPeerId, ipmsgRetryDelay } from "./ipmsg_state.ts";
export type {
  IpmsgCounters,
  IpmsgEvent,
  IpmsgOptions,
  IpmsgPeer,
  IpmsgReceipt,
  IpmsgTransmit,
  PeerCount,
} from "./ipmsg_state.ts";

/** The IP Messenger state machine. */
export class Ipmsg {
  #s: IpmsgState;

  constructor(o: IpmsgOptions) {
    this.#s = newIpmsgState(o);
  }

  get self(): { user: string; host: string; nickname: string; group: string } {
    return this.#s.self;
  }

  get port(): number {
    return this.#s.port;
  }

  get counters(): IpmsgCounters {
    return this.#s.counters;
  }

  /** Peers present now. */
  get size(): number {
    return this.#s.peers.size;
  }

  /** Peers present now at `address`. */
  countAt(address: string): number {
    return countAt(this.#s, address);
  }

  /** Peers present now. */
  peers(): IpmsgPeer[] {
    return [...this.#s.peers.values()];
  }

  /** Tells a user that the files of its message `packetNo` are not wanted (RELEASEFILES); false when it is not online. */
  releaseFiles(id: string, packetNo: number): boolean {
    return releaseFiles(this.#s, id, packetNo);
  }

  get(id: string): IpmsgPeer | undefined {
    return this.#s.peers.get(id);
  }

  /** Messages not yet acknowledged, by message id. */
  pending(): string[] {
    return this.#s.out.map((o) => o.messageId);
  }

  /** Sets the broadcast addresses BR_ENTRY and BR_EXIT go to. */
  setBroadcasts(addresses: string[]): void {
    this.#s.broadcasts = addresses.map((address) => ({ address, port: this.#s.port }));
  }

  start(now: number): void {
    this.#s.nextAnnounce = now;
  }

  /**
   * Queues a message for an IP Messenger peer (present or not), to go out
   * now if it is present and again until a RECVMSG names it.
   */
  send(
    messageId: string,
    peerId: string,
    text: string,
    now: number,
    files?: { packetNo: string; attach: string },
  ): void {
    queue(this.#s, { messageId, peerId, text, ...(files ? { files } : {}) }, now);
  }

  /** A packet number for a message to be sent (one that offers files: its requests name it). */
  packetNumber(): string {
    return nextPacketNo(this.#s);
  }

  /** Gives a queued message (re-queued from the outbox at start) back the files it offers. */
  attachTo(messageId: string, files: { packetNo: string; attach: string }): void {
    attachTo(this.#s, messageId, files);
  }

  /** Whether a text fits one IP Messenger packet for this peer. */
  fits(peerId: string, text: string): boolean {
    return fits(this.#s, peerId, text);
  }

  handleDatagram(bytes: Uint8Array, from: Endpoint, now: number): void {
    const s = this.#s;
    if (s.stopped) return;
    s.counters.received++;
    const p = readPacket(s, bytes, from);
    if (!p) return;
    if (p.user === s.self.user && p.host === s.self.host && s.ownPacketNos.has(p.packetNo)) {
      s.counters.dropped.self++;
      return;
    }
    // Another lanchat daemon with --ipmsg: it is a lanchat peer already (listing it twice made `send alice` ambiguous).
    if (p.version.startsWith(LANCHAT_VERSION_FIELD)) {
      s.counters.dropped.lanchat++;
      return;
    }
    const id = ipmsgPeerId(p.user, from.address);
    switch (p.mode) {
      case IPMSG.BR_ENTRY:
        onEntry(s, p, id, from, now);
        break;
      case IPMSG.ANSENTRY:
      case IPMSG.BR_ABSENCE:
        upsert(s, p, from, now);
        break;
      case IPMSG.BR_EXIT:
        onExit(s, id);
        break;
      case IPMSG.SENDMSG:
        onSendMsg(s, p, id, from, now);
        break;
      case IPMSG.RECVMSG:
        onRecvMsg(s, p, id, now);
        break;
      case IPMSG.GETINFO:
        onGetInfo(s, p, id, from, now);
        break;
      case IPMSG.GETABSENCEINFO:
        onGetAbsenceInfo(s, p, id, from, now);
        break;
      case IPMSG.READMSG:
        onReadMsg(s, p, id, from, now);
        break;
      case IPMSG.RELEASEFILES:
        onReleaseFiles(s, p, id, now);
        break;
      case IPMSG.ANSREADMSG:
        onAnsReadMsg(s, p, id, now);
        break;
      default:
        // File and encryption commands: not supported here; proof of life.
        touch(s, id, now);
        s.counters.dropped.unsupported++;
    }
  }

  /**
   * A sealed message from `peerId` was opened here: tells its sender
   * (READMSG naming its packet number), again until answered when it asked
   * (READCHECKOPT), or once; sent when the peer is present.
   */
  openedSealed(peerId: string, packetNo: string, readCheck: boolean, now: number): void {
    openedSealed(this.#s, peerId, packetNo, readCheck, now);
  }

  handleTimeout(now: number): void {
    const s = this.#s;
    if (s.stopped) return;
    if (s.reads.length > 0) sendReads(s, now);
    announce(s, now);
    retransmit(s, now);
  }

  pollTimeout(): number | undefined {
    const s = this.#s;
    if (s.stopped) return undefined;
    const next = nextRead(s, nextRetransmit(s, s.nextAnnounce ?? Infinity));
    return next === Infinity ? undefined : next;
  }

  /**
   * A message this machine gave out could not be kept (the store refused
   * it, or its commit failed): its RECVMSGs still queued are withdrawn and
   * its packet number forgotten, so the sender, unanswered, sends it again
   * and it is taken as new. A message acknowledged is a message stored.
   */
  unstored(receipt: IpmsgReceipt): void {
    unstored(this.#s, receipt);
  }

  drainTransmits(): IpmsgTransmit[] {
    const out = this.#s.transmits;
    this.#s.transmits = [];
    return out;
  }

  drainEvents(): IpmsgEvent[] {
    const out = this.#s.events;
    this.#s.events = [];
    return out;
  }

  /** BR_EXIT on every broadcast address and to every peer, then stop. */
  shutdown(): void {
    if (this.#s.stopped) return;
    sayGoodbye(this.#s);
    this.#s.stopped = true;
  }

  /**
   * Our absence as IP Messenger clients show it: entries carry ABSENCEOPT,
   * a BR_ABSENCE goes out at once (to every broadcast address and every
   * user), and GETABSENCEINFO is answered with the note. Undefined: present.
   */
  setAbsence(note: string | undefined): void {
    setAbsence(this.#s, note);
  }
}

/** Largest IP Messenger packet: re-exported for callers that check sizes. */
export { IPMSG_MAX_PACKET };
