/**
 * What the HTTP API needs from the daemon: the {@link Api} interface the
 * routes are written against (`Daemon.api()` implements it, tests fake it),
 * with its group and file-transfer parts.
 *
 * @module
 */
import type {
  DaemonEvent,
  GroupJson,
  GroupLookup,
  MessageJson,
  PeerLookup,
  TransferJson,
  VerifyJson,
} from "./types.ts";
import type { HistoryQuery, Pin, SearchResult, StoredMessage } from "../storage/store.ts";
import type { HttpError } from "./request.ts";
import type { DiagnosticsJson } from "./diagnostics_json.ts";

/** What the HTTP layer needs from the daemon. */
export interface Api {
  /** The roster, already serialized as pretty JSON with a trailing newline, UTF-8. */
  peersBody(): Uint8Array;
  /** The roster, then peers seen before that are offline. */
  allPeers(): unknown[];
  status(): unknown;
  /** What is wrong that a user must act on, in words; none when healthy. */
  problems?(): string[];
  metrics(): string;
  lookupPeer(query: string): PeerLookup;
  /** Peers in the roster now. */
  onlinePeers(): { id: string; name: string }[];
  /** Stores a message to send (with `replyTo`: answering that message); resolves once it is durable (committed). */
  sendMessage(to: string, text: string, replyTo?: string): Promise<StoredMessage>;
  /** Stores messages under one commit: per message, the stored message or why it was not stored. */
  sendMessages(items: { to: string; text: string }[]): Promise<(StoredMessage | Error)[]>;
  waitDelivered(id: string, timeoutMs: number): Promise<StoredMessage | undefined>;
  /** A page of history, oldest first (see Store.history). */
  history(q: HistoryQuery): StoredMessage[];
  /** The first and last cursor of the page `history(q)` would give (see Store.historyRange). */
  historyRange(q: HistoryQuery): { first: number; last: number; count: number } | undefined;
  /** The first cursor of what entered history at or after `time` (ms since the epoch). */
  cursorAt(time: number): number;
  /** Messages containing a text, newest first (see Store.search). */
  search(q: { text: string; peer?: string; group?: string; before?: number; limit?: number }): SearchResult;
  messageJson(m: StoredMessage): MessageJson;
  onEvent(listener: (e: DaemonEvent) => void): () => void;
  /** Listeners {@link onEvent} holds now (each open event stream has one). */
  eventListeners?(): number;
  peerName(id: string): string;
  /** Confirms a peer's pinned key; throws RangeError when none is pinned. */
  trustPeer(id: string): Pin;
  /** Forgets a peer's pinned key; false when none was pinned. */
  forgetPeer(id: string): boolean;
  /** A peer's safety number and trust; an HttpError (404 no key pinned, 422 IP Messenger user) when none. */
  verifyPeer(id: string): VerifyJson;
  /** This node's presence: online, away or busy, with a note; sent to every peer at once. */
  setPresence(presence: "online" | "away" | "busy", note?: string): { presence: string; note?: string };
  /** Sends an IP Messenger user a sealed message; RangeError for a lanchat peer. */
  sendSealed(to: string, text: string): Promise<StoredMessage>;
  /** Opens a sealed message received (id or unique prefix): read, and its sender told; RangeError if none. */
  openSealed(id: string): StoredMessage;
  /** Marks what came from a peer in the direct conversation read up to a cursor (default: all); a read receipt tells the peer. */
  markRead(peer: string, upTo?: number): number;
  /** File transfer; absent in a daemon without it. */
  files?: FilesApi;
  /** Group conversations. */
  groups: GroupsApi;
  /** Replies, edits and deletions; absent in a daemon without them. */
  thread?: ThreadApi;
  /** What `lanchat doctor` reads (`GET /diagnostics`); absent in a daemon that keeps none. */
  diagnostics?(): DiagnosticsJson;
  /** Compacts the heap now; undefined when the daemon cannot (V8's gc not exposed). */
  compactMemory(): { ok: true } | { ok: false; retryAfterMs: number } | undefined;
}

/** Group conversations. RangeError: refused (400); StoreError: not stored (507). */
export interface GroupsApi {
  list(): GroupJson[];
  lookup(query: string): GroupLookup;
  /** GroupNameTakenError: this node is in a group of that name already (409), unless `sameName`. */
  create(
    name: string,
    members: string[],
    options?: { sameName?: boolean },
  ): Promise<{ group: GroupJson; message: StoredMessage }>;
  add(id: string, members: string[]): Promise<{ group: GroupJson; message: StoredMessage }>;
  leave(id: string): Promise<{ group: GroupJson; message: StoredMessage }>;
  send(id: string, text: string, replyTo?: string): Promise<StoredMessage>;
  markRead(id: string, upTo?: number): number;
}

/** Replies, edits and deletions. Errors are {@link HttpError}s with the status to answer. */
export interface ThreadApi {
  /** The full id of the message a reply in that conversation answers (400 when it is not one of its). */
  replyTarget(replyTo: string, place: { peer: string } | { group: string }): string;
  /** Edits a message of this node's (404 unknown, 403 not its own or failed, 409 deleted). */
  edit(id: string, text: string): Promise<StoredMessage>;
  /** Deletes a message of this node's (as edit). */
  delete(id: string): Promise<StoredMessage>;
}

/** File transfer, both ways. Errors are {@link HttpError}s with the status to answer. */
export interface FilesApi {
  /** Offers files and folders (paths on the daemon's host) to a peer; resolves once hashed and stored. */
  offer(to: string, paths: string[]): Promise<TransferJson>;
  /** Offers a file whose bytes come in the request (from the web page), staged in the data directory. */
  offerUpload(to: string, name: string, size: number, body: ReadableStream<Uint8Array>): Promise<TransferJson>;
  /** Offers the same paths to each member of a group (one transfer each); per member, the transfer or why not. */
  offerToEach?(members: string[], paths: string[]): Promise<(TransferJson | HttpError)[]>;
  /** As {@link offerUpload}, to each member of a group, staged once. */
  offerUploadToEach?(
    members: string[],
    name: string,
    size: number,
    body: ReadableStream<Uint8Array>,
  ): Promise<(TransferJson | HttpError)[]>;
  list(): TransferJson[];
  /** A transfer by id or id prefix. */
  get(id: string): TransferJson;
  accept(id: string, dir?: string): TransferJson;
  refuse(id: string): TransferJson;
  cancel(id: string): TransferJson;
  /**
   * File `n` of a transfer, checked to be the one received or offered, open
   * at its start (the caller closes it), with the type its first bytes say.
   */
  openFile(id: string, n: number): Promise<ServedFile>;
  /** Offers of pictures from verified peers accepted without asking (kept across restarts). */
  readonly autoAcceptImages: { enabled: boolean; maxBytes: number };
  setAutoAcceptImages(v: { enabled: boolean; maxBytes: number }): { enabled: boolean; maxBytes: number };
}

/** A file of a transfer ready to be served. */
export interface ServedFile {
  /** Open at its start; closed by whoever serves it. */
  file: Deno.FsFile;
  size: number;
  /** image/png, image/jpeg, image/gif, image/webp, or application/octet-stream. */
  type: string;
  /** The `Content-Disposition` header. */
  disposition: string;
  etag: string;
}
