/**
 * Fetching and resuming: the receiver's pull. An accepted offer is fetched
 * (at most {@link MAX_ACTIVE_FETCHES} at once): connect, prove with the
 * node key that this is the peer the offer was made to (files_handshake.ts:
 * end-to-end encrypted, with a fresh handshake on every connection, when
 * the peer speaks it), fetch the manifest
 * (checked against the SHA-256 in the offer, and its top-level names
 * against the note's: what was accepted is what comes; an offer the
 * pictures setting took has each file held to its rule again, by name,
 * place and size, and by its first bytes before it takes its name), then
 * each file into
 * `NAME.part` from the offset it already has, check its SHA-256 and rename
 * it into the download folder (never over a file already there). A broken
 * connection (a killed daemon on either side) is retried with a back-off
 * and resumes where the `.part` ends; a sender that is online and gives
 * nothing, try after try, is given up on. A file that cannot be written
 * fails alone; the others still come.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import type { TransferJson } from "../../api/types.ts";
import { controlPayload, FrameType, parseControl } from "../../wire/file_frames.ts";
import { collisionKey, safePaths } from "../../protocol/file_names.ts";
import { finished, manifestMismatch, parseManifest } from "../../protocol/files.ts";
import { notAutoAccepted, sniffImage } from "../../protocol/media_type.ts";
import { controlOf, FrameConn, RemoteError, StreamError } from "./file_stream.ts";
import { connectHandshake, fetchKey } from "./files_handshake.ts";
import {
  FileError,
  freeName,
  hashFile,
  onDisk,
  OneFileError,
  partlyWritten,
  PRIVATE_DIR,
  PRIVATE_FILE,
  type Transfer,
  type TransferFile,
  writeAll,
} from "./files_model.ts";
import type { FilesState } from "./files_state.ts";
import { headOf, noteImage } from "./files_images.ts";
import { HEAD_BYTES } from "../../protocol/media_type.ts";
import {
  afterTry,
  DiskFull,
  diskFull,
  existsSync,
  fruitless,
  partlyGone,
  type Pending,
  PIPELINE_BYTES,
  pipelineOf,
  roomAgain,
  RowBatch,
  SMALL_FILE,
  SourceGone,
  writeSmall,
} from "./files_pipeline.ts";
import { folderProblem, makeFolder } from "./files_folder.ts";

/** Most transfers fetching at once; the others wait their turn. */
export const MAX_ACTIVE_FETCHES = 4;
/** Back-off between attempts to reach a sender, doubling up to the maximum (30 times the first). */
const RETRY_FIRST_MS = 2_000;
const RETRY_MAX_MS = 60_000;
/**
 * Attempts in a row that get nothing from a sender that is online before
 * the transfer fails: a sender that restarted without the offer (iptux
 * closes the connection at once) is given up on, not retried for ever.
 */
export const MAX_FRUITLESS_TRIES = 6;

/** The incoming transfers' fetches: accepted, scheduled, retried, resumed. */
export class Fetches {
  #s: FilesState;
  #fetching = 0;

  constructor(state: FilesState) {
    this.#s = state;
  }

  /** Accepts an incoming offer; its files go to `dir` (default: the downloads folder). */
  accept(id: string, dir?: string): TransferJson {
    const t = this.#s.find(id);
    if (t.direction !== "in") {
      throw new FileError(`Transfer ${t.id} is one this node offered: only its receiver accepts it`, 409);
    }
    if (t.state !== "offered") {
      throw new FileError(`Transfer ${t.id} cannot be accepted: it ${notAcceptable(t.state)}`, 409);
    }
    const target = dir ?? this.#s.d.options.downloads;
    // A folder that cannot be made or written: not accepted (the offer stays), rather than retried for ever.
    const unusable = folderProblem(target);
    if (unusable) throw new FileError(`Not accepted: ${unusable}`, 409);
    const room = this.#s.room(target, t.bytes);
    if (room) {
      if (t.ipmsg) this.#s.d.ipmsg?.release(t.peer, t.ipmsg.packetNo);
      this.#s.end(t, "refused", room);
      if (!t.ipmsg) void this.#s.note(t, { kind: "refused", offer: t.id, reason: room });
      throw new FileError(`Refused: ${room}`, 507);
    }
    t.dir = target;
    t.state = "waiting";
    this.#s.save(t);
    this.#s.emit("transfer-updated", t);
    this.#schedule(t, 0);
    return this.#s.json(t);
  }

