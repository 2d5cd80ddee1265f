/**
 * File transfer between lanchat peers, as a service.
 *
 * Sending: `offer()` walks the paths (folders recursively; symbolic links
 * are not followed), hashes every file (SHA-256) and sends the offer as a
 * reliable message (protocol/files.ts), so it waits in the outbox for a
 * peer that is offline and survives restarts. Then it serves the files on
 * TCP, on the port number of the unicast UDP socket, to that peer alone.
 *
 * Receiving: an offer waits to be accepted (or is accepted at once, by
 * `--accept-files`). Accepted, the receiver pulls: it connects, proves with
 * its node key that it is the peer the offer was made to, fetches the
 * manifest (checked against the SHA-256 in the offer), then each file into
 * `NAME.part` from the offset it already has, checks the SHA-256 and
 * renames it. A broken connection (a killed daemon on either side) is
 * retried with a back-off and resumes where the `.part` file ends.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { Buffer } from "node:buffer";
import { statfsSync } from "node:fs";
import type { DaemonEvent, TransferJson } from "../../api/types.ts";
import { logger } from "../../common/log.ts";
import { StreamCipher, streamKey } from "../../security/file_cipher.ts";
import { nodeIdOf, SignatureChecker } from "../../security/signing.ts";
import { DATA_CHUNK, FrameType, MAX_CONTROL_JSON, MAX_FRAME_BODY, parseControl } from "../../wire/file_frames.ts";
import { collisionKey, safeName, safePaths } from "../../protocol/file_names.ts";
import {
  fetchProof,
  type FilesNote,
  finished,
  formatBytes,
  manifestBytes,
  MAX_NOTE_NAMES,
  MAX_OFFER_FILES,
  mayFetch,
  noteText,
  OFFER_TTL_MS,
  type OfferNote,
  parseManifest,
  parseNote,
  type TransferState,
} from "../../protocol/files.ts";
import { formatAttachments } from "../../wire/ipmsg_files.ts";
import type { Service, ServiceContext } from "../service.ts";
import { NOTHING } from "../service.ts";
import { FrameConn, RemoteError, StreamError } from "./file_stream.ts";
import { Admission, PREAUTH_MS, type Refusal, REFUSAL_HELP, type Ticket } from "./file_admission.ts";
import {
  fileCounters,
  FileError,
  type FilesDeps,
  freeName,
  onDisk,
  OneFileError,
  partlyWritten,
  type Transfer,
  type TransferFile,
  transferKey,
  writeAll,
} from "./files_model.ts";
import type { IpmsgFiles } from "./files_ipmsg.ts";

export { FileError, type FilesDeps };

/** Most file-stream connections served at once; more are refused. */
export const MAX_SERVED_CONNECTIONS = 32;
/** Most transfers fetching at once; the others wait their turn. */
export const MAX_ACTIVE_FETCHES = 4;
/** Progress events per transfer at most this often. */
const PROGRESS_EVERY_MS = 250;
/** Back-off between attempts to reach a sender, doubling up to the maximum (30 times the first). */
const RETRY_FIRST_MS = 2_000;
const RETRY_MAX_MS = 60_000;
/**
 * Attempts in a row that get nothing from a sender that is online before
 * the transfer fails: a sender that restarted without the offer (iptux
 * closes the connection at once) is given up on, not retried for ever.
 */
export const MAX_FRUITLESS_TRIES = 6;
/** `transferred` is stored at least this often while bytes come (what a restart after kill -9 shows). */
const SAVE_EVERY_MS = 1_000;
/** Finished transfers listed (the oldest beyond it are forgotten). */
const KEEP_FINISHED = 500;

export class FilesService implements Service {
  readonly name = "files";
  #d: FilesDeps;
  #ctx!: ServiceContext;
  #log = logger("files");
  #transfers = new Map<string, Transfer>();
  #events: DaemonEvent[] = [];
  #listener: Deno.TcpListener | undefined;
  #served = new Set<FrameConn>();
  #connections = 0;
  #ipmsgListener: Deno.TcpListener | undefined;
  #fetching = 0;
  #stopped = false;
  #checker = new SignatureChecker();
  /** Packet numbers of our IP Messenger file requests. */
  #packetNo = Math.floor(Date.now() / 1000);
  counters = fileCounters();
  /** Who may hold a slot on the file port before authenticating (file_admission.ts). */
  #admission: Admission;

  /** The IP Messenger side, loaded with --ipmsg only (its GBK codec costs every daemon ~1.3 MB). */
  #ipmsg: IpmsgFiles | undefined;

  constructor(deps: FilesDeps) {
    this.#d = deps;
    this.#admission = new Admission(MAX_SERVED_CONNECTIONS, (address) => deps.knownAddress?.(address) ?? false);
  }

