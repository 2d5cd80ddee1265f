/**
 * One regular file from an IP Messenger sender into its `.part`, resumed
 * whatever the sender does with the offset of `GETFILEDATA`: iptux 0.8.3
 * ignores it and sends from byte 0, so appending what comes to the `.part`
 * would write the file's start after its middle.
 *
 * A resume of a `.part` of N bytes asks from N − 64 KiB and reads those
 * 64 KiB first: equal to the `.part`'s last 64 KiB (and not its first), the
 * sender honours offsets and the rest is appended; equal to the `.part`'s
 * first 64 KiB (and not its last), it sent from byte 0 and the same stream
 * is written over the `.part` from its start; equal to both (a file that
 * repeats) or to neither (the file changed), the `.part` is emptied and the
 * file asked for again from offset 0. Whatever the path, exactly the bytes
 * offered must come: a stream that ends short is a broken transfer (tried
 * again later), one that brings more fails it.
 *
 * @module
 */
import { StreamError } from "./file_stream.ts";
import { onDisk, PRIVATE_FILE, writeAll } from "./files_model.ts";
import type { RawReader } from "./ipmsg_file_stream.ts";

/** Bytes asked for again before the end of a `.part`, to see where the sender starts. */
export const RESUME_OVERLAP = 64 * 1024;
/** Bytes a download reads at a time (at most: a read takes what has come). */
const READ_BYTES = 1024 * 1024;
/** After the last byte offered, how long a sender has to close before the file counts as complete. */
const END_GRACE_MS = 1000;

/** How a file came: whole, appended to its `.part`, or over it from byte 0 (the sender ignored the offset). */
export type FetchedHow = "whole" | "resumed" | "from-start";

/** What {@link fetchIpmsgFile} needs from its caller. */
export interface IpmsgFileFetch {
  /** Where the bytes go (kept between attempts). */
  part: string;
  /** Bytes offered. */
  size: number;
  /** Opens a connection that asked for the file from `offset`, and its reader. */
  request(offset: number): Promise<{ reader: RawReader; close(): void }>;
  /** The bytes of this file known good so far (once at the start, again when the `.part` is started over). */
  position(bytes: number): void;
  /** Bytes written past that. */
  onBytes(n: number): void;
  /** The sender sent from byte 0 when asked for `offset`: the same stream is written from the start. */
  onIgnoredOffset?(offset: number): void;
  /** Neither the `.part`'s start nor its end came back: it is fetched again from offset 0. */
  onMismatch?(offset: number): void;
}

/** A reader that can be given back bytes it read ahead. */
class Buffered {
  #ahead: Uint8Array[] = [];
  constructor(readonly raw: RawReader) {}
  unread(b: Uint8Array): void {
    if (b.length > 0) this.#ahead.unshift(b);
  }
  /** The next chunk given back, if any (without reading). */
  takeAhead(): Uint8Array | undefined {
    return this.#ahead.shift();
  }
  async read(): Promise<Uint8Array | null> {
    return this.#ahead.shift() ?? await this.raw.read();
  }
}

/** Exactly `n` bytes, or null when the stream ends first. */
async function readExact(r: Buffered, n: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const chunk = await r.read();
    if (chunk === null) return null;
    const take = Math.min(chunk.length, n - got);
    out.set(chunk.subarray(0, take), got);
    got += take;
    r.unread(chunk.subarray(take));
  }
  return out;
}

/**
 * Writes the next `want` bytes of the stream to `out` at its position; then
 * the stream must end. Fewer is a {@link StreamError} (the transfer pauses),
 * more a {@link TooMuchError}.
 */
