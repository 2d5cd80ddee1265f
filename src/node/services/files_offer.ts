/**
 * Offering files, and the notes an offer is talked about in. Sending:
 * `offer()` walks the paths (folders recursively; symbolic links are not
 * followed), hashes every file (SHA-256) and sends the offer as a reliable
 * message (protocol/files.ts), so it waits in the outbox for a peer that is
 * offline and survives restarts; a file sent from the web page is staged in
 * the data directory first. Receiving: an offer note becomes an incoming
 * transfer waiting to be accepted (or accepted at once, by
 * `--accept-files`); the notes that come back say how an offer ended
 * (received, refused, cancelled).
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import type { DaemonEvent, TransferJson } from "../../api/types.ts";
import { safeName } from "../../protocol/file_names.ts";
import {
  type FilesNote,
  finished,
  formatBytes,
  manifestBytes,
  MAX_NOTE_NAMES,
  MAX_OFFER_FILES,
  noteText,
  OFFER_TTL_MS,
  type OfferNote,
} from "../../protocol/files.ts";
import {
  FileError,
  hashFile,
  type ImageEntry,
  SourceMoved,
  type Transfer,
  type TransferFile,
  transferKey,
  writeAll,
} from "./files_model.ts";
import type { FilesState } from "./files_state.ts";
import { imageEntry, MAX_IMAGES } from "./files_images.ts";
import { HEAD_BYTES } from "../../protocol/media_type.ts";
import { SMALL_FILE } from "./files_pipeline.ts";

/** Files walked and hashed for an offer (of one or several: a group's members). */
interface Prepared {
  files: TransferFile[];
  names: string[];
  /** Symbolic links inside folders left out. */
  skipped: number;
  /** The pictures among them (media: shown as thumbnails). */
  images: ImageEntry[];
}

/** Offers made, offers received, and the notes about them. */
export class Offers {
  #s: FilesState;
  #autoAccept: (t: Transfer, encrypted: boolean) => { maxBytes: number } | false;

  /**
   * `autoAccept`: whether an offer that came is accepted without asking by another rule (pictures), told whether
   * the message that carried it came end-to-end encrypted (so from the holder of the sender's key); if it is, the
   * largest size the rule takes, which each file that comes is held to.
   */
  constructor(
    state: FilesState,
    autoAccept: (t: Transfer, encrypted: boolean) => { maxBytes: number } | false = () => false,
  ) {
    this.#s = state;
    this.#autoAccept = autoAccept;
  }

  /**
   * Offers a file sent from the web page (which has bytes, not a path on
   * this host): the body is written to a staging folder in the data
   * directory, then offered like any file; the folder goes once the
   * transfer ends.
   *
   * @throws {FileError} for a size that does not match what came, or that would not fit.
   */
  async offerUpload(to: string, name: string, size: number, body: ReadableStream<Uint8Array>): Promise<TransferJson> {
    const [result] = await this.offerUploadToEach([to], name, size, body);
    if (result instanceof Error) throw result;
    return result!;
  }

