/**
 * The HTTP API's data: a peer, a message and a lookup as JSON, and the
 * events `/events` streams. Declared here, below the daemon: the daemon
 * builds them (node/views.ts), the API serves them (api/http.ts), the CLI
 * reads them.
 *
 * @module
 */
import type { FilesNote } from "../protocol/files.ts";
import type { IpmsgPeer } from "../protocol/ipmsg.ts";
import type { IpmsgAttachment } from "../wire/ipmsg_files.ts";
import type { MessagingEvent } from "../protocol/messaging.ts";
import type { RosterEvent } from "../protocol/roster.ts";
import type { Pin, StoredMessage } from "../storage/store.ts";

/** A peer as `/peers` shows it. */
export interface PeerJson {
  id: string;
  name: string;
  hostname: string;
  addresses: { address: string; port: number; lastSeen: string }[];
  incarnation: number;
  version: string;
  httpPort: number;
  intervalMs: number;
  firstSeen: string;
  lastSeen: string;
  state: string;
  /** "lanchat", or "ipmsg" for IP Messenger, FeiQ and iptux users. */
  protocol: "lanchat" | "ipmsg";
  /** lanchat peers: a short fingerprint of the node key, to compare out of band. */
  fingerprint?: string;
  /** lanchat peers: how far its key is trusted (see {@link Pin}). */
  trust?: Pin["trust"];
  /** lanchat peers whose key changed (trust `conflict` or `replaced`): what that means, in words. */
  keyNote?: string;
  /** IP Messenger peers: their login name, nickname and group. */
  user?: string;
  nickname?: string;
  group?: string;
  /** online, away or busy (IP Messenger users in absence mode: away), with a note when its user left one. */
  presence?: "online" | "away" | "busy";
  note?: string;
  /** lanchat peers: how far its clock is ahead of this host's, in ms (negative: behind), from its last hello. */
  clockOffsetMs?: number;
  /**
   * true: messages with it are end-to-end encrypted; false: they travel in
   * the clear (a lanchat version before end-to-end encryption, or IP
   * Messenger).
   */
  encrypted?: boolean;
}

/** A peer's safety number and trust, as `GET /peers/PEER/verify` and `lanchat verify PEER` show them. */
export interface VerifyJson {
  peer: { id: string; name: string; fingerprint: string };
  self: { id: string; name: string; fingerprint: string };
  /** 60 digits in 12 groups of five, the same on both nodes (see security/safety_number.ts). */
  safetyNumber: string;
  trust: Pin["trust"];
  /** The trust as people read it: verified, not verified, key changed or replaced. */
  state: "verified" | "not verified" | "key changed" | "replaced";
  /** When the key changed: what that means, in words. */
  keyNote?: string;
}

/** Everything the daemon reports to listeners (the SSE stream, tests). */
export type DaemonEvent = RosterEvent | MessagingEvent | IpmsgRosterEvent | TransferEvent | GroupEvent;

/** A group this node is in was made, or its members changed (by this node or a message of the group). */
export interface GroupEvent {
  type: "group";
  group: GroupJson;
}

/** A group looked up by what a user typed: found, or why not. */
export type GroupLookup =
  | { ok: true; group: GroupJson }
  | { ok: false; reason: "unknown" | "ambiguous"; candidates: GroupJson[] };

/** A group conversation as the API shows it. */
export interface GroupJson {
  /** 32 hex digits. */
  id: string;
  name: string;
  /** Its members now, this node included (`self`) while it is one. */
  members: { id: string; name: string; online?: boolean; self?: true }[];
  /** This node left it (its history stays). */
  left?: true;
}

/** A file transfer starting, moving (at most a few times a second), changing state, ending. */
export interface TransferEvent {
  type: "transfer-offered" | "transfer-progress" | "transfer-done" | "transfer-failed" | "transfer-updated";
  transfer: TransferJson;
}

