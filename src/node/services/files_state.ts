/**
 * The transfers a node knows, as every part of the file service shares
 * them: held in a map and in the store (loaded at start, saved on every
 * change, the oldest finished ones forgotten), their JSON, their state
 * changes and the events that tell of them, the notes that tell the peer,
 * what a download has on disk (its `.part` files, removed when it will not
 * finish), and whether a download fits.
 *
 * @module
 */
import { statfsSync } from "node:fs";
import type { DaemonEvent, TransferJson } from "../../api/types.ts";
import { logger } from "../../common/log.ts";
import { type FilesNote, finished, formatBytes, noteText, type TransferState } from "../../protocol/files.ts";
import type { ServiceContext } from "../service.ts";
import { NOTHING } from "../service.ts";
import {
  fileCounters,
  FileError,
  type FilesDeps,
  type FilesHost,
  type Transfer,
  type TransferFile,
  transferKey,
} from "./files_model.ts";
import type { IpmsgFiles } from "./files_ipmsg.ts";
import { imagesJson, keepsUpload } from "./files_images.ts";
import { savedNames } from "./files_saved.ts";

/** Progress events per transfer at most this often. */
const PROGRESS_EVERY_MS = 250;
/** `transferred` is stored at least this often while bytes come (what a restart after kill -9 shows). */
const SAVE_EVERY_MS = 1_000;
/** Finished transfers listed (the oldest beyond it are forgotten). */
const KEEP_FINISHED = 500;

/** The file service's state, and the actions on it its parts (offering, serving, fetching, IP Messenger) share. */
export class FilesState implements FilesHost {
  readonly d: FilesDeps;
  /** Set when the service starts. */
  ctx!: ServiceContext;
  readonly log = logger("files");
  readonly transfers = new Map<string, Transfer>();
  readonly counters = fileCounters();
  /** Set once the daemon shuts down: nothing new is started. */
  stopped = false;
  /** The IP Messenger side, loaded with --ipmsg only (its GBK codec costs every daemon ~1.3 MB). */
  ipmsg: IpmsgFiles | undefined;
  /** Accepts an incoming offer (the fetching part's). */
  readonly accept: (id: string, dir?: string) => TransferJson;
  #events: DaemonEvent[] = [];

  constructor(deps: FilesDeps, accept: (id: string, dir?: string) => TransferJson) {
    this.d = deps;
    this.accept = accept;
  }

  /** The transfers in the store (at start), the oldest finished ones beyond the limit forgotten. */
  load(): void {
    for (const row of this.d.store.transfers()) {
      const t = { ...JSON.parse(row.json), state: row.state } as Transfer;
      this.transfers.set(transferKey(t.direction, t.id), t);
    }
    this.prune();
  }

  /** Wall-clock time now, in whole ms (notes carry integers). */
  wallNow(): number {
    return Math.round(this.ctx.wall(this.ctx.io.now()));
  }

  list(): TransferJson[] {
    return [...this.transfers.values()].sort((a, b) => b.createdAt - a.createdAt).map((t) => this.json(t));
  }

  /** A transfer by id (or id prefix of at least 4 characters); outgoing first when both exist. */
  find(id: string): Transfer {
    const all = [...this.transfers.values()].filter((t) => t.id === id || (id.length >= 4 && t.id.startsWith(id)));
    if (all.length === 0) throw new FileError(`No transfer ${id}: see lanchat transfers`, 404);
    const ids = new Set(all.map((t) => t.id));
    if (ids.size > 1) throw new FileError(`${id} matches ${ids.size} transfers: give more of the id`, 409);
    return all.find((t) => t.direction === "out") ?? all[0]!;
  }

  json(t: Transfer): TransferJson {
    const eta = t.state === "active" && t.rate && t.rate > 0
      ? Math.round((t.bytes - t.transferred) / t.rate)
      : undefined;
    const images = imagesJson(t);
    const saved = savedNames(t);
    return {
      id: t.id,
      direction: t.direction,
      peer: { id: t.peer, name: this.d.peerName(t.peer) },
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
      ...(t.ipmsg ? { encrypted: false } : t.encrypted !== undefined ? { encrypted: t.encrypted } : {}),
      ...(images ? { images } : {}),
      ...(saved ? { saved } : {}),
      ...(t.message ? { message: t.message } : {}),
    };
  }