  async #loadIpmsg(): Promise<void> {
    const { IpmsgFiles } = await import("./files_ipmsg.ts");
    const ctx = () => this.#ctx;
    this.#ipmsg = new IpmsgFiles({
      d: this.#d,
      get ctx() {
        return ctx();
      },
      log: this.#log,
      transfers: this.#transfers,
      counters: this.counters,
      wallNow: () => this.#wallNow(),
      save: (t) => this.#save(t),
      emit: (type, t) => this.#emit(type, t),
      progress: (t, force) => this.#progress(t, force),
      end: (t, state, error) => this.#end(t, state, error),
      activate: (t) => this.#activate(t),
      json: (t) => this.json(t),
      accept: (id, dir) => this.accept(id, dir),
    });
  }

  /** Wall-clock time now, in whole ms (notes carry integers). */
  #wallNow(): number {
    return Math.round(this.#ctx.wall(this.#ctx.io.now()));
  }

  static key(direction: string, id: string): string {
    return transferKey(direction, id);
  }

  async start(ctx: ServiceContext): Promise<void> {
    this.#ctx = ctx;
    if (this.#d.ipmsg) await this.#loadIpmsg();
    for (const row of this.#d.store.transfers()) {
      const t = { ...JSON.parse(row.json), state: row.state } as Transfer;
      this.#transfers.set(FilesService.key(t.direction, t.id), t);
    }
    this.#prune();
    try {
      this.#listener = this.#d.listenTcp("0.0.0.0", this.#d.port);
      void this.#acceptLoop(this.#listener, (conn) => {
        const ticket = this.#admission.admit((conn.remoteAddr as Deno.NetAddr).hostname, this.#connections);
        if (!ticket) return;
        return () => this.#serveConn(conn, ticket);
      });
    } catch (e) {
      this.#log.warn("Cannot serve files: {error}; peers cannot fetch what this node offers", {
        error: (e as Error).message,
      });
    }
    if (this.#d.ipmsg) {
      try {
        const l = this.#ipmsgListener = this.#d.listenTcp("0.0.0.0", this.#d.ipmsg.port);
        void this.#acceptLoop(
          l,
          () => this.#connections < MAX_SERVED_CONNECTIONS ? (conn) => this.#ipmsg!.serve(conn) : undefined,
        );
      } catch (e) {
        this.#log.warn("Cannot serve files to IP Messenger users: {error}", { error: (e as Error).message });
      }
      // Offers to IP Messenger users still in the outbox get their files back.
      for (const t of this.#transfers.values()) {
        if (t.direction === "out" && t.ipmsg && t.message && t.state === "waiting") {
          this.#d.ipmsg.reattach(t.message, t.ipmsg.packetNo, formatAttachments(t.ipmsg.files));
        }
      }
    }
    // Incoming transfers that were under way when the daemon stopped go on, from what is on disk.
    for (const t of this.#transfers.values()) {
      if (t.direction === "in" && (t.state === "active" || t.state === "waiting" || t.state === "paused")) {
        t.transferred = await this.#onDisk(t);
        this.#schedule(t, 0);
      }
    }
  }

  // ---- the API ----

  list(): TransferJson[] {
    return [...this.#transfers.values()].sort((a, b) => b.createdAt - a.createdAt).map((t) => this.json(t));
  }

  /** A transfer by id (or id prefix of at least 4 characters); outgoing first when both exist. */
  find(id: string): Transfer {
    const all = [...this.#transfers.values()].filter((t) => t.id === id || (id.length >= 4 && t.id.startsWith(id)));
    if (all.length === 0) throw new FileError(`No transfer ${id}: see lanchat transfers`, 404);
    const ids = new Set(all.map((t) => t.id));
    if (ids.size > 1) throw new FileError(`${id} matches ${ids.size} transfers: give more of the id`, 409);
    return all.find((t) => t.direction === "out") ?? all[0]!;
  }

  get(id: string): TransferJson {
    return this.json(this.find(id));
  }

  json(t: Transfer): TransferJson {
    const eta = t.state === "active" && t.rate && t.rate > 0
      ? Math.round((t.bytes - t.transferred) / t.rate)
      : undefined;
    return {
      id: t.id,
      direction: t.direction,
      peer: { id: t.peer, name: this.#d.peerName(t.peer) },
      state: t.state,
      files: t.count,
      filesDone: t.filesDone,
      bytes: t.bytes,
      transferred: t.transferred,
      check: t.ipmsg ? "size" : "sha256",
      ...(t.state === "active" && t.rate !== undefined ? { rate: Math.round(t.rate) } : {}),
      ...(eta !== undefined ? { etaSeconds: eta } : {}),
      names: t.names,
      createdAt: new Date(t.createdAt).toISOString(),
      updatedAt: new Date(t.updatedAt).toISOString(),
      expires: new Date(t.expires).toISOString(),
      ...(t.dir ? { dir: t.dir } : {}),
      ...(t.error ? { error: t.error } : {}),
    };
  }

  /**
   * Offers files and folders (paths on this host) to a peer. Resolves once
   * every file is hashed and the offer is stored to be sent.
   *
   * @throws {FileError} for a path that does not exist or cannot be read, or a peer this cannot send files to.
   */
  /**
   * Offers a file sent from the web page (which has bytes, not a path on
   * this host): the body is written to a staging folder in the data
   * directory, then offered like any file; the folder goes once the
   * transfer ends.
   *
   * @throws {FileError} for a size that does not match what came, or that would not fit.
   */
  async offerUpload(to: string, name: string, size: number, body: ReadableStream<Uint8Array>): Promise<TransferJson> {
    const room = this.#room(this.#d.uploads, size);
    if (room) throw new FileError(`Cannot take this file: ${room}`, 507);
    const dir = `${this.#d.uploads}/${randomBytes(8).toString("hex")}`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const path = `${dir}/${safeName(name)}`;
    try {
      let got = 0;
      {
        using out = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
        for await (const chunk of body) {
          got += chunk.length;
          if (got > size) throw new FileError(`More than the ${size} bytes announced`);
          await writeAll(out, chunk);
        }
      }
      if (got !== size) throw new FileError(`The upload ended after ${got} of ${size} bytes`);
      const json = await this.offer(to, [path]);
      const t = this.#transfers.get(transferKey("out", json.id))!;
      t.staged = dir;
      this.#save(t);
      return json;
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  async offer(to: string, paths: string[]): Promise<TransferJson> {
    if (!this.#d.isLanchat(to)) {
      if (!this.#d.ipmsg) {
        throw new FileError(
          `${this.#d.peerName(to)} is an IP Messenger user: start the daemon with --ipmsg to send to it`,
        );
      }
      return await this.#ipmsg!.offer(to, paths);
    }
    if (paths.length === 0) throw new FileError("Nothing to send: give at least one path");
    const files: TransferFile[] = [];
    const names: string[] = [];
    let skipped = 0;
    for (const p of paths) {
      let info: Deno.FileInfo;
      try {
        info = await Deno.lstat(p);
      } catch (e) {
        throw new FileError(
          `Cannot send ${p}: ${e instanceof Deno.errors.NotFound ? "no such file or folder" : (e as Error).message}`,
        );
      }
      const base = p.replace(/\/+$/, "").split("/").pop() || p;
      if (info.isSymlink) {
        // A link given by name is what the user means: follow it (only links inside folders are not followed).
        info = await Deno.stat(p).catch(() => {
          throw new FileError(`Cannot send ${p}: it is a symbolic link to nothing`);
        });
      }
      if (info.isDirectory) {
        names.push(`${base}/`);
        skipped += await this.#walk(p, base, files);
      } else if (info.isFile) {
        names.push(base);
        files.push({ path: base, size: info.size, mtime: info.mtime?.getTime() ?? 0, sha256: "", source: p });
      } else {
        throw new FileError(`Cannot send ${p}: not a file or folder`);
      }
      if (files.length > MAX_OFFER_FILES) {
        throw new FileError(`Too many files: at most ${MAX_OFFER_FILES} in one offer`);
      }
    }
    for (const f of files) {
      try {
        f.sha256 = await hashFile(f.source!);
      } catch (e) {
        throw new FileError(`Cannot read ${f.source}: ${(e as Error).message}`);
      }
    }
    const now = this.#wallNow();
    const entries = files.map(({ path, size, mtime, sha256 }) => ({ path, size, mtime, sha256 }));
    const manifest = createHash("sha256").update(manifestBytes(entries)).digest("hex");
    const t: Transfer = {
      id: randomBytes(16).toString("hex"),
      direction: "out",
      peer: to,
      state: "waiting",
      createdAt: now,
      updatedAt: now,
      expires: now + OFFER_TTL_MS,
      count: files.length,
      bytes: files.reduce((n, f) => n + f.size, 0),
      names: names.slice(0, MAX_NOTE_NAMES),
      manifest,
      transferred: 0,
      filesDone: 0,
      files,
    };
    const note: OfferNote = {
      kind: "offer",
      offer: t.id,
      count: t.count,
      bytes: t.bytes,
      names: t.names,
      manifest,
      expires: t.expires,
    };
    this.#d.store.saveTransferFiles(t.id, "out", files.map((f, idx) => ({ idx, json: JSON.stringify(f) })));
    this.#transfers.set(FilesService.key("out", t.id), t);
    const m = await this.#d.send(to, noteText(note));
    t.message = m.id;
    if (m.status === "delivered") t.state = "offered";
    this.#save(t);
    this.counters.offersSent++;
    this.#log.info("Offered {count} files ({size}) to {name}{skipped}", {
      count: t.count,
      size: formatBytes(t.bytes),
      name: this.#d.peerName(to),
      skipped: skipped ? `; ${skipped} symbolic links inside folders were left out` : "",
      offer: t.id,
    });
    this.#emit("transfer-updated", t);
    return this.json(t);
  }

  /** Files under a folder, depth first; symbolic links are left out (counted). */
  async #walk(dir: string, rel: string, out: TransferFile[]): Promise<number> {
    let skipped = 0;
    const entries: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
    entries.sort((a, b) => a.name < b.name ? -1 : 1);
    for (const e of entries) {
      const path = `${dir}/${e.name}`;
      if (e.isSymlink) {
        skipped++;
      } else if (e.isDirectory) {
        skipped += await this.#walk(path, `${rel}/${e.name}`, out);
      } else if (e.isFile) {
        const info = await Deno.stat(path);
        out.push({
          path: `${rel}/${e.name}`,
          size: info.size,
          mtime: info.mtime?.getTime() ?? 0,
          sha256: "",
          source: path,
        });
        if (out.length > MAX_OFFER_FILES) return skipped;
      }
    }
    return skipped;
  }

  /** Accepts an incoming offer; its files go to `dir` (default: the downloads folder). */
  accept(id: string, dir?: string): TransferJson {
    const t = this.find(id);
    if (t.direction !== "in") {
      throw new FileError(`Transfer ${t.id} is one this node offered: only its receiver accepts it`, 409);
    }
    if (t.state !== "offered") throw new FileError(`Transfer ${t.id} is ${t.state}, not waiting to be accepted`, 409);
    const target = dir ?? this.#d.options.downloads;
    const room = this.#room(target, t.bytes);
    if (room) {
      if (t.ipmsg) this.#d.ipmsg?.release(t.peer, t.ipmsg.packetNo);
      this.#end(t, "refused", room);
      if (!t.ipmsg) void this.#note(t, { kind: "refused", offer: t.id, reason: room });
      throw new FileError(`Refused: ${room}`, 507);
    }
    t.dir = target;
    t.state = "waiting";
    this.#save(t);
    this.#emit("transfer-updated", t);
    this.#schedule(t, 0);
    return this.json(t);
  }

  /** Bytes of an incoming transfer on disk: the files done, and what each `.part` holds. */
  async #onDisk(t: Transfer): Promise<number> {
    const size = async (path: string, max: number) => {
      try {
        const info = await Deno.stat(path);
        return info.isFile ? Math.min(max, info.size) : 0;
      } catch {
        return 0;
      }
    };
    let n = 0;
    if (t.ipmsg) {
      for (const [i, f] of t.ipmsg.files.entries()) {
        const d = t.ipmsg.dest[i];
        // A folder comes whole each time: what its .part/ holds is fetched again.
        n += t.ipmsg.done[i] ? f.size : d && f.kind === 1 ? await size(`${t.dir}/${d}.part`, f.size) : 0;
      }
    } else if (t.dir) {
      for (const f of this.#files(t)) {
        n += f.done ? f.size : f.dest && !f.failed ? await size(`${t.dir}/${f.dest}.part`, f.size) : 0;
      }
    }
    return n;
  }

  refuse(id: string): TransferJson {
    const t = this.find(id);
    if (t.direction !== "in") throw new FileError(`Transfer ${t.id} is one this node offered: cancel it instead`, 409);
    if (finished(t.state)) throw new FileError(`Transfer ${t.id} is already ${t.state}`, 409);
    this.#stopFetch(t);
    if (t.ipmsg) this.#d.ipmsg?.release(t.peer, t.ipmsg.packetNo);
    this.#end(t, "refused");
    if (!t.ipmsg) void this.#note(t, { kind: "refused", offer: t.id });
    return this.json(t);
  }

  cancel(id: string): TransferJson {
    const t = this.find(id);
    if (finished(t.state)) throw new FileError(`Transfer ${t.id} is already ${t.state}`, 409);
    this.#stopFetch(t);
    if (t.ipmsg) this.#d.ipmsg?.release(t.peer, t.ipmsg.packetNo);
    this.#end(t, "cancelled");
    if (!t.ipmsg) void this.#note(t, { kind: "cancelled", offer: t.id });
    if (t.direction === "out") { for (const c of this.#served) if ((c as ServedConn).offer === t.id) c.close(); }
    return this.json(t);
  }

  /** Why `bytes` more would not fit in `dir` (keeping --keep-free), or undefined. */
  #room(dir: string, bytes: number): string | undefined {
    let probe = dir;
    for (;;) {
      try {
        const s = statfsSync(probe);
        const free = Number(s.bavail) * Number(s.bsize);
        const keep = this.#d.options.keepFreeBytes ?? 1024 ** 3;
        if (free - bytes < keep) {
          return `${formatBytes(bytes)} would not fit in ${dir} (${formatBytes(free)} free, ${
            formatBytes(keep)
          } kept free)`;
        }
        return undefined;
      } catch {
        const up = probe.replace(/\/[^/]*\/?$/, "");
        if (up === probe || up === "") return undefined;
        probe = up;
      }
    }
  }

  // ---- the bus ----

  onEvent(event: DaemonEvent, now: number): void {
    if (event.type === "ipmsg-files") return this.#ipmsg?.onOffer(event.peer.id, event.packetNo, event.files);
    if (event.type === "ipmsg-released") {
      for (const t of this.#transfers.values()) {
        if (
          t.direction === "out" && t.peer === event.peerId && t.ipmsg?.packetNo === event.packetNo &&
          !finished(t.state)
        ) this.#end(t, "refused", `refused by ${this.#d.peerName(t.peer)}`);
      }
      return;
    }
    if (event.type === "message" && event.message.direction === "in") {
      const note = parseNote(event.message.text);
      if (note) this.#onNote(event.message.peer, note, now);
    } else if (event.type === "delivered" || event.type === "failed") {
      for (const t of this.#transfers.values()) {
        if (t.direction !== "out" || t.message !== event.message.id || t.state !== "waiting") continue;
        if (event.type === "delivered") {
          t.state = "offered";
          this.#save(t);
          this.#emit("transfer-updated", t);
        } else this.#end(t, "failed", `the offer could not be delivered: ${event.error}`);
      }
    } else if (event.type === "joined" || event.type === "restarted") {
      // A sender came back: try its transfers now rather than at the end of the back-off.
      for (const t of this.#transfers.values()) {
        const stalled = t.state === "waiting" || t.state === "paused";
        if (t.direction === "in" && t.peer === event.peer.id && stalled && !t.abort) this.#schedule(t, 0);
      }
    }
  }

  #onNote(peer: string, note: FilesNote, _now: number): void {
    if (note.kind === "offer") {
      const key = FilesService.key("in", note.offer);
      if (this.#transfers.has(key)) return;
      const wall = this.#wallNow();
      const t: Transfer = {
        id: note.offer,
        direction: "in",
        peer,
        state: "offered",
        createdAt: wall,
        updatedAt: wall,
        expires: note.expires,
        count: note.count,
        bytes: note.bytes,
        names: note.names,
        manifest: note.manifest,
        transferred: 0,
        filesDone: 0,
      };
      this.#transfers.set(key, t);
      this.counters.offersReceived++;
      this.#save(t);
      this.#emit("transfer-offered", t);
      this.#log.info("{name} offers {count} files ({size}): lanchat accept {id}", {
        name: this.#d.peerName(peer),
        count: t.count,
        size: formatBytes(t.bytes),
        id: t.id.slice(0, 8),
      });
      const policy = this.#d.options.accept ?? "ask";
      const small = t.bytes <= (this.#d.options.autoAcceptMaxBytes ?? 1024 ** 3);
      if (small && (policy === "always" || (policy === "trusted" && this.#d.trusted(peer)))) {
        try {
          this.accept(t.id);
        } catch (e) {
          this.#log.warn("Could not accept {id} from {name}: {error}", {
            id: t.id,
            name: this.#d.peerName(peer),
            error: (e as Error).message,
          });
        }
      }
      return;
    }
    // An outcome: about an offer this node made (or, "cancelled", one it received).
    const out = this.#transfers.get(FilesService.key("out", note.offer));
    const inc = this.#transfers.get(FilesService.key("in", note.offer));
    const t = out?.peer === peer ? out : inc?.peer === peer ? inc : undefined;
    if (!t || finished(t.state)) return;
    if (note.kind === "received" && t.direction === "out") {
      t.transferred = t.bytes;
      t.filesDone = t.count;
      this.#end(t, "done");
    } else if (note.kind === "refused" && t.direction === "out") {
      this.#end(t, "refused", note.reason);
    } else if (note.kind === "cancelled") {
      this.#stopFetch(t);
      this.#end(t, "cancelled", `cancelled by ${this.#d.peerName(peer)}`);
    }
  }

  drainEvents(): readonly DaemonEvent[] {
    if (this.#events.length === 0) return NOTHING;
    const out = this.#events;
    this.#events = [];
    return out;
  }

  shutdown(): void {
    this.#stopped = true;
    for (const l of [this.#listener, this.#ipmsgListener]) {
      try {
        l?.close();
      } catch { /* closed */ }
    }
    for (const c of this.#served) c.close();
    for (const t of this.#transfers.values()) {
      clearTimeout(t.retryTimer);
      t.abort?.abort();
    }
  }

  status(): Record<string, unknown> {
    let active = 0;
    let waiting = 0;
    for (const t of this.#transfers.values()) {
      if (t.state === "active") active++;
      else if (t.state === "waiting" || t.state === "offered" || t.state === "paused") waiting++;
    }
    return {
      files: {
        ...this.counters,
        connectionsRefused: { ...this.#admission.refused },
        active,
        waiting,
        port: this.#listener ? this.#d.port : null,
      },
    };
  }

  metrics(m: import("../metrics.ts").MetricsWriter): void {
    const rows = [
      ["bytesReceived", "lanchat_file_bytes_received_total", "File bytes received and written."],
      ["bytesServed", "lanchat_file_bytes_served_total", "File bytes sent to peers."],
      ["filesReceived", "lanchat_files_received_total", "Files received and verified."],
      ["corrupted", "lanchat_files_corrupted_total", "Files whose SHA-256 did not match (fetched again)."],
      [
        "refusedFetches",
        "lanchat_file_fetches_refused_total",
        "Fetches refused (not offered, not to that peer, expired).",
      ],
    ] as const;
    for (const [key, name, help] of rows) m.single(name, "counter", help, this.counters[key]);
    const refused = this.#admission.refused;
    m.metric(
      "lanchat_file_connections_refused_total",
      "counter",
      "File-port connections refused or cut before they authenticated, by reason: " +
        Object.entries(REFUSAL_HELP).map(([k, v]) => `${k}: ${v}`).join("; ") + ".",
      (Object.keys(refused) as Refusal[]).map((k) => [`{reason="${k}"}`, refused[k]]),
    );
  }

  // ---- state ----

  #save(t: Transfer): void {
    t.updatedAt = this.#wallNow();
    t.savedAt = this.#ctx.io.now();
    const {
      files: _f,
      rate: _r,
      lastProgressAt: _l,
      rateSample: _s,
      abort: _a,
      retryMs: _m,
      retryTimer: _t,
      savedAt: _v,
      progressed: _p,
      ...row
    } = t;
    try {
      this.#d.store.saveTransfer({
        id: t.id,
        direction: t.direction,
        peer: t.peer,
        state: t.state,
        updated: t.updatedAt,
        json: JSON.stringify(row),
      });
      this.#ctx.changed();
    } catch (e) {
      this.#log.error("Cannot save transfer {id}: {error}", { id: t.id, error: (e as Error).message });
    }
  }

  /** A fetch got through: the transfer is active again, and the error of the last attempt goes. */
  #activate(t: Transfer): void {
    if (t.state === "active" && !t.error) return;
    t.state = "active";
    t.error = undefined;
    this.#save(t);
    this.#emit("transfer-updated", t);
  }

  #end(t: Transfer, state: TransferState, error?: string): void {
    t.state = state;
    // A download that will not finish leaves no .part behind (a failed one's bytes are not resumed).
    if (t.direction === "in" && finished(state) && state !== "done") void this.#removeParts(t).catch(() => {});
    if (t.staged && finished(state)) {
      void Deno.remove(t.staged, { recursive: true }).catch(() => {});
      t.staged = undefined;
    }
    if (error) t.error = error;
    t.rate = undefined;
    clearTimeout(t.retryTimer);
    this.#save(t);
    const type = state === "done" ? "transfer-done" : state === "failed" ? "transfer-failed" : "transfer-updated";
    this.#emit(type, t);
    const name = this.#d.peerName(t.peer);
    if (state === "failed") this.#log.warn("Transfer {id} with {name} failed: {error}", { id: t.id, name, error });
    else this.#log.info("Transfer {id} with {name}: {state}", { id: t.id, name, state });
    this.#prune();
  }

  #emit(
    type: "transfer-offered" | "transfer-progress" | "transfer-done" | "transfer-failed" | "transfer-updated",
    t: Transfer,
  ) {
    this.#events.push({ type, transfer: this.json(t) });
    this.#ctx.changed();
  }

  #progress(t: Transfer, force = false): void {
    const now = this.#ctx.io.now();
    if (t.direction === "in") {
      // Stored at least every second, so what a restart (even after kill -9) shows is what is on disk.
      if (t.savedAt === undefined || now - t.savedAt >= SAVE_EVERY_MS) this.#save(t);
    }
    const s = t.rateSample;
    if (!s) t.rateSample = { at: now, bytes: t.transferred };
    else if (now - s.at >= 1000) {
      const r = ((t.transferred - s.bytes) * 1000) / (now - s.at);
      t.rate = t.rate === undefined ? r : 0.5 * t.rate + 0.5 * r;
      t.rateSample = { at: now, bytes: t.transferred };
    }
    if (!force && t.lastProgressAt !== undefined && now - t.lastProgressAt < PROGRESS_EVERY_MS) return;
    t.lastProgressAt = now;
    this.#emit("transfer-progress", t);
  }

  /** Forgets the oldest finished transfers beyond KEEP_FINISHED. */
  #prune(): void {
    const done = [...this.#transfers.values()].filter((t) => finished(t.state)).sort((a, b) =>
      b.updatedAt - a.updatedAt
    );
    for (const t of done.slice(KEEP_FINISHED)) {
      this.#transfers.delete(FilesService.key(t.direction, t.id));
      try {
        this.#d.store.deleteTransfer(t.id, t.direction);
      } catch { /* kept: tried again next time */ }
    }
  }

  async #note(t: Transfer, note: FilesNote): Promise<void> {
    try {
      await this.#d.send(t.peer, noteText(note));
    } catch (e) {
      this.#log.warn("Cannot tell {name} about transfer {id}: {error}", {
        name: this.#d.peerName(t.peer),
        id: t.id,
        error: (e as Error).message,
      });
    }
  }

  #files(t: Transfer): TransferFile[] {
    t.files ??= this.#d.store.transferFiles(t.id, t.direction).map((r) => JSON.parse(r.json) as TransferFile);
    return t.files;
  }

  // ---- serving ----

  /**
   * Accepts connections; `admit` says, for each, how to serve it (or that it is refused: closed at once).
   * Every handler's failure is caught here.
   */
  async #acceptLoop(
    listener: Deno.TcpListener,
    admit: (conn: Deno.TcpConn) => ((conn: Deno.TcpConn) => Promise<void>) | undefined,
  ): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (this.#stopped || e instanceof Deno.errors.BadResource) return;
        // Out of file descriptors and the like: keep listening after a breath.
        this.#log.warn("File port: {error}", { error: (e as Error).message });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const handle = admit(conn);
      if (!handle) {
        conn.close();
        continue;
      }
      conn.setNoDelay(true);
      this.#connections++;
      handle(conn).catch((e) => {
        if (!(e instanceof StreamError) && !this.#stopped) {
          this.#log.debug("File connection ended: {error}", { error: (e as Error).message });
        }
      }).finally(() => {
        this.#connections--;
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  }

  /**
   * One connection to the file port: it has PREAUTH_MS in all to authenticate (then it is cut, and counted),
   * and whatever ends it before that is counted by kind (file_admission.ts).
   */
  async #serveConn(conn: Deno.TcpConn, ticket: Ticket): Promise<void> {
    const fc = new FrameConn(conn, PREAUTH_MS) as ServedConn;
    fc.ticket = ticket;
    fc.maxBody = MAX_CONTROL_JSON + 1;
    this.#served.add(fc);
    const deadline = setTimeout(() => {
      if (ticket.authed) return;
      ticket.timedOut = true;
      fc.close();
    }, PREAUTH_MS);
    let error: unknown;
    try {
      await this.#serve(fc);
    } catch (e) {
      error = e;
      throw e;
    } finally {
      clearTimeout(deadline);
      this.#admission.release(ticket, error);
      this.#served.delete(fc);
      fc.close();
    }
  }

  async #serve(c: ServedConn): Promise<void> {
    const challenge = new Uint8Array(randomBytes(32));
    await c.sendControl(FrameType.hello, { v: 1, challenge: b64(challenge) });
    const auth = await c.control(FrameType.auth);
    const refuse = async (code: string, error: string) => {
      this.counters.refusedFetches++;
      if (c.ticket && code === "malformed") this.#admission.count(c.ticket, "junk");
      await c.sendControl(FrameType.error, { code, error }).catch(() => {});
    };
    const offer = String(auth.offer ?? "");
    const requester = String(auth.id ?? "");
    let publicKey: Uint8Array;
    let nonce: Uint8Array;
    let signature: Uint8Array;
    try {
      publicKey = unb64(auth.publicKey);
      nonce = unb64(auth.nonce);
      signature = unb64(auth.signature);
    } catch {
      return refuse("malformed", "a malformed request");
    }
    if (nonce.length < 16 || nonce.length > 64) return refuse("malformed", "a malformed request");
    if (nodeIdOf(publicKey) !== requester) return refuse("not-yours", "the key does not match the node id");
    const check = this.#checker.check(requester, {
      publicKey,
      data: fetchProof(challenge, nonce, offer, requester),
      signature,
    });
    if (!check.ok) return refuse("not-yours", "the signature does not verify");
    const t = this.#transfers.get(FilesService.key("out", offer));
    const wall = this.#wallNow();
    const first = mayFetch(
      t && { to: t.peer, state: t.state, expires: t.expires, count: t.count },
      requester,
      -1,
      wall,
    );
    if (!first.ok) {
      this.#log.info("Refused a fetch of offer {offer} by {requester}: {error}", {
        offer,
        requester,
        error: first.error,
      });
      // An offer that failed here says why (a file cut short while it was sent), for the receiver to show.
      return refuse(
        first.code,
        first.code === "ended" && t?.state === "failed" && t.error ? `${first.error}: ${t.error}` : first.error,
      );
    }
    c.offer = offer;
    if (this.#d.networkKey) c.cipher = new StreamCipher(streamKey(this.#d.networkKey, challenge, nonce), "server");
    if (c.ticket) this.#admission.authed(c.ticket);
    c.maxBody = MAX_FRAME_BODY;
    await c.sendControl(FrameType.welcome, { ok: true });
    c.stallMs = 60_000;
    const files = this.#files(t!);
    if (t!.state === "offered" || t!.state === "waiting") {
      t!.state = "active";
      this.#save(t!);
      this.#emit("transfer-updated", t!);
    }
    for (;;) {
      const f = await c.next();
      if (f.type === FrameType.verified) {
        const v = parseVerified(f.payload);
        if (v !== undefined && files[v]) {
          files[v]!.done = true;
          t!.filesDone = files.filter((x) => x.done).length;
          this.counters.filesServed++;
        }
        continue;
      }
      if (f.type !== FrameType.get) return refuse("malformed", "expected a request");
      const req = parseGet(f.payload);
      const again = mayFetch(
        { to: t!.peer, state: t!.state, expires: t!.expires, count: t!.count },
        requester,
        req?.file ?? -2,
        this.#wallNow(),
      );
      if (!req || !again.ok) {
        return refuse(again.ok ? "malformed" : again.code, again.ok ? "a malformed request" : again.error);
      }
      if (req.file === -1) {
        const bytes = manifestBytes(files.map(({ path, size, mtime, sha256 }) => ({ path, size, mtime, sha256 })));
        await c.sendControl(FrameType.file, { size: bytes.length, offset: 0 });
        for (let at = 0; at < bytes.length; at += DATA_CHUNK) {
          await c.send(FrameType.data, bytes.subarray(at, at + DATA_CHUNK));
        }
        await c.sendControl(FrameType.end, { bytes: bytes.length });
        continue;
      }
      const file = files[req.file]!;
      const problem = await unchanged(file);
      if (problem) {
        this.#end(t!, "failed", problem);
        return refuse("changed", problem);
      }
      if (req.offset > file.size) return refuse("malformed", "an offset past the end of the file");
      await this.#sendFile(c, t!, file, req.offset);
    }
  }

  async #sendFile(c: ServedConn, t: Transfer, file: TransferFile, offset: number): Promise<void> {
    using f = await Deno.open(file.source!, { read: true });
    if (offset > 0) await f.seek(offset, Deno.SeekMode.Start);
    await c.sendControl(FrameType.file, { size: file.size, offset });
    let left = file.size - offset;
    // Two buffers, each with room for the frame header, read into in place: the next chunk is read
    // from the file while this one goes out on the socket.
    const bufs = [new Uint8Array(5 + DATA_CHUNK), new Uint8Array(5 + DATA_CHUNK)];
    const read = async (buf: Uint8Array, want: number): Promise<number> => {
      const n = await f.read(buf.subarray(5, 5 + want));
      if (n === null || n === 0) {
        throw new SourceChanged(`${file.path} changed while it was being sent (it ended early)`);
      }
      return n;
    };
    const send = async (buf: Uint8Array, n: number): Promise<void> => {
      if (c.cipher) return c.send(FrameType.data, buf.subarray(5, 5 + n));
      new DataView(buf.buffer).setUint32(0, n + 1);
      buf[4] = FrameType.data;
      await c.writeAll(buf.subarray(0, 5 + n));
    };
    // A read and a send are under way at once, and either may fail while the other is awaited (the receiver
    // went away while a disk read was awaited; the file was cut short while a send was): each has a handler from
    // the start, is awaited where its result is needed, and both have settled before the file is closed.
    const handled = <T>(p: Promise<T>): Promise<T> => {
      p.catch(() => {});
      return p;
    };
    let k = 0;
    let reading = left > 0 ? handled(read(bufs[0]!, Math.min(DATA_CHUNK, left))) : undefined;
    let sending: Promise<void> = Promise.resolve();
    try {
      while (reading) {
        const n = await reading;
        left -= n;
        await sending;
        reading = left > 0 ? handled(read(bufs[1 - k]!, Math.min(DATA_CHUNK, left))) : undefined;
        sending = handled(send(bufs[k]!, n));
        k = 1 - k;
        this.counters.bytesServed += n;
        t.transferred = Math.min(t.bytes, t.transferred + n);
        this.#progress(t);
      }
      await sending;
    } catch (e) {
      if (!(e instanceof SourceChanged)) throw e;
      // The file changed under us: the receiver is told why (after the data already on its way), and the
      // transfer has failed: the bytes offered are no longer there to send.
      await sending.catch(() => {});
      this.#end(t, "failed", e.message);
      await c.sendControl(FrameType.error, { code: "changed", error: e.message }).catch(() => {});
      throw e;
    } finally {
      // The file is closed (by `using`) only once no read of it is under way.
      await reading?.catch(() => {});
    }
    await c.sendControl(FrameType.end, { bytes: file.size - offset });
  }

  // ---- fetching ----

  #schedule(t: Transfer, ms: number): void {
    clearTimeout(t.retryTimer);
    if (this.#stopped) return;
    t.retryTimer = setTimeout(() => {
      t.retryTimer = undefined;
      if (this.#stopped || finished(t.state) || t.abort) return;
      if (this.#fetching >= MAX_ACTIVE_FETCHES) return this.#schedule(t, 500);
      void this.#fetch(t);
    }, ms);
  }

  #stopFetch(t: Transfer): void {
    clearTimeout(t.retryTimer);
    t.abort?.abort();
  }

  async #fetch(t: Transfer): Promise<void> {
    const abort = t.abort = new AbortController();
    t.progressed = false;
    // Whether this try got through to the sender (IP Messenger users have no liveness: any try counts).
    let reached = t.ipmsg !== undefined;
    this.#fetching++;
    let fc: FrameConn | undefined;
    abort.signal.addEventListener("abort", () => fc?.close());
    try {
      const wall = this.#wallNow();
      if (wall > t.expires) throw new RemoteError("the offer has expired", "expired");
      if (t.ipmsg) {
        if (!this.#ipmsg) throw new FileError("an IP Messenger transfer: start the daemon with --ipmsg to fetch it");
        return await this.#ipmsg.fetch(t, abort.signal);
      }
      const at = this.#d.addressOf(t.peer);
      if (!at) throw new StreamError(`${this.#d.peerName(t.peer)} is not online`);
      const conn = await this.#d.connectTcp(at.address, at.port).catch((e) => {
        throw new StreamError(`cannot connect to ${at.address}:${at.port}: ${(e as Error).message}`);
      });
      fc = new FrameConn(conn);
      reached = true;
      if (abort.signal.aborted) return;
      const hello = await fc.control(FrameType.hello);
      const challenge = unb64(hello.challenge);
      const nonce = new Uint8Array(randomBytes(32));
      const signature = this.#d.signer.sign(fetchProof(challenge, nonce, t.id, this.#d.self.id));
      await fc.sendControl(FrameType.auth, {
        v: 1,
        offer: t.id,
        id: this.#d.self.id,
        publicKey: b64(this.#d.self.publicKey),
        nonce: b64(nonce),
        signature: b64(signature),
      });
      if (this.#d.networkKey) fc.cipher = new StreamCipher(streamKey(this.#d.networkKey, challenge, nonce), "client");
      await fc.control(FrameType.welcome);
      this.#activate(t);
      // The sender still offers it: the back-off and the count of fruitless attempts start over.
      t.retryMs = undefined;
      t.tries = 0;
      fc.readAhead = true;
      const files = await this.#manifest(fc, t);
      t.transferred = 0;
      for (const f of files) t.transferred += f.done ? f.size : 0;
      for (const [idx, f] of files.entries()) {
        if (f.done || f.failed) continue;
        const before = t.transferred;
        try {
          await this.#fetchFile(fc, t, idx, f);
        } catch (e) {
          if (!(e instanceof OneFileError)) throw e;
          // This file alone fails; the others still come.
          f.failed = `${f.dest}: ${e.message}`;
          t.transferred = before;
          await Deno.remove(`${t.dir}/${f.dest}.part`).catch(() => {});
          this.#d.store.saveTransferFiles(t.id, "in", [{ idx, json: JSON.stringify(f) }]);
          this.#log.warn("Transfer {id}: {error}", { id: t.id, error: f.failed });
          this.#save(t);
        }
        if (abort.signal.aborted) return;
      }
      fc.close();
      const failed = files.filter((f) => f.failed).map((f) => f.failed!);
      if (failed.length > 0) {
        const error = partlyWritten(failed, t.count);
        this.#end(t, "failed", error);
        void this.#note(t, { kind: "refused", offer: t.id, reason: error });
        return;
      }
      t.filesDone = t.count;
      t.transferred = t.bytes;
      this.#end(t, "done");
      void this.#note(t, { kind: "received", offer: t.id });
    } catch (e) {
      if (abort.signal.aborted || this.#stopped || finished(t.state)) return;
      if (e instanceof OneFileError && t.ipmsg) {
        // One attachment cannot be written: it fails alone, and the fetch goes on with the next.
        const im = t.ipmsg;
        const i = im.files.findIndex((_, j) => !im.done[j] && !im.failed?.[j]);
        if (i >= 0) {
          (im.failed ??= im.files.map(() => null))[i] = `${im.dest[i] ?? im.files[i]!.name}: ${e.message}`;
          if (im.dest[i]) await Deno.remove(`${t.dir}/${im.dest[i]}.part`, { recursive: true }).catch(() => {});
          this.#log.warn("Transfer {id}: {error}", { id: t.id, error: im.failed[i] });
          t.transferred = im.files.reduce((n, f, j) => n + (im.done[j] ? f.size : 0), 0);
          this.#save(t);
          this.#schedule(t, 0);
          return;
        }
      }
      if (e instanceof RemoteError && e.code === "unknown") {
        // The sender says it does not know the offer (it restarted without it): no use trying again.
        this.#end(t, "failed", `${this.#d.peerName(t.peer)} no longer offers this (${e.message})`);
        return;
      }
      if (e instanceof RemoteError || e instanceof FileError || e instanceof OneFileError) {
        this.#end(t, "failed", e.message);
        return;
      }
      // Unreachable, broken, stalled: try again later, from where it stopped; but a sender that is
      // there and gives nothing, try after try, no longer has the offer (it restarted without it).
      // A lanchat peer that cannot be reached is not counted: the roster says when it is gone, and
      // its offer waits for it (until it expires).
      const online = t.ipmsg ? this.#d.ipmsg?.peer(t.peer) !== undefined : this.#d.addressOf(t.peer) !== undefined;
      if (t.progressed) t.tries = 0;
      else if (online && reached) t.tries = (t.tries ?? 0) + 1;
      if ((t.tries ?? 0) >= MAX_FRUITLESS_TRIES) {
        this.#end(
          t,
          "failed",
          `${this.#d.peerName(t.peer)} sent nothing in ${t.tries} tries in a row, so it no longer offers this ` +
            `(it may have restarted or withdrawn it); the last try: ${(e as Error).message}`,
        );
        return;
      }
      const first = this.#d.options.retryFirstMs ?? RETRY_FIRST_MS;
      t.retryMs = Math.min(Math.min(RETRY_MAX_MS, first * 30), (t.retryMs ?? first / 2) * 2);
      // Paused once bytes have come (the sender went away mid-way); waiting while none has.
      const next = t.transferred > 0 ? "paused" : "waiting";
      if (t.state !== next) {
        t.state = next;
        t.error = (e as Error).message;
        this.#save(t);
        this.#emit("transfer-updated", t);
      }
      this.#log.info("Transfer {id} from {name} paused: {error}; trying again in {s} s", {
        id: t.id.slice(0, 8),
        name: this.#d.peerName(t.peer),
        error: (e as Error).message,
        s: t.retryMs / 1000,
      });
      this.#schedule(t, t.retryMs);
    } finally {
      this.#fetching--;
      if (t.abort === abort) t.abort = undefined;
      fc?.close();
      // A .part made after the transfer ended (cancelled between two files) goes too.
      if (t.direction === "in" && finished(t.state) && t.state !== "done") await this.#removeParts(t).catch(() => {});
    }
  }

  /** The offer's files with where each goes: fetched (and checked) once, then kept in the store. */
  async #manifest(fc: FrameConn, t: Transfer): Promise<TransferFile[]> {
    const known = this.#files(t);
    if (known.length === t.count && t.count > 0) return known;
    if (t.count === 0) return [];
    await fc.sendControl(FrameType.get, { file: -1, offset: 0 });
    const head = await fc.control(FrameType.file);
    const size = Number(head.size);
    if (!Number.isSafeInteger(size) || size < 0 || size > 64 * 1024 * 1024) {
      throw new RemoteError("a manifest too large", "malformed");
    }
    const parts: Uint8Array[] = [];
    let got = 0;
    for (;;) {
      const f = await fc.next();
      if (f.type === FrameType.end) break;
      if (f.type !== FrameType.data) throw new StreamError("expected manifest data");
      got += f.payload.length;
      if (got > size) throw new StreamError("more manifest than announced");
      parts.push(f.payload.slice());
    }
    const bytes = new Uint8Array(Buffer.concat(parts));
    if (createHash("sha256").update(bytes).digest("hex") !== t.manifest) {
      throw new RemoteError("the list of files does not match the offer (SHA-256)", "corrupt");
    }
    const entries = parseManifest(bytes);
    if (!entries || entries.length !== t.count) throw new RemoteError("a malformed list of files", "malformed");
    const total = entries.reduce((n, e) => n + e.size, 0);
    if (total !== t.bytes) throw new RemoteError("the list of files does not add up to the offer's size", "malformed");
    // Where each goes: safe names, and top-level names that exist already get "name (1)".
    const safe = safePaths(entries.map((e) => e.path));
    const tops = new Map<string, string>();
    await Deno.mkdir(t.dir!, { recursive: true });
    const files: TransferFile[] = [];
    for (const [i, e] of entries.entries()) {
      const parts = safe[i];
      if (!parts) throw new RemoteError(`an unusable file name: ${JSON.stringify(e.path).slice(0, 100)}`, "malformed");
      const top = parts[0]!;
      let mapped = tops.get(collisionKey(top));
      if (mapped === undefined) {
        mapped = await freeName(t.dir!, top);
        tops.set(collisionKey(top), mapped);
      }
      files.push({ ...e, dest: [mapped, ...parts.slice(1)].join("/") });
    }
    this.#d.store.saveTransferFiles(t.id, "in", files.map((f, idx) => ({ idx, json: JSON.stringify(f) })));
    t.files = files;
    return files;
  }

  async #fetchFile(fc: FrameConn, t: Transfer, idx: number, f: TransferFile): Promise<void> {
    const final = `${t.dir}/${f.dest}`;
    const part = `${final}.part`;
    using out = await onDisk(async () => {
      await Deno.mkdir(final.slice(0, final.lastIndexOf("/")), { recursive: true });
      return await Deno.open(part, { read: true, write: true, create: true });
    });
    let offset = (await out.stat()).size;
    if (offset > f.size) {
      await out.truncate(0);
      offset = 0;
    }
    const hash = createHash("sha256");
    if (offset > 0) {
      // Resume: hash what is already there, then ask for the rest.
      const buf = new Uint8Array(1024 * 1024);
      let at = 0;
      while (at < offset) {
        const n = await out.read(buf.subarray(0, Math.min(buf.length, offset - at)));
        if (n === null) break;
        hash.update(buf.subarray(0, n));
        at += n;
      }
      this.counters.resumed++;
      this.#log.info("Resuming {file} at {offset} of {size}", { file: f.dest, offset, size: f.size });
    }
    await out.seek(offset, Deno.SeekMode.Start);
    t.transferred += offset;
    await fc.sendControl(FrameType.get, { file: idx, offset });
    const head = await fc.control(FrameType.file);
    if (Number(head.size) !== f.size || Number(head.offset) !== offset) {
      throw new RemoteError("the file is not the one offered", "changed");
    }
    let got = offset;
    // A write that fails fails this file alone: the rest of its frames are read (and dropped), so the
    // connection stays in step for the next file.
    let unwritable: Error | undefined;
    for (;;) {
      const frame = await fc.next();
      if (frame.type === FrameType.end) break;
      if (frame.type !== FrameType.data) throw new StreamError("expected file data");
      if (got + frame.payload.length > f.size) throw new StreamError("more data than the file's size");
      if (unwritable) {
        got += frame.payload.length;
        continue;
      }
      if (got % (64 * 1024 * 1024) < frame.payload.length && this.#room(t.dir!, f.size - got)) {
        throw new FileError(this.#room(t.dir!, f.size - got)!);
      }
      // The write runs on Deno's I/O threads while this one hashes the same bytes.
      const written = writeAll(out, frame.payload);
      hash.update(frame.payload);
      try {
        await written;
      } catch (e) {
        unwritable = e as Error;
        got += frame.payload.length;
        continue;
      }
      got += frame.payload.length;
      this.counters.bytesReceived += frame.payload.length;
      t.progressed = true;
      t.transferred += frame.payload.length;
      this.#progress(t);
    }
    if (got !== f.size) throw new StreamError("the file ended early");
    if (unwritable) throw new OneFileError(`cannot be written: ${unwritable.message}`);
    if (hash.digest("hex") !== f.sha256) {
      // Corrupted on the way or on disk: start this file over (once more; then give up).
      this.counters.corrupted++;
      await out.truncate(0);
      t.transferred -= got;
      if (f.retried) throw new RemoteError(`${f.dest} arrived damaged twice (SHA-256 mismatch)`, "corrupt");
      f.retried = true;
      this.#log.warn("{file} arrived damaged (SHA-256 mismatch): fetching it again", { file: f.dest });
      return this.#fetchFile(fc, t, idx, f);
    }
    await out.utime(new Date(), new Date(f.mtime)).catch(() => {});
    // Never overwrite: a file that appeared meanwhile under the final name keeps it.
    const folder = final.slice(0, final.lastIndexOf("/"));
    const name = `${folder}/${await freeName(folder, final.slice(final.lastIndexOf("/") + 1), false)}`;
    await onDisk(() => Deno.rename(part, name));
    f.done = true;
    f.dest = name.slice(t.dir!.length + 1);
    t.filesDone++;
    this.counters.filesReceived++;
    this.#d.store.saveTransferFiles(t.id, "in", [{ idx, json: JSON.stringify(f) }]);
    this.#save(t);
    this.#progress(t, true);
    await fc.sendControl(FrameType.verified, { file: idx });
  }

  async #removeParts(t: Transfer): Promise<void> {
    if (t.ipmsg) {
      for (const [i, d] of t.ipmsg.dest.entries()) {
        if (d && !t.ipmsg.done[i]) await Deno.remove(`${t.dir}/${d}.part`, { recursive: true }).catch(() => {});
      }
      return;
    }
    if (!t.dir) return;
    for (const f of this.#files(t)) {
      if (!f.done && f.dest) await Deno.remove(`${t.dir}/${f.dest}.part`).catch(() => {});
    }
  }
}

