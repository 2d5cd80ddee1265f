/**
 * IP Messenger interop (IP Messenger, FeiQ, iptux) as a sans-I/O state
 * machine, like discovery and messaging: it is fed datagrams and the time,
 * and returns datagrams to send and events.
 *
 * - Entry: BR_ENTRY (nickname, group; UTF-8 capable) at start and on every
 *   announce; BR_ENTRY from others is answered with ANSENTRY; ANSENTRY and
 *   BR_ABSENCE add or update a peer; BR_EXIT removes it; so does silence for
 *   {@link IPMSG_EXPIRY_ANNOUNCES} announces (every client answers our
 *   BR_ENTRY, so a live one is heard on each).
 * - Messages out: SENDMSG|SENDCHECKOPT, re-sent (same packet number) until a
 *   RECVMSG names it, while the peer is present; queued while it is not.
 * - Messages in: SENDMSG is answered with RECVMSG when it asks (SENDCHECKOPT)
 *   and is not a broadcast or auto-reply; duplicates (same address, user,
 *   packet number and content within {@link DEDUP_WINDOW_MS}, and no restart
 *   of the sender in between: see ./ipmsg_dedup.ts) are answered but not
 *   delivered twice; a same-numbered packet that says something else is a
 *   new message.
 * - Text: UTF-8 to peers that say they read it, GBK to the others.
 *
 * @module
 */
import { autoReplyText, isAutoReply, withoutAutoMark } from "./auto_reply.ts";
import { parseSealed, sealedText } from "./sealed.ts";
import { IPMSG_FILE, type IpmsgAttachment, parseAttachments } from "../wire/ipmsg_files.ts";
import { formatBytes } from "./files.ts";
import { createHash } from "node:crypto";
import type { Endpoint } from "./discovery.ts";
import { DEFAULT_MAX_PEERS, MAX_PEERS_PER_ADDRESS } from "./roster.ts";
import { DEDUP_WINDOW_MS, MAX_REMEMBERED_PACKETS, messageDigest, PacketWindow } from "./ipmsg_dedup.ts";
import {
  decodeIpmsg,
  encodeIpmsg,
  IPMSG,
  IPMSG_MAX_PACKET,
  IPMSG_OPT,
  type IpmsgDropReason,
  type IpmsgEncoding,
  type IpmsgPacket,
  saysUtf8,
} from "../wire/ipmsg.ts";

/** The IP Messenger port. */
export const IPMSG_PORT = 2425;
/** An IP Messenger peer not heard for this many of our announces is removed. */
export const IPMSG_EXPIRY_ANNOUNCES = 5;
export { DEDUP_WINDOW_MS, MAX_REMEMBERED_PACKETS };
/**
 * Messages stored from one source address: a burst of
 * {@link MESSAGE_BURST}, then {@link MESSAGE_RATE_PER_S} a second (120 a
 * minute). Past it a message is neither answered nor stored: its sender's
 * client retries, then tells its user it was not received.
 */
export const MESSAGE_BURST = 120;
export const MESSAGE_RATE_PER_S = 2;
/** READMSGs kept waiting for an answer, and how often each is sent before giving up. */
export const MAX_PENDING_READS = 1000;
export const READ_ATTEMPTS = 6;
/** Re-send delays for an unacknowledged SENDMSG (and READMSG): 1 s five times, then every 5 s. */
export function ipmsgRetryDelay(attempt: number): number {
  return attempt < 5 ? 1000 : 5000;
}

/** An IP Messenger peer. */
export interface IpmsgPeer {
  /** 32 hex characters derived from user and address, stable across restarts. */
  id: string;
  user: string;
  host: string;
  nickname: string;
  group: string;
  address: string;
  port: number;
  /** The client's version field, e.g. "1_iptux 0.8.3". */
  version: string;
  encoding: IpmsgEncoding;
  absent: boolean;
  /** While absent: what its client put after its name (IP Messenger's "Name[Lunch]"). */
  absenceNote?: string;
  firstSeen: number;
  lastSeen: number;
}

