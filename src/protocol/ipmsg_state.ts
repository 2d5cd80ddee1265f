/**
 * What the parts of the IP Messenger state machine share: the types it
 * speaks in (peers, events, transmits, receipts, counters, options), the
 * one state object its parts (entries, outbox, receive, sealed, offers,
 * encoding) work on, grouped by the part that keeps each field, and the few
 * helpers every part uses (packet numbers, proof of life, the re-send
 * delay). Sans-I/O: nothing here reads a clock; `now` is given.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Endpoint } from "./discovery.ts";
import { DEFAULT_MAX_PEERS } from "./roster.ts";
import { PacketWindow } from "./ipmsg_dedup.ts";
import type { IpmsgAttachment } from "../wire/ipmsg_files.ts";
import type { IpmsgDropReason, IpmsgEncoding } from "../wire/ipmsg.ts";

/** The IP Messenger port. */
export const IPMSG_PORT = 2425;

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

export function receiptKey(r: IpmsgReceipt): string {
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

/** A message of ours waiting for its RECVMSG. */
export interface Outgoing {
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

/** A READMSG for a sealed message opened here, sent again until answered when its sender asked (READCHECKOPT). */
export interface PendingRead {
  peerId: string;
  packetNo: string;
  readPacketNo: string;
  readCheck: boolean;
  attempts: number;
  lastAt?: number;
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

/** The state of the IP Messenger machine, grouped by the part that mostly keeps it. */
export interface IpmsgState {
  readonly self: { user: string; host: string; nickname: string; group: string };
  readonly software: string;
  readonly port: number;
  readonly counters: IpmsgCounters;
  readonly wall: (now: number) => number;
  /** Datagrams and events not drained yet. */
  transmits: IpmsgTransmit[];
  events: IpmsgEvent[];
  stopped: boolean;
  /** The next packet number of ours, and those we sent lately (our own broadcasts come back). */
  packetNo: number;
  readonly ownPacketNos: Set<string>;

  // Entries (./ipmsg_entries.ts): the roster side.
  readonly intervalMs: number;
  /** Our absence note while absent ("" for none); undefined while present. */
  absence: string | undefined;
  readonly peers: Map<string, IpmsgPeer>;
  /** address → peers there (an id is derived from user and address, so a peer never moves). */
  readonly byAddress: Map<string, number>;
  readonly maxPeers: number;
  readonly others: PeerCount;
  broadcasts: Endpoint[];
  nextAnnounce: number | undefined;

  // Messages out (./ipmsg_outbox.ts).
  readonly out: Outgoing[];

  // Messages in (./ipmsg_receive.ts).
  readonly allowMessage: (address: string, now: number) => boolean;
  readonly seen: PacketWindow;

  // Sealed messages (./ipmsg_sealed.ts).
  /** Sealed messages sent, by `peer|packetNo`: the READMSG that says one was opened names its packet number. */
  readonly sealedOut: Map<string, string>;
  /** READMSGs for sealed messages opened here. */
  reads: PendingRead[];
}

export function newIpmsgState(o: IpmsgOptions): IpmsgState {
  return {
    self: { user: o.user, host: o.host, nickname: o.nickname, group: o.group },
    software: o.software ?? "lanchat",
    port: o.port ?? IPMSG_PORT,
    counters: {
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
    },
    wall: o.wall,
    transmits: [],
    events: [],
    stopped: false,
    packetNo: o.firstPacketNo,
    ownPacketNos: new Set(),
    intervalMs: o.intervalMs,
    absence: undefined,
    peers: new Map(),
    byAddress: new Map(),
    maxPeers: o.maxPeers ?? DEFAULT_MAX_PEERS,
    others: o.others ?? { count: () => 0, countAt: () => 0 },
    broadcasts: [],
    nextAnnounce: undefined,
    out: [],
    allowMessage: o.allowMessage ?? (() => true),
    seen: new PacketWindow(),
    sealedOut: new Map(),
    reads: [],
  };
}

/** A packet number of ours, remembered so that our own broadcasts are known when they come back. */
export function nextPacketNo(s: IpmsgState): string {
  const n = String(s.packetNo++);
  s.ownPacketNos.add(n);
  if (s.ownPacketNos.size > 4096) s.ownPacketNos.delete(s.ownPacketNos.values().next().value!);
  return n;
}

/** A packet from a known peer is proof of life. */
export function touch(s: IpmsgState, id: string, now: number): void {
  const p = s.peers.get(id);
  if (p) p.lastSeen = now;
}

/** Peers present now at `address`. */
export function countAt(s: IpmsgState, address: string): number {
  return s.byAddress.get(address) ?? 0;
}