async function receiveExact(
  r: Buffered,
  out: Deno.FsFile,
  want: number,
  total: number,
  onBytes: (n: number) => void,
): Promise<void> {
  let got = 0;
  const take = (n: number) => {
    if (n > want - got) throw new TooMuchError(total);
    got += n;
  };
  for (let chunk = r.takeAhead(); chunk; chunk = r.takeAhead()) {
    take(chunk.length);
    await onDisk(() => writeAll(out, chunk));
    onBytes(chunk.length);
  }
  // One large buffer, read into and written from without a copy: iptux writes 8 KiB at a time and one
  // read takes what many of them brought. (A copy of each chunk cost more CPU than the rest of the loop,
  // mostly in the collector; a second buffer, written while the next read waits, measured no faster.)
  const buf = new Uint8Array(READ_BYTES);
  while (got < want) {
    const n = await r.raw.readInto(buf);
    if (n === null) {
      throw new StreamError(`the sender closed the connection after ${total - want + got} of ${total} bytes`);
    }
    take(n);
    await onDisk(() => writeAll(out, buf.subarray(0, n)));
    onBytes(n);
  }
  // Complete once it closes, or stays quiet for a moment (some clients wait for the receiver to close).
  const next = r.read();
  next.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const quiet = new Promise<"quiet">((resolve) => timer = setTimeout(() => resolve("quiet"), END_GRACE_MS));
  const end = await Promise.race([next, quiet]).catch(() => null).finally(() => clearTimeout(timer));
  if (end instanceof Uint8Array && end.length > 0) throw new TooMuchError(total);
}

/** The sender sent more than the size it offered: the file is not the one offered. */
export class TooMuchError extends Error {
  override name = "TooMuchError";
  constructor(size: number) {
    super(`the sender sent more than the ${size} bytes it offered (the file changed since it was offered)`);
  }
}

function shut(conn: { close(): void } | undefined): void {
  try {
    conn?.close();
  } catch { /* closed already */ }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function readAt(f: Deno.FsFile, at: number, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  await f.seek(at, Deno.SeekMode.Start);
  let got = 0;
  while (got < n) {
    const k = await f.read(out.subarray(got));
    if (k === null || k === 0) throw new StreamError("the .part file shrank while being read");
    got += k;
  }
  return out;
}

/**
 * Fetches one regular file into its `.part` (resumed from what is there,
 * see the module); resolves once exactly `size` bytes are in it.
 *
 * @throws {StreamError} when the stream ends short or breaks (try again later).
 * @throws {TooMuchError} when the sender sends more than it offered.
 */
export async function fetchIpmsgFile(o: IpmsgFileFetch): Promise<FetchedHow> {
  using out = await onDisk(() => Deno.open(o.part, { read: true, write: true, create: true, mode: PRIVATE_FILE }));
  let have = (await out.stat()).size;
  // Too little to be worth the check, or more than the file: started over.
  if (have > o.size || have <= RESUME_OVERLAP) have = 0;
  let how: FetchedHow = "whole";
  let conn: { reader: RawReader; close(): void } | undefined;
  try {
    if (have > 0) {
      const from = have - RESUME_OVERLAP;
      const tail = await readAt(out, from, RESUME_OVERLAP);
      const head = await readAt(out, 0, RESUME_OVERLAP);
      o.position(have);
      conn = await o.request(from);
      const r = new Buffered(conn.reader);
      const first = await readExact(r, RESUME_OVERLAP);
      if (first === null) {
        throw new StreamError(`the sender closed the connection before the ${RESUME_OVERLAP} bytes asked for again`);
      }
      const isTail = equal(first, tail);
      const isHead = equal(first, head);
      if (isTail && !isHead) {
        await out.seek(have, Deno.SeekMode.Start);
        await receiveExact(r, out, o.size - have, o.size, o.onBytes);
        how = "resumed";
      } else if (isHead && !isTail) {
        o.onIgnoredOffset?.(from);
        o.position(0);
        await out.seek(0, Deno.SeekMode.Start);
        await onDisk(() => writeAll(out, first));
        o.onBytes(first.length);
        await receiveExact(r, out, o.size - first.length, o.size, o.onBytes);
        how = "from-start";
      } else {
        if (!isTail) o.onMismatch?.(from);
        have = 0;
      }
    }
    if (have === 0) {
      shut(conn);
      await out.truncate(0);
      await out.seek(0, Deno.SeekMode.Start);
      o.position(0);
      conn = await o.request(0);
      await receiveExact(new Buffered(conn.reader), out, o.size, o.size, o.onBytes);
    }
  } finally {
    shut(conn);
  }
  const length = (await out.stat()).size;
  if (length !== o.size) throw new StreamError(`the .part holds ${length} bytes, not the ${o.size} offered`);
  return how;
}