export type IpmsgEvent =
  | { type: "joined" | "updated"; peer: IpmsgPeer }
  | { type: "left"; peer: IpmsgPeer; reason: "goodbye" | "timeout" }
  /** `files`: what a message with FILEATTACHOPT offers (fetched over TCP with its packet number). */
  | {
    type: "message";
    peer: IpmsgPeer;
    text: string;
    sentAt: number;
    files?: { packetNo: number; list: IpmsgAttachment[] };
    /** What {@link Ipmsg.unstored} takes when the message could not be kept. */
    receipt: IpmsgReceipt;
  }
  | { type: "delivered"; messageId: string; peerId: string; rttMs: number }
  /** A sealed message of ours was opened by its reader (their READMSG). */
  | { type: "read"; messageId: string; peerId: string }
  /** A user does not want the files of our message `packetNo` (RELEASEFILES). */
  | { type: "released"; peerId: string; packetNo: number }
  /** Something from `address` was refused for a bound: the roster is full, or it sent messages too fast. */
  | { type: "refused"; address: string; reason: "roster-full" | "message-rate" };

export interface IpmsgTransmit {
  to: Endpoint;
  bytes: Uint8Array;
  /** A RECVMSG: the receipt of the message it answers (withdrawn while queued if that message was not kept). */
  receipt?: string;
}

/** Which incoming message a RECVMSG answers: its sender and packet, and what it said. */
export interface IpmsgReceipt {
  from: Endpoint;
  user: string;
  packetNo: string;
  digest: string;
}

function receiptKey(r: IpmsgReceipt): string {
  return `${r.from.address}|${r.from.port}|${r.user}|${r.packetNo}`;
}

export interface IpmsgCounters {
  received: number;
  /** `lanchat`: another lanchat daemon's IP Messenger side, which is listed once, as a lanchat peer. */
  dropped: Record<IpmsgDropReason | "self" | "unsupported" | "rate-limit" | "roster-full" | "lanchat", number>;
  entries: number;
  messagesIn: number;
  /** Messages refused (not answered, not stored) because their sender's address sent too many. */
  messagesRefused: number;
  messagesOut: number;
  duplicates: number;
  /** BR_ENTRYs that showed a sender restarted (its packet numbers start again): a new duplicate window for it. */
  restarts: number;
  retransmits: number;
  /** Packets with bytes that were no character in their encoding (left out of the text, not shown as �). */
  undecodable: number;
}

/** The id lanchat gives an IP Messenger peer: hex of SHA-256("ipmsg:" user "@" address), 32 characters. */
export function ipmsgPeerId(user: string, address: string): string {
  return createHash("sha256").update(`ipmsg:${user}@${address}`).digest("hex").slice(0, 32);
}

interface Outgoing {
  messageId: string;
  peerId: string;
  text: string;
  /** Files attached (the attachment part of the extra field, see wire/ipmsg_files.ts). */
  attach?: string;
  packetNo: string;
  attempts: number;
  nextAt: number | undefined;
  firstSentAt: number | undefined;
}

export interface IpmsgOptions {
  /** What GETINFO is answered with (the program and its version). */
  software?: string;
  user: string;
  host: string;
  nickname: string;
  group: string;
  port?: number;
  /** Announce interval (ms): BR_ENTRY goes out on it. */
  intervalMs: number;
  /** First packet number; IP Messenger clients use the time in seconds. */
  firstPacketNo: number;
  /** Wall clock (ms since the epoch) for a monotonic time. */
  wall: (now: number) => number;
  /** Bound on peers, shared with lanchat's roster (default {@link DEFAULT_MAX_PEERS}). */
  maxPeers?: number;
  /** The other protocol's peers, counted against the same bounds (lanchat's roster). */
  others?: PeerCount;
  /**
   * Whether a new message from `address` may be stored at `now` (the
   * driver's per-address budget, {@link MESSAGE_BURST} then
   * {@link MESSAGE_RATE_PER_S}); a message refused is neither answered nor
   * stored. Default: every message.
   */
  allowMessage?: (address: string, now: number) => boolean;
}

/** Peers of another protocol that share the roster bounds: how many, and how many at one address. */
export interface PeerCount {
  count(): number;
  countAt(address: string): number;
}

