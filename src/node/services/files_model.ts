/**
 * What the file service's parts share: a transfer as kept and stored, what
 * the service needs from the daemon, the errors it answers with, the
 * counters, small helpers for the disk (free names, whole writes, SHA-256 of a file) and the
 * handshake (base64), and the host interface (files_state.ts implements it)
 * through which the IP Messenger side reaches the service's state.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { DaemonEvent, TransferJson } from "../../api/types.ts";
import { numbered } from "../../protocol/file_names.ts";
import { HttpError } from "../../api/request.ts";
import type { Logger } from "@logtape/logtape";
import type { ManifestEntry, TransferState } from "../../protocol/files.ts";
import { HEAD_BYTES, type ImageType } from "../../protocol/media_type.ts";
import type { NodeSigner } from "../../security/signing.ts";
import type { StaticIdentity } from "../../security/e2e_wire.ts";
import type { Store, StoredMessage } from "../../storage/store.ts";
import type { IpmsgAttachment } from "../../wire/ipmsg_files.ts";
import type { FileOptions } from "../options.ts";
import type { ServiceContext } from "../service.ts";
import type { IpmsgEncoding } from "../../wire/ipmsg.ts";

/** The sender as the request needs it. */
export interface IpmsgSender {
  address: string;
  port: number;
  encoding: IpmsgEncoding;
  /** Its version field: iptux wants FILEATTACHOPT on GETFILEDATA, as it sends it. */
  version: string;
}

/**
 * Modes of what a transfer writes: folders the daemon creates 0700 and files 0600, whatever the umask, so that on a
 * shared host other users cannot read what was received (an existing download folder keeps its own mode).
 */
export const PRIVATE_DIR = 0o700;
export const PRIVATE_FILE = 0o600;

/** How long a connection may take to authenticate (or, for IP Messenger, to say what it wants). */
export const HANDSHAKE_MS = 10_000;

/** The key of a transfer in the service's map: an offer id is the same on both sides. */
export function transferKey(direction: string, id: string): string {
  return `${direction}:${id}`;
}

/** A file of a transfer, as stored. */
export interface TransferFile extends ManifestEntry {
  /** Outgoing: the file served. */
  source?: string;
  /** Incoming: where it goes, relative to the transfer's folder; set once it is done, its final name. */
  dest?: string;
  done?: boolean;
  /** Incoming: fetched once more after a SHA-256 mismatch (a second one fails the transfer). */
  retried?: boolean;
  /** Incoming: why this file could not be written (the others of the offer still come). */
  failed?: string;
  /** Incoming: it failed because it changed or went at the sender before it came (not a write that failed here). */
  gone?: boolean;
}

/** A picture among a transfer's files (node/services/files_images.ts): `n` its index in them. */
export interface ImageEntry {
  n: number;
  name: string;
  type: ImageType;
  size: number;
  /** In pixels, as its header says (absent when it does not). */
  width?: number;
  height?: number;
}

/** A transfer, either way. */
export interface Transfer {
  id: string;
  direction: "in" | "out";
  peer: string;
  state: TransferState;
  createdAt: number;
  updatedAt: number;
  expires: number;
  count: number;
  bytes: number;
  names: string[];
  /** SHA-256 of the manifest. */
  manifest: string;
  /**
   * Outgoing: the message that carries the offer (delivered: the state
   * becomes "offered"). Incoming from an IP Messenger user: the message
   * the files came with.
   */
  message?: string;
  /** Outgoing, sent from the web page: the staging folder its upload went to, removed once the transfer ends. */
  staged?: string;
  /**
   * Incoming: accepted without asking by the auto-accept-images setting (with its `maxBytes` then): every file of
   * its manifest must be a picture by name, place and size, and by its first bytes once it came (files_fetch.ts).
   */
  autoAccepted?: { maxBytes: number };
  /** Incoming: the folder the files go in. */
  dir?: string;
  /** The pictures among its files that are readable here (files_images.ts). */
  images?: ImageEntry[];
  error?: string;
  /** Bytes done (incoming: written and checked or in a .part; outgoing: served). */
  transferred: number;
  /** Files done. */
  filesDone: number;
  /**
   * Whether the file stream was end-to-end encrypted: true while every
   * connection of it was, false once one was not (a previous-version peer);
   * unset before the first.
   */
  encrypted?: boolean;
  /** Incoming: attempts in a row that got nothing from a sender that is online (too many: failed). */
  tries?: number;
  /** Incoming, not stored: bytes came in this attempt (set where they are written, not by a progress update). */
  progressed?: boolean;
  /** An IP Messenger offer: its packet number, its attachments, where each went, which are done. */
  ipmsg?: {
    packetNo: number;
    files: IpmsgAttachment[];
    dest: (string | null)[];
    done: boolean[];
    /** Incoming: why each attachment that could not be written failed (the others still come). */
    failed?: (string | null)[];
    /** Incoming: each file's SHA-256 taken when it came (up to 64 MiB; IP Messenger sends none), to serve it by. */
    sha256?: (string | null)[];
    /** Outgoing: the file or folder each attachment is. */
    sources?: string[];
  };
  // Not stored:
  files?: TransferFile[];
  rate?: number;
  lastProgressAt?: number;
  rateSample?: { at: number; bytes: number };
  abort?: AbortController;
  retryMs?: number;
  retryTimer?: ReturnType<typeof setTimeout>;
  /** When progress was last stored (`transferred` is stored at least every second while bytes come). */
  savedAt?: number;
}