  /** Incoming transfers that were under way when the daemon stopped go on, from what is on disk. */
  async resume(): Promise<void> {
    for (const t of this.#s.transfers.values()) {
      if (t.direction === "in" && (t.state === "active" || t.state === "waiting" || t.state === "paused")) {
        t.transferred = await this.#s.onDisk(t);
        this.#schedule(t, 0);
      }
    }
  }

  /** A sender came back: its transfers are tried now rather than at the end of the back-off. */
  senderBack(peer: string): void {
    for (const t of this.#s.transfers.values()) {
      const stalled = t.state === "waiting" || t.state === "paused";
      if (t.direction === "in" && t.peer === peer && stalled && !t.abort) this.#schedule(t, 0);
    }
  }

  #schedule(t: Transfer, ms: number): void {
    clearTimeout(t.retryTimer);
    if (this.#s.stopped) return;
    t.retryTimer = setTimeout(() => {
      t.retryTimer = undefined;
      if (this.#s.stopped || finished(t.state) || t.abort) return;
      if (this.#fetching >= MAX_ACTIVE_FETCHES) return this.#schedule(t, 500);
      void this.#fetch(t);
    }, ms);
  }

  async #fetch(t: Transfer): Promise<void> {
    const abort = t.abort = new AbortController();
    t.progressed = false;
    // Whether this try got through to the sender (IP Messenger users have no liveness: any try counts).
    let reached = t.ipmsg !== undefined;
    let answered = false; // The sender answered the handshake: it has the offer (a try counts only if bytes came).
    this.#fetching++;
    let fc: FrameConn | undefined;
    abort.signal.addEventListener("abort", () => fc?.close());
    try {
      const wall = this.#s.wallNow();
      if (wall > t.expires) throw new RemoteError("the offer has expired", "expired");
      roomAgain(t);
      if (t.ipmsg) {
        if (!this.#s.ipmsg) throw new FileError("an IP Messenger transfer: start the daemon with --ipmsg to fetch it");
        return await this.#s.ipmsg.fetch(t, abort.signal);
      }
      const at = this.#s.d.addressOf(t.peer);
      if (!at) throw new StreamError(`${this.#s.d.peerName(t.peer)} is not online`);
      const peerKey = fetchKey(this.#s.d, t.peer);
      const conn = await this.#s.d.connectTcp(at.address, at.port).catch((e) => {
        throw new StreamError(`cannot connect to ${at.address}:${at.port}: ${(e as Error).message}`);
      });
      fc = new FrameConn(conn);
      reached = true;
      if (abort.signal.aborted) return;
      const welcome = await connectHandshake(fc, this.#s.d, t.id, peerKey);
      this.#s.markEncrypted(t, peerKey !== undefined);
      this.#s.activate(t);
      answered = true;
      fc.readAhead = true;
      const resuming = this.#s.files(t).length === t.count;
      const files = await this.#manifest(fc, t);
      t.transferred = 0;
      for (const f of files) t.transferred += f.done ? f.size : 0;
      t.filesDone = files.filter((f) => f.done).length;
      // A sender whose welcome says it answers requests in order is sent several before their answers
      // come (a previous version says nothing: one at a time).
      const window = pipelineOf(welcome);
      const todo = files.flatMap((f, idx) => f.done || f.failed ? [] : [idx]);
      const rows = new RowBatch(this.#s, t);
      const sent: Pending[] = [];
      const out: { type: number; payload: Uint8Array }[] = [];
      try {
        for (let next = 0; next < todo.length || sent.length > 0;) {
          // The window is filled again once half of it has come: its requests (and the files verified
          // meanwhile, which the sender counts) go out in one write.
          if (sent.length <= window / 2 && next < todo.length) {
            // Bytes asked for and still to come: large files are asked for one or two at a time (no .part opened
            // long before its bytes come), small ones by the window.
            let asked = sent.reduce((n, q) => n + q.f.size - q.offset, 0);
            while (sent.length < window && next < todo.length && (sent.length === 0 || asked < PIPELINE_BYTES)) {
              const idx = todo[next++]!;
              const f = files[idx]!;
              try {
                const p = await this.#request(t, idx, f, resuming);
                if (!p) {
                  rows.add(idx, f);
                  continue;
                }
                sent.push(p);
                asked += f.size - p.offset;
                out.push({ type: FrameType.get, payload: controlPayload({ file: idx, offset: p.offset, each: 1 }) });
              } catch (e) {
                this.#oneFails(e, t, idx, f, rows);
              }
            }
            await fc.sendFrames(out.splice(0));
          }
          const p = sent.shift();
          if (!p) continue;
          // Before a file that takes a while, the rows of those done are stored: a restart shows what is on disk.
          if (!p.small) rows.flush();
          const before = t.transferred;
          try {
            if (await this.#receive(fc, t, p)) {
              rows.add(p.idx, p.f);
              out.push({ type: FrameType.verified, payload: controlPayload({ file: p.idx }) });
            } // Damaged on the way: asked for once more, next.
            else todo.splice(next, 0, p.idx);
          } catch (e) {
            // A file that fails alone takes back what it had counted (a broken stream keeps it: paused, not waiting).
            if (e instanceof OneFileError && !diskFull(e, t.dir!)) t.transferred = before;
            this.#oneFails(e, t, p.idx, p.f, rows);
          } finally {
            p.out.close();
          }
          if (abort.signal.aborted) return;
        }
        // The last files verified, for the sender's count (they are here, whether it hears or not).
        if (out.length > 0) await fc.sendFrames(out).catch(() => {});
      } finally {
        for (const p of sent) p.out.close();
        try {
          rows.flush();
        } catch (e) {
          // Not lost: a file in place is found again, whole, on the next try (#alreadyHere).
          this.#s.log.error("Cannot save the files of transfer {id}: {error}", { id: t.id, error: String(e) });
        }
      }
      fc.close();
      const failed = files.filter((f) => f.failed).map((f) => f.failed!);
      if (failed.length > 0) {
        const error = files.some((f) => f.failed && !f.gone)
          ? partlyWritten(failed, t.count)
          : partlyGone(failed, t.count);
        this.#s.end(t, "failed", error);
        void this.#s.note(t, { kind: "refused", offer: t.id, reason: error });
        return;
      }
      t.filesDone = t.count;
      t.transferred = t.bytes;
      this.#s.end(t, "done");
      void this.#s.note(t, { kind: "received", offer: t.id });
    } catch (e) {
      if (abort.signal.aborted || this.#s.stopped || finished(t.state)) return;
      if (e instanceof OneFileError && t.ipmsg) {
        // One attachment cannot be written: it fails alone, and the fetch goes on with the next.
        const im = t.ipmsg;
        const i = im.files.findIndex((_, j) => !im.done[j] && !im.failed?.[j]);
        if (i >= 0) {
          (im.failed ??= im.files.map(() => null))[i] = `${im.dest[i] ?? im.files[i]!.name}: ${e.message}`;
          if (im.dest[i]) await Deno.remove(`${t.dir}/${im.dest[i]}.part`, { recursive: true }).catch(() => {});
          this.#s.log.warn("Transfer {id}: {error}", { id: t.id, error: im.failed[i] });
          t.transferred = im.files.reduce((n, f, j) => n + (im.done[j] ? f.size : 0), 0);
          this.#s.save(t);
          this.#schedule(t, 0);
          return;
        }
      }
      if (e instanceof RemoteError && e.code === "unknown") {
        // The sender says it does not know the offer (it restarted without it): no use trying again.
        this.#s.end(t, "failed", `${this.#s.d.peerName(t.peer)} no longer offers this (${e.message})`);
        return;
      }
      if (e instanceof RemoteError || e instanceof FileError || e instanceof OneFileError) {
        this.#s.end(t, "failed", e.message);
        // Files other than the ones named: the sender hears that they were refused, and why.
        if (e instanceof RemoteError && e.code === "mismatch") {
          void this.#s.note(t, { kind: "refused", offer: t.id, reason: e.message });
        }
        return;
      }
      // Unreachable, broken, stalled: try again later, from where it stopped; but a sender that is
      // there and gives nothing, try after try, no longer has the offer (it restarted without it).
      // A lanchat peer that cannot be reached is not counted: the roster says when it is gone, and
      // its offer waits for it (until it expires).
      const online = t.ipmsg ? this.#s.d.ipmsg?.peer(t.peer) !== undefined : this.#s.d.addressOf(t.peer) !== undefined;
      if (!t.ipmsg) await afterTry(t, e, () => this.#s.files(t));
      if (t.progressed) [t.tries, t.retryMs] = [0, undefined];
      else if (online && reached && !(e instanceof DiskFull)) t.tries = (t.tries ?? 0) + 1;
      if ((t.tries ?? 0) >= MAX_FRUITLESS_TRIES) {
        return this.#s.end(t, "failed", fruitless(this.#s.d.peerName(t.peer), t.tries!, answered, e));
      }
      const first = this.#s.d.options.retryFirstMs ?? RETRY_FIRST_MS;
      t.retryMs = Math.min(Math.min(RETRY_MAX_MS, first * 30), (t.retryMs ?? first / 2) * 2);
      // Paused once bytes have come (the sender went away mid-way) or by a full disk; waiting while none has.
      const next = t.transferred > 0 || e instanceof DiskFull ? "paused" : "waiting";
      if (t.state !== next) {
        t.state = next;
        t.error = (e as Error).message;
        this.#s.save(t);
        this.#s.emit("transfer-updated", t);
      }
      this.#s.log.info("Transfer {id} from {name} paused: {error}; trying again in {s} s", {
        id: t.id.slice(0, 8),
        name: this.#s.d.peerName(t.peer),
        error: (e as Error).message,
        s: t.retryMs / 1000,
      });
      this.#schedule(t, t.retryMs);
    } finally {
      this.#fetching--;
      if (t.abort === abort) t.abort = undefined;
      fc?.close();
      // A .part made after the transfer ended (cancelled between two files) goes too.
      if (t.direction === "in" && finished(t.state) && t.state !== "done") await this.#s.removeParts(t).catch(() => {});
    }
  }

  /** The offer's files with where each goes: fetched (and checked) once, then kept in the store. */
  async #manifest(fc: FrameConn, t: Transfer): Promise<TransferFile[]> {
    const known = this.#s.files(t);
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
    // What is fetched is what was accepted (by a person or the pictures setting): the files the note named.
    const mismatch = manifestMismatch(t.names, entries);
    if (mismatch) throw new RemoteError(`${this.#liar(t)} the files its offer named: ${mismatch}`, "mismatch");
    // Where each goes: safe names, and top-level names that exist already get "name (1)".
    const safe = safePaths(entries.map((e) => e.path));
    const tops = new Map<string, string>();
    await makeFolder(t.dir!);
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
      const dest = [mapped, ...parts.slice(1)].join("/");
      const refused = t.autoAccepted && notAutoAccepted(e.path, e.size, t.autoAccepted.maxBytes, dest);
      if (refused) throw new RemoteError(`${this.#liar(t)} pictures, as its offer said: ${refused}`, "mismatch");
      files.push({ ...e, dest });
    }
    this.#s.d.store.saveTransferFiles(t.id, "in", files.map((f, idx) => ({ idx, json: JSON.stringify(f) })));
    t.files = files;
    return files;
  }

  /** The start of the error for an offer whose files are not what its note said. */
  #liar(t: Transfer): string {
    return `Refused: ${this.#s.d.peerName(t.peer)} sent files other than`;
  }

