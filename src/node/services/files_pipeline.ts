/**
 * Fetching many files over one connection (files_fetch.ts): the requests
 * in flight (as many as the sender's welcome allows, answered in order),
 * small files written with calls that do not wait on Deno's I/O threads,
 * and the rows of the transfer's files written in batches: one SQLite
 * transaction for many files rather than one per file (10,000 small files
 * made 10,000 commits). A file renamed into place whose row was not
 * written yet when the daemon stopped is found on resume by its name, size
 * and SHA-256 (files_fetch.ts), so a lost batch costs a hash, never a file
 * fetched twice or left under a second name.
 *
 * @module
 */
import type { createHash } from "node:crypto";
import { statfsSync } from "node:fs";
import { OneFileError, type Transfer, type TransferFile } from "./files_model.ts";
import type { FilesState } from "./files_state.ts";

/** Files up to this size are served and fetched with calls that do not wait on Deno's I/O threads. */
export const SMALL_FILE = 256 * 1024;

/** Rows held at most before they are written. */
export const ROWS_PER_BATCH = 512;
/** A row waits at most this long (ms) to be written. */
export const ROWS_EVERY_MS = 1_000;

/** Files of one transfer whose rows are to be written, by index. */
export class RowBatch {
  readonly #s: FilesState;
  readonly #t: Transfer;
  #rows = new Map<number, TransferFile>();
  #since: number | undefined;

  constructor(state: FilesState, t: Transfer) {
    this.#s = state;
    this.#t = t;
  }

  /** File `idx` changed (done, failed): its row is written with the next batch. */
  add(idx: number, f: TransferFile): void {
    this.#rows.set(idx, f);
    const now = this.#s.ctx.io.now();
    this.#since ??= now;
    if (this.#rows.size >= ROWS_PER_BATCH || now - this.#since >= ROWS_EVERY_MS) this.flush();
  }

  /** Writes the rows held, in one transaction. */
  flush(): void {
    if (this.#rows.size === 0) return;
    const rows = [...this.#rows].map(([idx, f]) => ({ idx, json: JSON.stringify(f) }));
    this.#rows.clear();
    this.#since = undefined;
    this.#s.d.store.saveTransferFiles(this.#t.id, "in", rows);
  }
}

/** A request sent, its answer still to come: the file's `.part`, open at `offset`, and the hash of what it has. */
export interface Pending {
  idx: number;
  f: TransferFile;
  out: Deno.FsFile;
  offset: number;
  hash: ReturnType<typeof createHash>;
  /** Written with calls that do not wait on Deno's I/O threads. */
  small: boolean;
}

/** Writes a small file's bytes with calls that do not wait on Deno's I/O threads (a failure: the promise's). */
// deno-lint-ignore require-await
export async function writeSmall(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let w = 0; w < bytes.length;) w += f.writeSync(bytes.subarray(w));
}

/** Whether anything is at `path` (as files_model.ts's exists, without waiting on Deno's I/O threads). */
export function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Requests to send before their answers come, as the sender's welcome allows (1 for a previous version). */
export function pipelineOf(welcome: Record<string, unknown>): number {
  const n = welcome.pipeline;
  return typeof n === "number" && Number.isSafeInteger(n) && n > 1 ? Math.min(n, PIPELINE_MAX) : 1;
}

/** Bytes asked for and not yet come, at most, before another request is sent (one is always in flight). */
export const PIPELINE_BYTES = 8 * 1024 * 1024;

/** The most requests in flight on one connection, whatever a sender says it takes. */
export const PIPELINE_MAX = 64;

/** A file changed or gone at the sender since it was offered: it fails alone (the sender said so, naming it). */
export class SourceGone extends OneFileError {
  override name = "SourceGone";
}

/** Why an offer failed when some of its files changed at the sender before they came (the others arrived). */
export function partlyGone(failed: string[], count: number): string {
  const head = failed.length === 1 ? "1 file" : `${failed.length} files`;
  return `${head} of ${count} did not come, changed at the sender since it was offered (the others arrived): ${
    failed.slice(0, 3).join("; ")
  }${failed.length > 3 ? "; …" : ""}`;
}

/**
 * The disk of the downloads is full (ENOSPC, or the user's quota, EDQUOT): a
 * problem of the whole transfer, not of the file being written. The try
 * stops, the `.part`s stay, and the transfer pauses and goes on when there is
 * room (no file is failed for it).
 */
export class DiskFull extends Error {
  override name = "DiskFull";
}

/** `e` (a file that cannot be written: {@link OneFileError}) as a {@link DiskFull} when it says the disk (or quota) is full, else undefined. */
export function diskFull(e: unknown, dir: string): DiskFull | undefined {
  const m = e instanceof Error ? e.message : String(e);
  if (!/No space left on device|Disk quota exceeded|ENOSPC|EDQUOT|os error (28|122)\b/i.test(m)) return undefined;
  return new DiskFull(`the disk of ${dir} is full (${m}): the files that came are kept; it goes on when there is room`);
}

/** Why an incoming transfer is given up on after `tries` tries in a row that brought no file (see MAX_FRUITLESS_TRIES). */
export function fruitless(name: string, tries: number, answered: boolean, e: unknown): string {
  const last = e instanceof Error ? e.message : String(e);
  return answered
    ? `${name} answered, but no file came whole in ${tries} tries in a row; the last try: ${last}`
    : `${name} sent nothing in ${tries} tries in a row, so it no longer offers this ` +
      `(it may have restarted or withdrawn it); the last try: ${last}`;
}

/** Transfers whose last try stopped on a full disk: they are tried again only once there is room. */
const full = new WeakSet<Transfer>();

/**
 * After a try that stopped on a full disk (`e`), the `.part`s of the small
 * files not done yet go (an empty one made for a request in flight, or one
 * cut by the full disk): each is fetched again whole. A large file's
 * `.part` stays, for the fetch to go on from where it stopped.
 */
export async function afterTry(t: Transfer, e: unknown, files: () => TransferFile[]): Promise<void> {
  if (!(e instanceof DiskFull)) return void full.delete(t);
  full.add(t);
  for (const f of files()) {
    if (f.dest && !f.done && f.size <= SMALL_FILE) await Deno.remove(`${t.dir}/${f.dest}.part`).catch(() => {});
  }
}

/** Throws {@link DiskFull} while a transfer stopped by a full disk still has no room (1 MiB, or what it lacks). */
export function roomAgain(t: Transfer): void {
  if (!full.has(t) || !t.dir) return;
  let free: number;
  try {
    const s = statfsSync(t.dir);
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    return;
  }
  if (free < Math.min(1024 * 1024, t.bytes - t.transferred) + 64 * 1024) {
    throw new DiskFull(t.error ?? `the disk of ${t.dir} is full: it goes on when there is room`);
  }
  full.delete(t);
}