/** What the service needs from the rest of the daemon. */
export interface FilesDeps {
  store: Store;
  self: { id: string; publicKey: Uint8Array };
  signer: NodeSigner;
  /** This node's X25519 static key and its binding to the node key: the file stream's end-to-end encryption. */
  e2e?: StaticIdentity;
  /**
   * The static X25519 key a peer's hello carries (its `nk`), or undefined for
   * a previous-version peer: then the stream is not end-to-end encrypted
   * (the transfer is marked so), and refused with {@link requireEncryption}.
   */
  peerStaticKey?(id: string): Uint8Array | undefined;
  /** --require-encryption: no file stream without end-to-end encryption, either way (default false). */
  requireEncryption?: boolean;
  networkKey?: Uint8Array;
  options: FileOptions & { downloads: string };
  /** Sends a text message (durable when the promise resolves). */
  send(to: string, text: string): Promise<StoredMessage>;
  /** Where a lanchat peer is now (its unicast address: the file port is the same number), if online. */
  addressOf(peer: string): { address: string; port: number } | undefined;
  /** Whether an address is a known peer's (its connections may take the file-port slots kept for peers). */
  knownAddress?(address: string): boolean;
  /** Whether a peer is a lanchat peer (file transfer to IP Messenger users is not built yet). */
  isLanchat(peer: string): boolean;
  trusted(peer: string): boolean;
  peerName(peer: string): string;
  /** TCP, through the driver's io. */
  listenTcp(hostname: string, port: number): Deno.TcpListener;
  connectTcp(hostname: string, port: number): Promise<Deno.TcpConn>;
  /** The TCP port to serve on (the unicast UDP port's number). */
  port: number;
  /** Where to listen for lanchat peers: `::` (dual-stack) with IPv6, else `0.0.0.0` (the default). */
  listenHost?: string;
  /** Where files sent from the web page wait while offered (in the data directory). */
  uploads: string;
  /** With --ipmsg: IP Messenger users as senders of files. */
  ipmsg?: {
    peer(id: string): IpmsgSender | undefined;
    self(): { user: string; host: string };
    /** Tells a sender its offer is not wanted (RELEASEFILES). */
    release(peer: string, packetNo: number): void;
    /** Sends a message offering files; its packet number names them in requests. */
    offer(to: string, text: string, attach: string): { message: StoredMessage; packetNo: number };
    /** Gives a message re-queued from the outbox at start back its files. */
    reattach(messageId: string, packetNo: number, attach: string): void;
    /** The TCP port IP Messenger users fetch files from (the IP Messenger UDP port's number). */
    port: number;
  };
}

/** Raised for a request a user can fix (a missing path, an unknown transfer), with the HTTP status it answers. */
export class FileError extends HttpError {
  override name = "FileError";
  constructor(message: string, status = 400) {
    super(status, message);
  }
}

/**
 * One file of an offer cannot be written here (a name the file system
 * refuses, a file too large for it, a folder stream too deep): that file
 * fails with this reason (the service puts the file's name before it), and
 * the others of the offer still come.
 */
export class OneFileError extends Error {
  override name = "OneFileError";
}

/**
 * Runs a file system step of receiving one file: its failure is that
 * file's ({@link OneFileError}: "cannot be written: why", or "`inner`
 * cannot be written: why" for a name inside a folder being received).
 */
export async function onDisk<T>(step: () => Promise<T>, inner?: string): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof OneFileError) throw e;
    throw new OneFileError(`${inner ? `${inner} ` : ""}cannot be written: ${(e as Error).message}`);
  }
}