/** The IP Messenger state machine. */
export class Ipmsg {
  readonly self: { user: string; host: string; nickname: string; group: string };
  #software: string;
  /** Our absence note while absent ("" for none); undefined while present. */
  #absence: string | undefined;
  readonly port: number;
  readonly counters: IpmsgCounters = {
    received: 0,
    dropped: {
      oversize: 0,
      truncated: 0,
      "bad-field": 0,
      "bad-text": 0,
      self: 0,
      unsupported: 0,
      "rate-limit": 0,
      "roster-full": 0,
      lanchat: 0,
    },
    entries: 0,
    messagesIn: 0,
    messagesRefused: 0,
    messagesOut: 0,
    duplicates: 0,
    restarts: 0,
    retransmits: 0,
    undecodable: 0,
  };
  #intervalMs: number;
  #wall: (now: number) => number;
  #packetNo: number;
  #ownPacketNos = new Set<string>();
  #peers = new Map<string, IpmsgPeer>();
  /** address → peers there (an id is derived from user and address, so a peer never moves). */
  #byAddress = new Map<string, number>();
  #maxPeers: number;
  #others: PeerCount;
  #allowMessage: (address: string, now: number) => boolean;
  #broadcasts: Endpoint[] = [];
  #nextAnnounce: number | undefined;
  #out: Outgoing[] = [];
  /** Sealed messages sent, by `peer|packetNo`: the READMSG that says one was opened names its packet number. */
  #sealedOut = new Map<string, string>();
  /** READMSGs for sealed messages opened here, sent again until answered when the sender asked (READCHECKOPT). */
  #reads: {
    peerId: string;
    packetNo: string;
    readPacketNo: string;
    readCheck: boolean;
    attempts: number;
    lastAt?: number;
  }[] = [];
  #seen = new PacketWindow();
  #transmits: IpmsgTransmit[] = [];
  #events: IpmsgEvent[] = [];
  #stopped = false;

  constructor(o: IpmsgOptions) {
    this.self = { user: o.user, host: o.host, nickname: o.nickname, group: o.group };
    this.#software = o.software ?? "lanchat";
    this.port = o.port ?? IPMSG_PORT;
    this.#intervalMs = o.intervalMs;
    this.#wall = o.wall;
    this.#packetNo = o.firstPacketNo;
    this.#maxPeers = o.maxPeers ?? DEFAULT_MAX_PEERS;
    this.#others = o.others ?? { count: () => 0, countAt: () => 0 };
    this.#allowMessage = o.allowMessage ?? (() => true);
  }

  /** Peers present now. */
  get size(): number {
    return this.#peers.size;
  }

  /** Peers present now at `address`. */
  countAt(address: string): number {
    return this.#byAddress.get(address) ?? 0;
  }

  /** Peers present now. */
  peers(): IpmsgPeer[] {
    return [...this.#peers.values()];
  }

  /** The encoding to answer a packet in: the peer's, else the packet's own. */
  #encodingOf(id: string, p: IpmsgPacket): IpmsgEncoding {
    return this.#peers.get(id)?.encoding ?? p.encoding;
  }

  /** Tells a user that the files of its message `packetNo` are not wanted (RELEASEFILES); false when it is not online. */
  releaseFiles(id: string, packetNo: number): boolean {
    const peer = this.#peers.get(id);
    if (!peer) return false;
    this.#send({ address: peer.address, port: peer.port }, IPMSG.RELEASEFILES | this.#capabilities(), [
      String(packetNo),
    ], peer.encoding);
    return true;
  }

  get(id: string): IpmsgPeer | undefined {
    return this.#peers.get(id);
  }

  /** Messages not yet acknowledged, by message id. */
  pending(): string[] {
    return this.#out.map((o) => o.messageId);
  }

  /** Sets the broadcast addresses BR_ENTRY and BR_EXIT go to. */
  setBroadcasts(addresses: string[]): void {
    this.#broadcasts = addresses.map((address) => ({ address, port: this.port }));
  }

  start(now: number): void {
    this.#nextAnnounce = now;
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
    const o: Outgoing = {
      messageId,
      peerId,
      text,
      ...(files ? { attach: files.attach } : {}),
      packetNo: files?.packetNo ?? this.#nextPacketNo(),
      attempts: 0,
      nextAt: undefined,
      firstSentAt: undefined,
    };
    this.#out.push(o);
    if (this.#peers.has(peerId)) this.#transmitMessage(o, now);
  }

  /** A packet number for a message to be sent (one that offers files: its requests name it). */
  packetNumber(): string {
    return this.#nextPacketNo();
  }

  /** Gives a queued message (re-queued from the outbox at start) back the files it offers. */
  attachTo(messageId: string, files: { packetNo: string; attach: string }): void {
    const o = this.#out.find((x) => x.messageId === messageId);
    if (o) Object.assign(o, { packetNo: files.packetNo, attach: files.attach });
  }

  /** Whether a text fits one IP Messenger packet for this peer. */
  fits(peerId: string, text: string): boolean {
    const peer = this.#peers.get(peerId);
    try {
      encodeIpmsg({
        version: LANCHAT_VERSION_FIELD,
        packetNo: "99999999999",
        user: this.self.user,
        host: this.self.host,
        command: IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | IPMSG_OPT.UTF8OPT,
        extra: [text],
        encoding: peer?.encoding ?? "utf-8",
      });
      return true;
    } catch {
      return false;
    }
  }

  handleDatagram(bytes: Uint8Array, from: Endpoint, now: number): void {
    if (this.#stopped) return;
    this.counters.received++;
    const known = [...this.#peers.values()].find((p) => p.address === from.address);
    const decoded = decodeIpmsg(bytes, known?.encoding);
    if (!decoded.ok) {
      this.counters.dropped[decoded.reason]++;
      return;
    }
    const p = decoded.value;
    if (p.lossy) this.counters.undecodable++;
    if (p.user === this.self.user && p.host === this.self.host && this.#ownPacketNos.has(p.packetNo)) {
      this.counters.dropped.self++;
      return;
    }
    // Another lanchat daemon with --ipmsg: it is a lanchat peer already (listing it twice made `send alice` ambiguous).
    if (p.version.startsWith(LANCHAT_VERSION_FIELD)) {
      this.counters.dropped.lanchat++;
      return;
    }
    const id = ipmsgPeerId(p.user, from.address);
    switch (p.mode) {
      case IPMSG.BR_ENTRY: {
        // A restarted client numbers its packets from the start again: its messages are new ones.
        if (this.#seen.entry(from.address, p.user, p.packetNo, this.#peers.has(id), now)) this.counters.restarts++;
        const peer = this.#upsert(p, from, now);
        if (peer) this.#send(from, IPMSG.ANSENTRY | this.#capabilities(), this.#entryExtra(), peer.encoding);
        break;
      }
      case IPMSG.ANSENTRY:
      case IPMSG.BR_ABSENCE:
        this.#upsert(p, from, now);
        break;
      case IPMSG.BR_EXIT: {
        const peer = this.#peers.get(id);
        if (peer) this.#remove(peer, "goodbye");
        break;
      }
      case IPMSG.SENDMSG:
        this.#onSendMsg(p, id, from, now);
        break;
      case IPMSG.RECVMSG: {
        this.#touch(id, now);
        const acked = (p.extra[0] ?? "").trim();
        const i = this.#out.findIndex((o) => o.peerId === id && o.packetNo === acked);
        if (i >= 0) {
          const [o] = this.#out.splice(i, 1);
          this.#events.push({
            type: "delivered",
            messageId: o!.messageId,
            peerId: id,
            rttMs: now - (o!.firstSentAt ?? now),
          });
        }
        break;
      }
      case IPMSG.GETINFO:
        // Which program answers: IP Messenger shows it in a user's details.
        this.#touch(id, now);
        this.#send(from, IPMSG.SENDINFO | this.#capabilities(), [this.#software], this.#encodingOf(id, p));
        break;
      case IPMSG.GETABSENCEINFO:
        // IP Messenger's own words when its user is not absent.
        this.#touch(id, now);
        this.#send(
          from,
          IPMSG.SENDABSENCEINFO | this.#capabilities(),
          [this.#absence === undefined ? "Not absence mode" : this.#absence || "Away"],
          this.#encodingOf(id, p),
        );
        break;
      case IPMSG.READMSG: {
        // A sealed message of ours was opened: answer when asked (READCHECKOPT), as the sender waits for it.
        this.#touch(id, now);
        if (p.options & IPMSG_OPT.READCHECKOPT) {
          this.#send(from, IPMSG.ANSREADMSG | this.#capabilities(), [p.packetNo], this.#encodingOf(id, p));
        }
        const key = `${id}|${(p.extra[0] ?? "").trim()}`;
        const messageId = this.#sealedOut.get(key);
        if (messageId) {
          this.#sealedOut.delete(key);
          this.#events.push({ type: "read", messageId, peerId: id });
        }
        break;
      }
      case IPMSG.RELEASEFILES: {
        // The user discarded the files we attached: our offer ends (IP Messenger sends it; iptux never does).
        this.#touch(id, now);
        const packetNo = (p.extra[0] ?? "").trim();
        if (/^\d{1,15}$/.test(packetNo)) {
          this.#events.push({ type: "released", peerId: id, packetNo: Number(packetNo) });
        }
        break;
      }
      case IPMSG.ANSREADMSG: {
        // Our READMSG arrived: stop sending it. Clients name our READMSG's packet number, or the sealed message's.
        this.#touch(id, now);
        const named = (p.extra[0] ?? "").trim();
        this.#reads = this.#reads.filter((r) =>
          !(r.peerId === id && (r.readPacketNo === named || r.packetNo === named))
        );
        break;
      }
      default:
        // File and encryption commands: not supported here; proof of life.
        this.#touch(id, now);
        this.counters.dropped.unsupported++;
    }
  }

  /**
   * A sealed message from `peerId` was opened here: tells its sender
   * (READMSG naming its packet number), again until answered when it asked
   * (READCHECKOPT), or once; sent when the peer is present.
   */
  openedSealed(peerId: string, packetNo: string, readCheck: boolean, now: number): void {
    if (this.#reads.length >= MAX_PENDING_READS) this.#reads.shift();
    const r = { peerId, packetNo, readPacketNo: this.#nextPacketNo(), readCheck, attempts: 0 };
    this.#reads.push(r);
    this.#sendReads(now);
  }

  /** Sends the READMSGs due to peers that are present. */
  #sendReads(now: number): void {
    for (const r of [...this.#reads]) {
      const peer = this.#peers.get(r.peerId);
      if (!peer || (r.attempts > 0 && now < this.#readDue(r))) continue;
      this.#send(
        peer,
        IPMSG.READMSG | this.#capabilities() | (r.readCheck ? IPMSG_OPT.READCHECKOPT : 0),
        [r.packetNo],
        peer.encoding,
        r.readPacketNo,
      );
      r.attempts++;
      if (!r.readCheck || r.attempts >= READ_ATTEMPTS) this.#reads.splice(this.#reads.indexOf(r), 1);
      else r.lastAt = now;
    }
  }

  #readDue(r: { attempts: number; lastAt?: number }): number {
    return (r.lastAt ?? 0) + ipmsgRetryDelay(r.attempts - 1);
  }

  handleTimeout(now: number): void {
    if (this.#stopped) return;
    if (this.#reads.length > 0) this.#sendReads(now);
    if (this.#nextAnnounce !== undefined && now >= this.#nextAnnounce) {
      const extra = this.#entryExtra();
      for (const b of this.#broadcasts) this.#send(b, IPMSG.BR_ENTRY | this.#capabilities(), extra, "utf-8");
      // A GBK-only client (FeiQ) reads the broadcast's UTF-8 name as mojibake: it gets one in GBK after it.
      if ([...extra.join("")].some((c) => c.charCodeAt(0) > 0x7f)) {
        for (const peer of this.#peers.values()) {
          if (peer.encoding === "gbk") this.#send(peer, IPMSG.BR_ENTRY | this.#capabilities(), extra, "gbk");
        }
      }
      this.#nextAnnounce = now + this.#intervalMs;
      // Peers silent for several announces (each of which they answer) are gone.
      for (const peer of this.#peers.values()) {
        if (now - peer.lastSeen > IPMSG_EXPIRY_ANNOUNCES * this.#intervalMs) this.#remove(peer, "timeout");
      }
      this.#seen.expire(now);
    }
    for (const o of this.#out) {
      if (o.nextAt !== undefined && o.nextAt <= now && this.#peers.has(o.peerId)) {
        this.counters.retransmits++;
        this.#transmitMessage(o, now);
      }
    }
  }

  pollTimeout(): number | undefined {
    if (this.#stopped) return undefined;
    let next = this.#nextAnnounce ?? Infinity;
    for (const o of this.#out) if (o.nextAt !== undefined && o.nextAt < next) next = o.nextAt;
    for (const r of this.#reads) {
      if (r.attempts > 0 && this.#peers.has(r.peerId)) next = Math.min(next, this.#readDue(r));
    }
    return next === Infinity ? undefined : next;
  }

  /**
   * A message this machine gave out could not be kept (the store refused
   * it, or its commit failed): its RECVMSGs still queued are withdrawn and
   * its packet number forgotten, so the sender, unanswered, sends it again
   * and it is taken as new. A message acknowledged is a message stored.
   */
  unstored(receipt: IpmsgReceipt): void {
    const key = receiptKey(receipt);
    this.#transmits = this.#transmits.filter((t) => t.receipt !== key);
    this.#seen.forget(receipt.from.address, receipt.user, receipt.packetNo, receipt.digest);
  }

  drainTransmits(): IpmsgTransmit[] {
    const out = this.#transmits;
    this.#transmits = [];
    return out;
  }

  drainEvents(): IpmsgEvent[] {
    const out = this.#events;
    this.#events = [];
    return out;
  }

  /** BR_EXIT on every broadcast address and to every peer, then stop. */
  shutdown(): void {
    if (this.#stopped) return;
    for (const b of this.#broadcasts) this.#send(b, IPMSG.BR_EXIT | this.#capabilities(), this.#entryExtra(), "utf-8");
    for (const p of this.#peers.values()) {
      this.#send(p, IPMSG.BR_EXIT | this.#capabilities(), this.#entryExtra(), p.encoding);
    }
    this.#stopped = true;
  }

  #capabilities(): number {
    return IPMSG_OPT.CAPUTF8OPT | IPMSG_OPT.UTF8OPT | (this.#absence !== undefined ? IPMSG_OPT.ABSENCEOPT : 0);
  }

  /**
   * Our absence as IP Messenger clients show it: entries carry ABSENCEOPT,
   * a BR_ABSENCE goes out at once (to every broadcast address and every
   * user), and GETABSENCEINFO is answered with the note. Undefined: present.
   */
  setAbsence(note: string | undefined): void {
    this.#absence = note;
    const extra = this.#entryExtra();
    const command = IPMSG.BR_ABSENCE | this.#capabilities();
    for (const b of this.#broadcasts) this.#send(b, command, extra, "utf-8");
    for (const p of this.#peers.values()) this.#send(p, command, extra, p.encoding);
  }

  /** Nickname and group; while absent, the nickname carries the note as IP Messenger's does ("Alice[at lunch]"). */
  #entryExtra(): string[] {
    const nick = this.#absence === undefined ? this.self.nickname : `${this.self.nickname}[${this.#absence || "Away"}]`;
    return [nick, this.self.group];
  }

  #nextPacketNo(): string {
    const n = String(this.#packetNo++);
    this.#ownPacketNos.add(n);
    if (this.#ownPacketNos.size > 4096) this.#ownPacketNos.delete(this.#ownPacketNos.values().next().value!);
    return n;
  }

  #send(
    to: Endpoint,
    command: number,
    extra: string[],
    encoding: IpmsgEncoding,
    packetNo?: string,
    receipt?: string,
  ): void {
    const utf8 = encoding === "utf-8";
    // Tell a GBK peer nothing about UTF-8 in this packet (FeiQ reads GBK).
    const cmd = utf8 ? command : command & ~(IPMSG_OPT.UTF8OPT | IPMSG_OPT.CAPUTF8OPT);
    let bytes: Uint8Array;
    try {
      bytes = encodeIpmsg({
        version: LANCHAT_VERSION_FIELD,
        packetNo: packetNo ?? this.#nextPacketNo(),
        user: this.self.user,
        host: this.self.host,
        command: cmd,
        extra,
        encoding,
      });
    } catch (e) {
      // Too large for one packet (fits() should have said so first): counted, never a crash.
      if (!(e instanceof RangeError)) throw e;
      this.counters.dropped.oversize++;
      return;
    }
    this.#transmits.push({ to: { address: to.address, port: to.port }, bytes, ...(receipt ? { receipt } : {}) });
  }

  #transmitMessage(o: Outgoing, now: number): void {
    const peer = this.#peers.get(o.peerId)!;
    const sealed = parseSealed(o.text);
    const text = withoutAutoMark(sealed?.text ?? o.text);
    if (sealed) {
      // Its READMSG (the reader opened it) names this packet number.
      this.#sealedOut.set(`${o.peerId}|${o.packetNo}`, o.messageId);
      if (this.#sealedOut.size > MAX_REMEMBERED_PACKETS) this.#sealedOut.delete(this.#sealedOut.keys().next().value!);
    }
    this.#send(
      peer,
      IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | this.#capabilities() | (o.attach ? IPMSG_OPT.FILEATTACHOPT : 0) |
        (isAutoReply(o.text) ? IPMSG_OPT.AUTORETOPT : 0) |
        (sealed ? IPMSG_OPT.SECRETOPT | IPMSG_OPT.READCHECKOPT : 0),
      o.attach ? [text, o.attach] : [text],
      peer.encoding,
      o.packetNo,
    );
    if (o.attempts === 0) {
      o.firstSentAt = now;
      this.counters.messagesOut++;
    }
    o.nextAt = now + ipmsgRetryDelay(o.attempts);
    o.attempts++;
  }

  #touch(id: string, now: number): void {
    const p = this.#peers.get(id);
    if (p) p.lastSeen = now;
  }

  /** A sender with no room in the roster, as its message's event shows it. */
  #transient(p: IpmsgPacket, id: string, from: Endpoint, now: number): IpmsgPeer {
    return {
      id,
      user: p.user,
      host: p.host,
      nickname: p.user,
      group: "",
      address: from.address,
      port: from.port,
      version: p.version,
      encoding: p.encoding,
      absent: false,
      firstSeen: now,
      lastSeen: now,
    };
  }

  /** Adds or updates the sender of an entry; undefined when a new one does not fit the bounds (counted). */
  #upsert(p: IpmsgPacket, from: Endpoint, now: number): IpmsgPeer | undefined {
    const id = ipmsgPeerId(p.user, from.address);
    // iptux names its encoding in the entry's fourth part.
    const declared = (p.extra[3] ?? "").toLowerCase().replace("_", "-");
    // UTF-8 only when declared: a FeiQ user with an ASCII name sends bytes
    // that are valid UTF-8, yet reads GBK.
    const encoding: IpmsgEncoding = saysUtf8(p.options) || declared === "utf-8" || declared === "utf8"
      ? "utf-8"
      : "gbk";
    // While absent, IP Messenger shows "Name[Lunch]": the name, and the note apart.
    const absent = (p.options & IPMSG_OPT.ABSENCEOPT) !== 0 && !/iptux/i.test(p.version);
    const suffixed = absent ? /^(.+?)\[([^\]]*)\]$/.exec(p.extra[0] ?? "") : null;
    const fields = {
      user: p.user,
      host: p.host,
      nickname: suffixed ? suffixed[1]! : p.extra[0] || p.user,
      absenceNote: suffixed?.[2] || undefined,
      group: p.extra[1] ?? "",
      address: from.address,
      port: from.port,
      version: p.version,
      encoding,
      // An entry or its answer says absence too (a client that starts absent). iptux has no absence mode and
      // sets ABSENCEOPT on every entry (iptux-core/internal/Command.cpp): from it, the flag means nothing.
      absent,
    };
    const known = this.#peers.get(id);
    if (!known) {
      // The same bounds as lanchat's roster, shared with it: a full roster
      // takes no newcomer, nor does an address that has its share.
      const here = this.countAt(from.address) + this.#others.countAt(from.address);
      if (this.#peers.size + this.#others.count() >= this.#maxPeers || here >= MAX_PEERS_PER_ADDRESS) {
        this.counters.dropped["roster-full"]++;
        this.#events.push({ type: "refused", address: from.address, reason: "roster-full" });
        return undefined;
      }
      const peer: IpmsgPeer = { id, ...fields, firstSeen: now, lastSeen: now };
      this.#peers.set(id, peer);
      this.#byAddress.set(from.address, this.countAt(from.address) + 1);
      this.counters.entries++;
      this.#events.push({ type: "joined", peer });
      // It is back: whatever waits for it goes now.
      for (const o of this.#out) if (o.peerId === id) this.#transmitMessage(o, now);
      return peer;
    }
    const changed = known.nickname !== fields.nickname || known.group !== fields.group ||
      known.absent !== fields.absent || known.absenceNote !== fields.absenceNote || known.port !== fields.port;
    Object.assign(known, fields, { lastSeen: now });
    if (changed) this.#events.push({ type: "updated", peer: known });
    return known;
  }

  #remove(peer: IpmsgPeer, reason: "goodbye" | "timeout"): void {
    this.#peers.delete(peer.id);
    const left = this.countAt(peer.address) - 1;
    if (left > 0) this.#byAddress.set(peer.address, left);
    else this.#byAddress.delete(peer.address);
    this.#events.push({ type: "left", peer, reason });
    for (const o of this.#out) if (o.peerId === peer.id) o.nextAt = undefined;
  }

  #onSendMsg(p: IpmsgPacket, id: string, from: Endpoint, now: number): void {
    this.#touch(id, now);
    const wantsAck = (p.options & IPMSG_OPT.SENDCHECKOPT) !== 0 &&
      (p.options & (IPMSG_OPT.BROADCASTOPT | IPMSG_OPT.AUTORETOPT)) === 0;
    const encoding = this.#peers.get(id)?.encoding ?? p.encoding;
    const digest = messageDigest(p.command, p.extra);
    const receipt: IpmsgReceipt = {
      from: { address: from.address, port: from.port },
      user: p.user,
      packetNo: p.packetNo,
      digest,
    };
    // Queued, not sent: the driver holds it until the message is committed, and unstored() withdraws it.
    const ack = () => {
      if (wantsAck) {
        this.#send(from, IPMSG.RECVMSG | this.#capabilities(), [p.packetNo], encoding, undefined, receiptKey(receipt));
      }
    };
    if (this.#seen.duplicate(from.address, p.user, p.packetNo, digest, now)) {
      // Stored already: the sender missed our answer.
      this.counters.duplicates++;
      return ack();
    }
    if (!this.#allowMessage(from.address, now)) {
      // Not answered, so the sender's client knows it was not received.
      this.counters.messagesRefused++;
      this.#events.push({ type: "refused", address: from.address, reason: "message-rate" });
      return;
    }
    ack();
    this.#seen.remember(from.address, p.user, p.packetNo, digest, now);
    // A sender we have no entry for (its BR_ENTRY was lost): take it from the
    // packet. Its message is kept even when the roster has no room for it.
    const peer = this.#peers.get(id) ?? this.#upsert({ ...p, extra: [p.user, ""] }, from, now) ??
      this.#transient(p, id, from, now);
    let text = p.extra[0] ?? "";
    if (p.options & IPMSG_OPT.ENCRYPTOPT) {
      this.counters.dropped.unsupported++;
      text = "(an encrypted IP Messenger message: lanchat cannot read those)";
    }
    let files: IpmsgAttachment[] | undefined;
    if (p.options & IPMSG_OPT.FILEATTACHOPT && !(p.options & IPMSG_OPT.ENCRYPTOPT) && /^\d{1,10}$/.test(p.packetNo)) {
      files = parseAttachments(p.extra[1] ?? "");
      const names = files.map((f) => f.kind === IPMSG_FILE.DIR ? `${f.name}/` : f.name);
      const size = formatBytes(files.reduce((n, f) => n + f.size, 0));
      text = files.length > 0
        ? `${text}\n(Files offered: ${names.slice(0, 3).join(", ")}${names.length > 3 ? ", …" : ""} (${
          files.length === 1 ? "1 file" : `${files.length} files`
        }, ${size}): lanchat transfers)`.trim()
        : `${text}\n(files were attached, in a form lanchat cannot read)`.trim();
    }
    // Another client's automatic reply: stored as one, so nobody answers it.
    if (p.options & IPMSG_OPT.AUTORETOPT) text = autoReplyText(text);
    // Sealed: shown closed until opened; opening it sends READMSG with its packet number.
    if (p.options & IPMSG_OPT.SECRETOPT && /^\d{1,20}$/.test(p.packetNo)) {
      text = sealedText(text, { packetNo: p.packetNo, readCheck: (p.options & IPMSG_OPT.READCHECKOPT) !== 0 });
    }
    this.counters.messagesIn++;
    this.#events.push({
      type: "message",
      peer,
      text,
      sentAt: this.#wall(now),
      ...(files?.length ? { files: { packetNo: Number(p.packetNo), list: files } } : {}),
      receipt,
    });
  }
}

/** The version field of lanchat's IP Messenger packets: clients show it; another lanchat knows it is one. */
export const LANCHAT_VERSION_FIELD = "1_lanchat";

/** Largest IP Messenger packet: re-exported for callers that check sizes. */
export { IPMSG_MAX_PACKET };