  /**
   * Offers a file sent from the web page to each of `members` (a group's):
   * staged once, offered to each (one transfer each); the staging folder
   * goes once every one of them has ended. Per member, the transfer or why
   * it could not be offered.
   *
   * @throws {FileError} for an upload that does not match its size or would not fit, or when no member could be offered it.
   */
  async offerUploadToEach(
    members: string[],
    name: string,
    size: number,
    body: ReadableStream<Uint8Array>,
  ): Promise<(TransferJson | FileError)[]> {
    const room = this.#s.room(this.#s.d.uploads, size);
    if (room) throw new FileError(`Cannot take this file: ${room}`, 507);
    const dir = `${this.#s.d.uploads}/${randomBytes(8).toString("hex")}`;
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
      const results = await this.offerToEach(members, [path]);
      const offered = results.filter((r): r is TransferJson => !(r instanceof Error));
      if (offered.length === 0) throw results[0]!;
      for (const json of offered) {
        const t = this.#s.transfers.get(transferKey("out", json.id))!;
        t.staged = dir;
        this.#s.save(t);
      }
      return results;
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  /**
   * Offers the same files to each of `members` (a group's), one transfer
   * each: walked and hashed once for all the lanchat members, an IP
   * Messenger user's offer made its own way. Per member, the transfer or
   * why it could not be offered.
   *
   * @throws {FileError} for a path that does not exist or cannot be read (then none is offered).
   */
  async offerToEach(members: string[], paths: string[]): Promise<(TransferJson | FileError)[]> {
    const prepared = members.some((m) => this.#s.d.isLanchat(m)) ? await this.#prepare(paths) : undefined;
    const out: (TransferJson | FileError)[] = [];
    for (const to of members) {
      try {
        out.push(
          prepared && this.#s.d.isLanchat(to) ? await this.#offerPrepared(to, prepared) : await this.offer(to, paths),
        );
      } catch (e) {
        if (!(e instanceof FileError)) throw e;
        out.push(e);
      }
    }
    return out;
  }

  /**
   * Offers files and folders (paths on this host) to a peer. Resolves once
   * every file is hashed and the offer is stored to be sent.
   *
   * @throws {FileError} for a path that does not exist or cannot be read, or a peer this cannot send files to.
   */
  async offer(to: string, paths: string[]): Promise<TransferJson> {
    if (!this.#s.d.isLanchat(to)) {
      if (!this.#s.d.ipmsg) {
        throw new FileError(
          `${this.#s.d.peerName(to)} is an IP Messenger user: start the daemon with --ipmsg to send to it`,
        );
      }
      return await this.#s.ipmsg!.offer(to, paths);
    }
    return await this.#offerPrepared(to, await this.#prepare(paths));
  }

  /** The files of `paths`, walked and hashed, for offers to make of them. */
  async #prepare(paths: string[]): Promise<Prepared> {
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
    const images: ImageEntry[] = [];
    for (const [i, f] of files.entries()) {
      const head = (head: Uint8Array) => {
        const image = images.length < MAX_IMAGES ? imageEntry(i, f.path, f.size, head) : undefined;
        if (image) images.push(image);
      };
      try {
        // A small file is read whole with one call that does not wait on Deno's I/O threads (10,000 files of 4 KiB:
        // the waits and a 1 MiB buffer each were most of the offer's time).
        f.sha256 = f.size <= SMALL_FILE
          ? hashSmall(f.source!, head, f.size)
          : await hashFile(f.source!, head, { size: f.size, mtime: f.mtime });
      } catch (e) {
        if (e instanceof SourceMoved) throw new FileError(`Cannot send ${f.source}: ${e.message}`);
        throw new FileError(`Cannot read ${f.source}: ${(e as Error).message}`);
      }
    }
    return { files, names, skipped, images };
  }

  /** Stores an offer of prepared files to `to` and sends it; each offer has its own copy of the files' state. */
  async #offerPrepared(to: string, prepared: Prepared): Promise<TransferJson> {
    const files = prepared.files.map((f) => ({ ...f }));
    const images = prepared.images.map((i) => ({ ...i }));
    const { names, skipped } = prepared;
    const now = this.#s.wallNow();
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
    if (images.length > 0) t.images = images;
    const note: OfferNote = {
      kind: "offer",
      offer: t.id,
      count: t.count,
      bytes: t.bytes,
      names: t.names,
      manifest,
      expires: t.expires,
    };
    this.#s.d.store.saveTransferFiles(t.id, "out", files.map((f, idx) => ({ idx, json: JSON.stringify(f) })));
    this.#s.transfers.set(transferKey("out", t.id), t);
    const m = await this.#s.d.send(to, noteText(note));
    t.message = m.id;
    if (m.status === "delivered") t.state = "offered";
    this.#s.save(t);
    this.#s.counters.offersSent++;
    this.#s.log.info("Offered {count} files ({size}) to {name}{skipped}", {
      count: t.count,
      size: formatBytes(t.bytes),
      name: this.#s.d.peerName(to),
      skipped: skipped ? `; ${skipped} symbolic links inside folders were left out` : "",
      offer: t.id,
    });
    this.#s.emit("transfer-updated", t);
    return this.#s.json(t);
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
        // Without waiting on Deno's I/O threads: a stat is microseconds, the wait for one was most of its cost.
        const info = Deno.statSync(path);
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

  /** The offer carried by a message was delivered (it is "offered" now) or could not be. */
  onOfferMessage(event: Extract<DaemonEvent, { type: "delivered" | "failed" }>): void {
    for (const t of this.#s.transfers.values()) {
      if (t.direction !== "out" || t.message !== event.message.id || t.state !== "waiting") continue;
      if (event.type === "delivered") {
        t.state = "offered";
        this.#s.save(t);
        this.#s.emit("transfer-updated", t);
      } else this.#s.end(t, "failed", `the offer could not be delivered: ${event.error}`);
    }
  }

  /** A note from a peer: an offer made to this node, or how one ended; `encrypted`: it came end-to-end encrypted. */
  onNote(peer: string, note: FilesNote, _now: number, encrypted = false): void {
    if (note.kind === "offer") {
      const key = transferKey("in", note.offer);
      if (this.#s.transfers.has(key)) return;
      const wall = this.#s.wallNow();
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
      this.#s.transfers.set(key, t);
      this.#s.counters.offersReceived++;
      this.#s.save(t);
      this.#s.emit("transfer-offered", t);
      this.#s.log.info("{name} offers {count} files ({size}): lanchat accept {id}", {
        name: this.#s.d.peerName(peer),
        count: t.count,
        size: formatBytes(t.bytes),
        id: t.id.slice(0, 8),
      });
      const policy = this.#s.d.options.accept ?? "ask";
      const small = t.bytes <= (this.#s.d.options.autoAcceptMaxBytes ?? 1024 ** 3);
      const byPolicy = small && (policy === "always" || (policy === "trusted" && this.#s.d.trusted(peer)));
      const pictures = !byPolicy && this.#autoAccept(t, encrypted);
      // Taken as pictures: what comes is checked to be pictures too (files_fetch.ts), not only what the note says.
      if (pictures) t.autoAccepted = { maxBytes: pictures.maxBytes };
      if (byPolicy || pictures) {
        try {
          this.#s.accept(t.id);
        } catch (e) {
          this.#s.log.warn("Could not accept {id} from {name}: {error}", {
            id: t.id,
            name: this.#s.d.peerName(peer),
            error: (e as Error).message,
          });
        }
      }
      return;
    }
    // An outcome: about an offer this node made (or, "cancelled", one it received).
    const out = this.#s.transfers.get(transferKey("out", note.offer));
    const inc = this.#s.transfers.get(transferKey("in", note.offer));
    const t = out?.peer === peer ? out : inc?.peer === peer ? inc : undefined;
    if (!t || finished(t.state)) return;
    if (note.kind === "received" && t.direction === "out") {
      t.transferred = t.bytes;
      t.filesDone = t.count;
      this.#s.end(t, "done");
    } else if (note.kind === "refused" && t.direction === "out") {
      this.#s.end(t, "refused", note.reason);
    } else if (note.kind === "cancelled") {
      this.#s.stopFetch(t);
      this.#s.end(t, "cancelled", `cancelled by ${this.#s.d.peerName(peer)}`);
    }
  }
}

/** SHA-256 of a small file, read whole at once, as hashFile (its first bytes to `head`). */
function hashSmall(path: string, head: (bytes: Uint8Array) => void, size: number): string {
  const bytes = Deno.readFileSync(path);
  // Not the size the offer states: it grew or shrank since its stat (as hashFile says for a big one).
  if (bytes.length !== size) {
    throw new SourceMoved(`it changed while it was read (${size} bytes before, ${bytes.length} after)`);
  }
  head(bytes.subarray(0, HEAD_BYTES));
  return createHash("sha256").update(bytes).digest("hex");
}