/** A file transfer as the API shows it. */
export interface TransferJson {
  id: string;
  direction: "in" | "out";
  peer: { id: string; name: string };
  state: "offered" | "waiting" | "active" | "paused" | "done" | "refused" | "failed" | "cancelled";
  files: number;
  filesDone: number;
  bytes: number;
  transferred: number;
  /**
   * How a file is known to be the one offered: its SHA-256 (lanchat peers),
   * or only its size (IP Messenger has no checksum).
   */
  check: "sha256" | "size";
  /** Bytes per second, while active. */
  rate?: number;
  etaSeconds?: number;
  /** The top-level names offered (a folder ends in "/"). */
  names: string[];
  createdAt: string;
  updatedAt: string;
  expires: string;
  /** Incoming, once accepted: the folder the files go in. */
  dir?: string;
  /**
   * Incoming, done: the top-level names its files were saved under in
   * `dir` (a folder ends in "/"; made safe, `name (1).ext` beside one that
   * was there), at most 200; absent when not known (after a restart).
   */
  saved?: string[];
  /**
   * The id of the message that carries the offer: one this node sent, or,
   * from an IP Messenger user, the message the files came with (a lanchat
   * offer received is its message's `files.offer`).
   */
  message?: string;
  error?: string;
  /**
   * Whether the file stream was end-to-end encrypted (every connection of
   * it); false for a previous-version lanchat peer and IP Messenger users;
   * absent before the first connection.
   */
  encrypted?: boolean;
  /**
   * The pictures among its files (PNG, JPEG, GIF or WebP by their first
   * bytes), once readable here: an incoming file once received, an outgoing
   * one from its source; `url` serves it (`GET /transfers/ID/files/N`, N its
   * index in the transfer's files). At most the first 200.
   */
  images?: ImageJson[];
}

/** A picture among a transfer's files. */
export interface ImageJson {
  n: number;
  name: string;
  type: "image/png" | "image/jpeg" | "image/gif" | "image/webp";
  size: number;
  /** In pixels, as its header says (nothing decoded; absent when it does not say): a page leaves a huge one alone. */
  width?: number;
  height?: number;
  url: string;
}

/** Settings kept across restarts (`GET /settings`, `PUT /settings`). */
export interface SettingsJson {
  /** Offers of pictures only, up to maxBytes in all, from peers whose key is verified, accepted without asking. */
  autoAcceptImages: { enabled: boolean; maxBytes: number };
}

/**
 * An IP Messenger peer joining, changing (its name, group, absence, or a
 * sender seen by its message) or leaving, as listeners see it.
 */
export type IpmsgRosterEvent =
  | { type: "ipmsg-joined" | "ipmsg-updated"; peer: IpmsgPeer }
  | { type: "ipmsg-left"; peer: IpmsgPeer; reason: "goodbye" | "timeout" }
  /** An IP Messenger user offered files (a message with attachments): fetched over TCP by its packet number. */
  | { type: "ipmsg-files"; peer: IpmsgPeer; packetNo: number; files: IpmsgAttachment[]; messageId: string }
  /** An IP Messenger user discarded the files of our message `packetNo` (RELEASEFILES). */
  | { type: "ipmsg-released"; peerId: string; packetNo: number };

/** A message as the API shows it. */
export interface MessageJson {
  id: string;
  cursor: number;
  direction: "in" | "out";
  peer: { id: string; name: string };
  seq: number;
  text: string;
  status: StoredMessage["status"];
  sentAt: string;
  receivedAt?: string;
  deliveredAt?: string;
  /** When it was read: an incoming one here, an outgoing one by its peer (its read receipt). */
  readAt?: string;
  rttMs?: number;
  gapBefore?: number;
  late?: boolean;
  error?: string;
  /** An automatic reply (a peer away): no one answers it with another. */
  autoReply?: boolean;
  /** A file offer or its outcome (then `text` is the line a person reads). */
  files?: FilesNote;
  /**
   * The group it was written to (see protocol/groups.ts); `change` on the
   * messages that changed its members.
   */
  group?: { id: string; name: string; change?: "create" | "add" | "leave" };
  /**
   * IP Messenger's sealed message: one received shows no text until opened
   * (`POST /messages/open`, which tells its sender); one sent is opened
   * when its reader's client says so.
   */
  sealed?: { opened: boolean };
  /**
   * true: it went end-to-end encrypted; false: in the clear (a lanchat peer
   * of a version before end-to-end encryption, or IP Messenger); absent: not
   * known (stored before this version, or not sent yet).
   */
  encrypted?: boolean;
  /** A message this node wrote to a group: each member's copy (status and when it was read). */
  recipients?: { id: string; name: string; status: StoredMessage["status"]; readAt?: string }[];
  /** The id of the message this one answers. */
  replyTo?: string;
  /** That message, as it stands now (absent when it is not here): its text cut to 200 characters. */
  quote?: { id: string; text: string; direction: "in" | "out"; deleted?: true };
  /** When its sender last edited it (ms since the epoch, by the sender's clock). */
  editedAt?: number;
  /** When its sender deleted it; `text` is then "". */
  deletedAt?: number;
}

/** The outcome of looking a peer up by what a user typed. */
export type PeerLookup =
  | { ok: true; peer: { id: string; name: string; hostname: string; online: boolean } }
  | {
    ok: false;
    reason: "unknown" | "ambiguous" | "conflict";
    candidates: { id: string; name: string; hostname: string; online: boolean; trust?: Pin["trust"] }[];
  };