/** The file being sent is not what was offered any more (cut short mid-way). */
class SourceChanged extends Error {
  override name = "SourceChanged";
}

interface ServedConn extends FrameConn {
  offer?: string;
  ticket?: Ticket;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

function unb64(v: unknown): Uint8Array {
  if (typeof v !== "string" || v.length > 200) throw new TypeError("not base64");
  return new Uint8Array(Buffer.from(v, "base64"));
}

/** A `get` frame's file and offset (the control frame read as wire/file_frames.ts reads them all). */
function parseGet(payload: Uint8Array): { file: number; offset: number } | undefined {
  const v = parseControl(payload);
  if (!v || !Number.isSafeInteger(v.file) || !Number.isSafeInteger(v.offset) || (v.offset as number) < 0) {
    return undefined;
  }
  return { file: v.file as number, offset: v.offset as number };
}

/** A `verified` frame's file. */
function parseVerified(payload: Uint8Array): number | undefined {
  const v = parseControl(payload);
  return v && Number.isSafeInteger(v.file) ? v.file as number : undefined;
}

/** Why a served file is not the one offered any more (its size or time changed), or undefined. */
async function unchanged(f: TransferFile): Promise<string | undefined> {
  try {
    const info = await Deno.stat(f.source!);
    if (!info.isFile || info.size !== f.size || (info.mtime?.getTime() ?? 0) !== f.mtime) {
      return `${f.path} changed since it was offered`;
    }
    return undefined;
  } catch (e) {
    return `${f.path} cannot be read any more: ${(e as Error).message}`;
  }
}

/** SHA-256 of a file, hex, read 1 MiB at a time (the event loop is not held). */
export async function hashFile(path: string): Promise<string> {
  using f = await Deno.open(path, { read: true });
  const hash = createHash("sha256");
  const buf = new Uint8Array(1024 * 1024);
  for (;;) {
    const n = await f.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}