  /** Bytes of an incoming transfer on disk: the files done, and what each `.part` holds. */
  async onDisk(t: Transfer): Promise<number> {
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
      for (const f of this.files(t)) {
        n += f.done ? f.size : f.dest && !f.failed ? await size(`${t.dir}/${f.dest}.part`, f.size) : 0;
      }
    }
    return n;
  }

  /** Why `bytes` more would not fit in `dir` (keeping --keep-free), or undefined. */
  room(dir: string, bytes: number): string | undefined {
    let probe = dir;
    for (;;) {
      try {
        const s = statfsSync(probe);
        const free = Number(s.bavail) * Number(s.bsize);
        const keep = this.d.options.keepFreeBytes ?? 1024 ** 3;
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

  drainEvents(): readonly DaemonEvent[] {
    if (this.#events.length === 0) return NOTHING;
    const out = this.#events;
    this.#events = [];
    return out;
  }

  save(t: Transfer): void {
    t.updatedAt = this.wallNow();
    t.savedAt = this.ctx.io.now();
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
      this.d.store.saveTransfer({
        id: t.id,
        direction: t.direction,
        peer: t.peer,
        state: t.state,
        updated: t.updatedAt,
        json: JSON.stringify(row),
      });
      this.ctx.changed();
    } catch (e) {
      this.log.error("Cannot save transfer {id}: {error}", { id: t.id, error: (e as Error).message });
    }
  }

  /** A connection of the transfer's stream got through, end-to-end encrypted or not (false sticks). */
  markEncrypted(t: Transfer, encrypted: boolean): void {
    const was = t.encrypted;
    t.encrypted = was === false ? false : encrypted;
    if (t.encrypted === was) return;
    if (!encrypted) {
      this.log.warn("Transfer {id} with {name} is not end-to-end encrypted: the peer runs a version without it", {
        id: t.id.slice(0, 8),
        name: this.d.peerName(t.peer),
      });
    }
    this.save(t);
  }

  /** A fetch got through: the transfer is active again, and the error of the last attempt goes. */
  activate(t: Transfer): void {
    if (t.state === "active" && !t.error) return;
    t.state = "active";
    t.error = undefined;
    this.save(t);
    this.emit("transfer-updated", t);
  }

  end(t: Transfer, state: TransferState, error?: string): void {
    t.state = state;
    // A download that will not finish leaves no .part behind (a failed one's bytes are not resumed).
    if (t.direction === "in" && finished(state) && state !== "done") void this.removeParts(t).catch(() => {});
    // A page's upload goes when its transfer ends, but pictures sent stay to be shown until it is forgotten.
    if (t.staged && finished(state) && !keepsUpload({ ...t, state })) this.removeUpload(t);
    if (error) t.error = error;
    t.rate = undefined;
    clearTimeout(t.retryTimer);
    this.save(t);
    const type = state === "done" ? "transfer-done" : state === "failed" ? "transfer-failed" : "transfer-updated";
    this.emit(type, t);
    const name = this.d.peerName(t.peer);
    if (state === "failed") this.log.warn("Transfer {id} with {name} failed: {error}", { id: t.id, name, error });
    else this.log.info("Transfer {id} with {name}: {state}", { id: t.id, name, state });
    this.prune();
  }

  emit(
    type: "transfer-offered" | "transfer-progress" | "transfer-done" | "transfer-failed" | "transfer-updated",
    t: Transfer,
  ) {
    this.#events.push({ type, transfer: this.json(t) });
    this.ctx.changed();
  }

  progress(t: Transfer, force = false): void {
    const now = this.ctx.io.now();
    if (t.direction === "in") {
      // Stored at least every second, so what a restart (even after kill -9) shows is what is on disk.
      if (t.savedAt === undefined || now - t.savedAt >= SAVE_EVERY_MS) this.save(t);
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
    this.emit("transfer-progress", t);
  }

  /** Forgets the oldest finished transfers beyond KEEP_FINISHED. */
  prune(): void {
    const done = [...this.transfers.values()].filter((t) => finished(t.state)).sort((a, b) =>
      b.updatedAt - a.updatedAt
    );
    for (const t of done.slice(KEEP_FINISHED)) {
      this.transfers.delete(transferKey(t.direction, t.id));
      if (t.staged) this.removeUpload(t);
      try {
        this.d.store.deleteTransfer(t.id, t.direction);
      } catch { /* kept: tried again next time */ }
    }
  }

  /**
   * Lets go of the folder a page's upload was staged in: removed once no
   * other transfer holds it (an upload to a group's members is staged once
   * for all of their transfers); its pictures are no longer readable here.
   */
  removeUpload(t: Transfer): void {
    const folder = t.staged!;
    t.staged = undefined;
    t.images = undefined;
    if (![...this.transfers.values()].some((o) => o.staged === folder)) {
      void Deno.remove(folder, { recursive: true }).catch(() => {});
    }
  }

  async note(t: Transfer, note: FilesNote): Promise<void> {
    try {
      await this.d.send(t.peer, noteText(note));
    } catch (e) {
      this.log.warn("Cannot tell {name} about transfer {id}: {error}", {
        name: this.d.peerName(t.peer),
        id: t.id,
        error: (e as Error).message,
      });
    }
  }

  files(t: Transfer): TransferFile[] {
    t.files ??= this.d.store.transferFiles(t.id, t.direction).map((r) => JSON.parse(r.json) as TransferFile);
    return t.files;
  }

  /** Stops a transfer's fetch: the one under way, and the next try scheduled. */
  stopFetch(t: Transfer): void {
    clearTimeout(t.retryTimer);
    t.abort?.abort();
  }

  async removeParts(t: Transfer): Promise<void> {
    if (t.ipmsg) {
      for (const [i, d] of t.ipmsg.dest.entries()) {
        if (d && !t.ipmsg.done[i]) await Deno.remove(`${t.dir}/${d}.part`, { recursive: true }).catch(() => {});
      }
      return;
    }
    if (!t.dir) return;
    for (const f of this.files(t)) {
      if (!f.done && f.dest) await Deno.remove(`${t.dir}/${f.dest}.part`).catch(() => {});
    }
  }
}