/** Why an offer failed when some of its files could not be written (the others arrived). */
export function partlyWritten(failed: string[], count: number): string {
  const head = failed.length === 1 ? "1 file" : `${failed.length} files`;
  return `${head} of ${count} could not be written (the others arrived): ${failed.slice(0, 3).join("; ")}${
    failed.length > 3 ? "; …" : ""
  }`;
}

/** The file service's counters (in /status as `files`). */
export function fileCounters() {
  return {
    offersSent: 0,
    offersReceived: 0,
    filesReceived: 0,
    filesServed: 0,
    bytesReceived: 0,
    bytesServed: 0,
    corrupted: 0,
    refusedFetches: 0,
    resumed: 0,
  };
}
export type FileCounters = ReturnType<typeof fileCounters>;

/** The file service's state and actions, as its IP Messenger side uses them. */
export interface FilesHost {
  readonly d: FilesDeps;
  readonly ctx: ServiceContext;
  readonly log: Logger;
  readonly transfers: Map<string, Transfer>;
  readonly counters: FileCounters;
  wallNow(): number;
  save(t: Transfer): void;
  emit(type: Extract<DaemonEvent, { transfer: TransferJson }>["type"], t: Transfer): void;
  progress(t: Transfer, force?: boolean): void;
  end(t: Transfer, state: TransferState, error?: string): void;
  /** A fetch got through: active again, the last attempt's error gone. */
  activate(t: Transfer): void;
  json(t: Transfer): TransferJson;
  accept(id: string, dir?: string): TransferJson;
}

/** Writes all of `bytes` (a write may take only part). */
export async function writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let w = 0;
  while (w < bytes.length) w += await f.write(bytes.subarray(w));
}

/** Whether anything (a file, a folder, a link) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A free name in `dir` for `name`: `name (1).ext` and so on. `withPart`: also
 * free of `NAME.part` (choosing where a download starts; not when renaming
 * its own .part into place).
 */
export async function freeName(dir: string, name: string, withPart = true): Promise<string> {
  let out = name;
  const taken = async (n: string) => await exists(`${dir}/${n}`) || (withPart && await exists(`${dir}/${n}.part`));
  for (let n = 1; await taken(out); n++) out = numbered(name, n);
  return out;
}

/** Bytes as base64 (the keys, nonces and signatures of the file port's handshake). */
export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

/** A base64 field of a handshake frame; a `TypeError` for anything else. */
export function unb64(v: unknown): Uint8Array {
  if (typeof v !== "string" || v.length > 200) throw new TypeError("not base64");
  return new Uint8Array(Buffer.from(v, "base64"));
}

/**
 * SHA-256 of a file, hex, read 1 MiB at a time (the event loop is not held);
 * `head` gets its first bytes (what a picture is told by). With `expect`
 * (the size and time an offer will state), exactly that many bytes are
 * hashed, and a file that is not that size or time any more, before or
 * after it was read, is a {@link SourceMoved}: its hash would not be of the
 * bytes offered.
 */
export async function hashFile(
  path: string,
  head?: (bytes: Uint8Array) => void,
  expect?: { size: number; mtime: number },
): Promise<string> {
  using f = await Deno.open(path, { read: true });
  const sha256 = await hashOpen(f, head, expect?.size);
  if (expect) {
    const now = await f.stat();
    if (now.size !== expect.size || (now.mtime?.getTime() ?? 0) !== expect.mtime) {
      throw new SourceMoved(`it changed while it was read (${expect.size} bytes before, ${now.size} after)`);
    }
  }
  return sha256;
}

/** A file being read for an offer changed under the reader (grew, shrank or was written). */
export class SourceMoved extends Error {
  override name = "SourceMoved";
}

/** SHA-256 of an open file from where it is, as {@link hashFile}; with `size`, exactly that many bytes. */
export async function hashOpen(f: Deno.FsFile, head?: (bytes: Uint8Array) => void, size?: number): Promise<string> {
  const hash = createHash("sha256");
  const buf = new Uint8Array(1024 * 1024);
  let first = true;
  let got = 0;
  for (;;) {
    const want = size === undefined ? buf.length : Math.min(buf.length, size - got);
    // One byte past the size: a file that grew is told, not hashed short.
    const n = await f.read(want > 0 ? buf.subarray(0, want) : buf.subarray(0, 1));
    if (n === null) break;
    if (want === 0) throw new SourceMoved(`it grew while it was read (past ${size} bytes)`);
    if (first) head?.(buf.slice(0, Math.min(n, HEAD_BYTES)));
    first = false;
    hash.update(buf.subarray(0, n));
    got += n;
  }
  if (size !== undefined && got < size) {
    throw new SourceMoved(`it ended early while it was read (${got} of ${size} bytes)`);
  }
  return hash.digest("hex");
}