  /** File `idx` fails alone when `e` says so (it cannot be written); anything else ends this try. */
  #oneFails(e: unknown, t: Transfer, idx: number, f: TransferFile, rows: RowBatch): void {
    if (!(e instanceof OneFileError) || diskFull(e, t.dir!)) throw diskFull(e, t.dir!) ?? e;
    f.failed = `${f.dest}: ${e.message}`;
    if (e instanceof SourceGone) f.gone = true;
    void Deno.remove(`${t.dir}/${f.dest}.part`).catch(() => {});
    rows.add(idx, f);
    rows.flush();
    this.#s.log.warn("Transfer {id}: {error}", { id: t.id, error: f.failed });
    this.#s.save(t);
  }

  /**
   * Opens file `idx`'s `.part` (hashing what it has), for the rest to be asked for;
   * undefined when it needs nothing (a resumed transfer whose file was
   * renamed into place before the daemon stopped, and is whole).
   */
  async #request(
    t: Transfer,
    idx: number,
    f: TransferFile,
    resuming: boolean,
  ): Promise<Pending | undefined> {
    const final = `${t.dir}/${f.dest}`;
    const part = `${final}.part`;
    if (resuming && await this.#alreadyHere(t, idx, f, final)) return undefined;
    const folder = final.slice(0, final.lastIndexOf("/"));
    // A small file is written with calls that do not wait on Deno's I/O threads (each wait cost more than the call).
    const small = f.size <= SMALL_FILE;
    let opened = false;
    const out = await onDisk(async () => {
      if (!this.#folders.has(folder)) {
        await Deno.mkdir(folder, { recursive: true, mode: PRIVATE_DIR });
        this.#folders.add(folder);
      }
      const how = { read: true, write: true, create: true, mode: PRIVATE_FILE };
      if (!small) return { f: await Deno.open(part, how), fresh: false };
      try {
        // Made new (nothing to resume, no stat to ask), else opened as it is.
        return { f: Deno.openSync(part, { ...how, createNew: true }), fresh: true };
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        return { f: Deno.openSync(part, how), fresh: false };
      }
    }).then(({ f, fresh }) => (opened = fresh, f));
    try {
      let offset = opened ? 0 : small ? out.statSync().size : (await out.stat()).size;
      if (offset > f.size) {
        await out.truncate(0);
        offset = 0;
      }
      const hash = createHash("sha256");
      if (offset > 0) {
        // Resume: hash what is already there, then ask for the rest.
        const buf = new Uint8Array(Math.min(offset, 1024 * 1024));
        let at = 0;
        while (at < offset) {
          const n = await out.read(buf.subarray(0, Math.min(buf.length, offset - at)));
          if (n === null) break;
          hash.update(buf.subarray(0, n));
          at += n;
        }
        this.#s.counters.resumed++;
        this.#s.log.info("Resuming {file} at {offset} of {size}", { file: f.dest, offset, size: f.size });
        await out.seek(offset, Deno.SeekMode.Start);
      }
      return { idx, f, out, offset, hash, small };
    } catch (e) {
      out.close();
      throw e;
    }
  }

  /** Folders made in this daemon's life (a folder of 10,000 files is made once, not asked for 10,000 times). */
  #folders = new Set<string>();

  /**
   * Whether file `idx` of a resumed transfer is in place already, whole: it
   * was renamed from its `.part` before the daemon stopped, and the row
   * that says so was not written yet (they are written in batches). By its
   * final name, size and SHA-256 only: a `.part` beside it may be another
   * file of the offer (one named `X.part` next to `X`), never a sign.
   */
  async #alreadyHere(t: Transfer, idx: number, f: TransferFile, final: string): Promise<boolean> {
    try {
      const info = f.size <= SMALL_FILE ? Deno.statSync(final) : await Deno.stat(final);
      if (!info.isFile || info.size !== f.size || await hashFile(final) !== f.sha256) return false;
    } catch {
      return false;
    }
    f.done = true;
    noteImage(t, idx, f.dest!, f.size, await headOf(final));
    t.filesDone++;
    t.transferred += f.size;
    return true;
  }

  /**
   * The answer to a request: the file's bytes into its `.part`, checked
   * (SHA-256) and renamed into place. False when it arrived damaged the first
   * time (its `.part` emptied: it is to be asked for again).
   */
  async #receive(fc: FrameConn, t: Transfer, p: Pending): Promise<boolean> {
    const { idx, f, out, offset, hash } = p;
    const final = `${t.dir}/${f.dest}`;
    const part = `${final}.part`;
    t.transferred += offset;
    const answer = await fc.next();
    const refused = answer.type === FrameType.error ? parseControl(answer.payload) : undefined;
    if (refused?.code === "changed" && refused.file === idx) {
      // Changed or gone at the sender since it was offered: this file alone fails, the others still come.
      throw new SourceGone(String(refused.error ?? "it changed at the sender since it was offered"));
    }
    const head = controlOf(answer, FrameType.file);
    if (head.file !== undefined && head.file !== idx) {
      throw new StreamError(`the sender answered a request for file ${head.file} in place of file ${idx}`);
    }
    if (Number(head.size) !== f.size || Number(head.offset) !== offset) {
      throw new RemoteError("the file is not the one offered", "changed");
    }
    let got = offset;
    // The first bytes, kept as they come (what the file is, by them) for a file fetched from its start.
    const first = offset === 0 ? new Uint8Array(Math.min(f.size, HEAD_BYTES)) : undefined;
    // A write that fails fails this file alone: the rest of its frames are read (and dropped), so the
    // connection stays in step for the next file.
    let unwritable: Error | undefined;
    for (;;) {
      const frame = await fc.next();
      if (frame.type === FrameType.end) break;
      if (frame.type !== FrameType.data) throw new StreamError("expected file data");
      if (got + frame.payload.length > f.size) throw new StreamError(`more data than the size of ${f.dest}`);
      if (unwritable) {
        got += frame.payload.length;
        continue;
      }
      // Room is checked every 64 MiB of the transfer (not per file: a statfs per small file cost more than its write).
      if (t.transferred % (64 * 1024 * 1024) < frame.payload.length && this.#s.room(t.dir!, f.size - got)) {
        throw new FileError(this.#s.room(t.dir!, f.size - got)!);
      }
      if (first && got < first.length) first.set(frame.payload.subarray(0, first.length - got), got);
      // The write runs on Deno's I/O threads while this one hashes the same bytes.
      const written = p.small ? writeSmall(out, frame.payload) : writeAll(out, frame.payload);
      hash.update(frame.payload);
      try {
        await written;
      } catch (e) {
        unwritable = e as Error;
        got += frame.payload.length;
        continue;
      }
      got += frame.payload.length;
      this.#s.counters.bytesReceived += frame.payload.length;
      t.progressed = true;
      t.transferred += frame.payload.length;
      this.#s.progress(t);
    }
    if (got !== f.size) throw new StreamError("the file ended early");
    if (unwritable) throw new OneFileError(`cannot be written: ${unwritable.message}`);
    if (hash.digest("hex") !== f.sha256) {
      // Corrupted on the way or on disk: start this file over (once more; then give up).
      this.#s.counters.corrupted++;
      await out.truncate(0);
      t.transferred -= got;
      // Twice other bytes than the offer's: not the file offered (replaced keeping its size and time, as `cp -p` does).
      if (f.retried) throw new SourceGone("it is not the file offered: it arrived damaged twice (SHA-256 mismatch)");
      f.retried = true;
      this.#s.log.warn("{file} arrived damaged (SHA-256 mismatch): fetching it again", { file: f.dest });
      return false;
    }
    const headBytes = first ?? await headOf(part);
    if (t.autoAccepted && !sniffImage(headBytes)) {
      // Taken without asking as a picture, it is not one by its first bytes: it does not stay in the downloads.
      await Deno.remove(part).catch(() => {});
      throw new RemoteError(
        `${this.#liar(t)} pictures, as its offer said: ${JSON.stringify(f.path).slice(0, 100)} is not a PNG, JPEG, ` +
          "GIF or WebP by its first bytes",
        "mismatch",
      );
    }
    const mtime = new Date(f.mtime);
    if (p.small) {
      try {
        out.utimeSync(new Date(), mtime);
      } catch { /* the time is not the sender's */ }
    } else await out.utime(new Date(), mtime).catch(() => {});
    // Never overwrite: a file that appeared meanwhile under the final name keeps it.
    const folder = final.slice(0, final.lastIndexOf("/"));
    const free = p.small && !existsSync(final);
    const name = free ? final : `${folder}/${await freeName(folder, final.slice(final.lastIndexOf("/") + 1), false)}`;
    await onDisk(async () => p.small ? Deno.renameSync(part, name) : await Deno.rename(part, name));
    f.done = true;
    f.dest = name.slice(t.dir!.length + 1);
    noteImage(t, idx, f.dest, f.size, headBytes);
    t.filesDone++;
    this.#s.counters.filesReceived++;
    // Stored in batches (files_pipeline.ts), the transfer's record and its progress event at most every so often.
    this.#s.progress(t);
    return true;
  }
}

/** What a transfer not waiting to be accepted is, in words (accepted already, done, ended). */
function notAcceptable(state: string): string {
  switch (state) {
    case "waiting":
      return "is accepted already and waits for its sender to be back";
    case "active":
      return "is accepted already and coming";
    case "paused":
      return "is accepted already and paused";
    case "done":
      return "is done (its files are here)";
    case "failed":
      return "failed";
    default:
      return `was ${state}`;
  }
}
