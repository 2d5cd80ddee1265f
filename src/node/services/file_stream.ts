/**
 * One end of a file-stream connection: frames in and out over a TCP
 * connection, sealed once a key is agreed, with a deadline on every read
 * (a stalled peer is cut off, not waited for).
 *
 * @module
 */
import {
  bodyLength,
  controlPayload,
  frameBody,
  frameBytes,
  FrameType,
  MAX_FRAME_BODY,
  parseControl,
  splitBody,
} from "../../wire/file_frames.ts";
import type { StreamCipher } from "../../security/file_cipher.ts";
import { concat } from "../../security/noise.ts";

/**
 * Sealed or opened bytes after which a young-generation collection is asked
 * for (when the daemon exposes V8's `gc`, as its tasks do). node:crypto gives
 * each sealed or opened frame a fresh megabyte that V8 frees only when ~64 MiB
 * of such buffers wait (its external-memory trigger): a 4 GiB encrypted
 * transfer held +73–80 MiB. Paced by the bytes, a minor collection every 8 MiB
 * (1–3 ms) keeps it near +24 MiB, and the memory reused is faster than fresh pages.
 */
export const GARBAGE_PACE = 8 * 1024 * 1024;
const gc = (globalThis as { gc?: (options: { type: "minor" }) => void }).gc;
let garbage = 0;

/** Counts `n` bytes a cipher left behind; a minor collection once {@link GARBAGE_PACE} wait. */
function collectPaced(n: number): void {
  if (!gc || (garbage += n) < GARBAGE_PACE) return;
  garbage = 0;
  gc({ type: "minor" });
}

/** A read that waits longer than this ends the connection. */
export const STALL_MS = 30_000;

/**
 * `p`, or a {@link StreamError} once `ms` pass without it ("nothing came for
 * N s"): every read from a peer has a deadline. `onStall` runs first (to
 * close the connection, so the read left behind ends too).
 */
export async function withinStall<T>(p: Promise<T>, ms: number, onStall?: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = Symbol("stalled");
  const r = await Promise.race([
    p,
    new Promise<typeof stalled>((resolve) => timer = setTimeout(() => resolve(stalled), ms)),
  ])
    .finally(() => clearTimeout(timer));
  if (r === stalled) {
    onStall?.();
    throw new StreamError(`nothing came for ${Math.round(ms / 1000)} s`, "stalled");
  }
  return r as T;
}

/** Raised for a broken stream: the peer sent something malformed, went away or stalled (`kind` says which). */
export class StreamError extends Error {
  override name = "StreamError";
  readonly kind: "malformed" | "oversized" | "closed" | "stalled";
  constructor(message: string, kind: StreamError["kind"] = "malformed") {
    super(message);
    this.kind = kind;
  }
}

/** Room a connection reads into once past its handshake: one read takes many small frames. */
export const READ_BUFFER = 256 * 1024;
/** A frame body larger than this is read alone, straight into its place (its bytes are never moved). */
const BIG_BODY = 64 * 1024;

export class FrameConn {
  readonly conn: Deno.Conn;
  cipher: StreamCipher | undefined;
  #closed = false;
  /**
   * Bytes read and not yet handed out are `#bufs[#cur][#start, #end)`: each
   * read takes what the socket holds (many small frames at once), and frames
   * are handed out as views of the buffer. A frame that does not fit after
   * `#start` moves (its few bytes read so far) to the other buffer, so what
   * was handed out last is never written over before the next call; a big
   * frame's body is read alone into its place (only its header ever moves).
   */
  #bufs = [new Uint8Array(16 * 1024), new Uint8Array(0)];
  #cur = 0;
  #start = 0;
  #end = 0;
  /** The last body's length (a big one: the next read is bounded to a frame like it). */
  #last = 0;
  /** The read under way (with {@link readAhead}, while the caller handles the last frame). */
  #reading: Promise<void> | undefined;
  /** How the last read failed, thrown once the frames read before it are taken. */
  #failed: StreamError | undefined;
  /** Read the next frames while the last is handled (bulk data; off during the handshake). */
  readAhead = false;
  stallMs: number;
  /** Largest frame body read (smaller while only control frames may come, as in the handshake). */
  maxBody = MAX_FRAME_BODY;
  /** One stall deadline per connection: re-armed by bytes arriving, counted only while a caller waits. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #waiting = false;
  #progress = 0;
  #stalled = false;

  constructor(conn: Deno.Conn, stallMs = STALL_MS) {
    this.conn = conn;
    this.stallMs = stallMs;
  }

  /** Sends one frame (sealed once a key is agreed). */
  async send(type: number, payload: Uint8Array): Promise<void> {
    const body = frameBody(type, payload);
    await this.writeAll(frameBytes(this.cipher ? this.cipher.seal(body) : body));
  }

  /**
   * Sends a frame whose payload is `buf[5, 5 + n)`: the 5 bytes before it are
   * room for the header, written in place (no copy of a clear payload; one of
   * a sealed one, into a buffer kept for the next).
   */
  async sendInPlace(type: number, buf: Uint8Array, n: number): Promise<void> {
    buf[4] = type;
    if (!this.cipher) {
      new DataView(buf.buffer, buf.byteOffset).setUint32(0, n + 1);
      return await this.writeAll(buf.subarray(0, 5 + n));
    }
    const [sealed, tag] = this.cipher.sealParts(buf.subarray(4, 5 + n));
    collectPaced(sealed.length);
    const length = sealed.length + tag.length;
    if (this.#out.length < 4 + length) this.#out = new Uint8Array(4 + length);
    new DataView(this.#out.buffer).setUint32(0, length);
    this.#out.set(sealed, 4);
    this.#out.set(tag, 4 + sealed.length);
    await this.writeAll(this.#out.subarray(0, 4 + length));
  }
  #out = new Uint8Array(0);

  /**
   * Sends several frames in one write, each sealed in turn (a small file's
   * head, data and end; a batch of requests): one write rather than one each.
   */
  async sendFrames(frames: { type: number; payload: Uint8Array }[]): Promise<void> {
    this.queue(frames);
    await this.flush();
  }

  /**
   * Seals `frames` now and keeps them to go out with the next write (or
   * {@link flush}): the answers to several requests read at once go out in
   * one write. Whatever is sent next goes after them.
   */
  queue(frames: { type: number; payload: Uint8Array }[]): void {
    for (const { type, payload } of frames) {
      const body = frameBody(type, payload);
      const bytes = frameBytes(this.cipher ? this.cipher.seal(body) : body);
      this.#queued.push(bytes);
      this.queuedBytes += bytes.length;
    }
  }
  #queued: Uint8Array[] = [];
  /** Bytes queued and not yet written. */
  queuedBytes = 0;

  /** Writes what {@link queue} kept, in one write. */
  async flush(): Promise<void> {
    if (this.#queued.length === 0) return;
    const parts = this.#queued;
    const out = parts.length === 1 ? parts[0]! : concat(...parts);
    this.#queued = [];
    this.queuedBytes = 0;
    await this.#write(out);
  }

  sendControl(type: number, value: Record<string, unknown>): Promise<void> {
    return this.send(type, controlPayload(value));
  }

  async writeAll(bytes: Uint8Array): Promise<void> {
    await this.flush();
    await this.#write(bytes);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) at += await this.conn.write(bytes.subarray(at));
  }

  /**
   * The next frame; throws {@link StreamError} when the stream ends, stalls
   * or is malformed. Its payload is valid until the next call (copy it to
   * keep it): it is a view of a buffer that is reused.
   */
  async next(): Promise<{ type: number; payload: Uint8Array }> {
    let body = this.#take();
    while (!body) {
      await this.#fill();
      body = this.#take();
    }
    // The next frames are read while this one is handled (never into the bytes handed out).
    if (this.readAhead && !this.#reading && !this.#failed && !this.hasFrame()) this.#read();
    const plain = this.cipher ? this.cipher.open(body) : body;
    if (this.cipher) collectPaced(body.length);
    const frame = plain && splitBody(plain);
    if (!frame) {
      throw new StreamError(
        this.cipher ? "a frame did not open (altered on the way, or another key)" : "an empty frame",
      );
    }
    return frame;
  }

  /** Whether a whole frame is read already (the next {@link next} will not wait on the peer). */
  hasFrame(): boolean {
    const have = this.#end - this.#start;
    if (have < 4) return false;
    const buf = this.#bufs[this.#cur]!;
    return have >= 4 + new DataView(buf.buffer, buf.byteOffset + this.#start, 4).getUint32(0);
  }

  /** The body of the next whole frame read, or undefined (its header checked as soon as it is read). */
  #take(): Uint8Array | undefined {
    const length = this.#length();
    if (length === undefined || this.#end - this.#start < 4 + length) return undefined;
    const at = this.#start + 4;
    this.#start = at + length;
    this.#last = length;
    return this.#bufs[this.#cur]!.subarray(at, at + length);
  }

  /** The length of the frame at `#start`, once its header is read; a header over the limit throws. */
  #length(): number | undefined {
    if (this.#end - this.#start < 4) return undefined;
    const length = bodyLength(this.#bufs[this.#cur]!.subarray(this.#start, this.#start + 4));
    if (typeof length === "string") throw new StreamError(length, "oversized");
    if (length > this.maxBody) {
      throw new StreamError(`a frame of ${length} bytes (at most ${this.maxBody})`, "oversized");
    }
    return length;
  }

  /** Waits for a read (the one under way, or a new one), under the connection's stall deadline. */
  async #fill(): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (!this.#reading) this.#read();
    this.#waiting = true;
    this.#progress = performance.now();
    this.#timer ??= setTimeout(this.#onTimer, this.stallMs);
    try {
      await this.#reading;
    } finally {
      this.#waiting = false;
    }
    if (this.#failed && this.#end - this.#start < 4 + (this.#length() ?? 0)) throw this.#failed;
  }

  /** The stall deadline: cuts the connection once nothing came for `stallMs` while a caller waited. */
  #onTimer = (): void => {
    this.#timer = undefined;
    if (!this.#waiting || this.#closed) return;
    const left = this.#progress + this.stallMs - performance.now();
    if (left > 0) {
      this.#timer = setTimeout(this.#onTimer, left);
      return;
    }
    this.#stalled = true;
    this.close();
  };

  /** Starts one read of what the socket holds, into the room after `#end` (bounded for a big frame). */
  #read(): void {
    const length = this.#length();
    // Bytes the frame at #start needs: its whole length once known; before, its header, or a frame like the
    // last if that was big (data comes in frames of one size: its body lands in place, never moved).
    const need = 4 + (length ?? (this.#last > BIG_BODY ? this.#last : 0));
    if (this.#start + need > this.#bufs[this.#cur]!.length || this.#end === this.#bufs[this.#cur]!.length) {
      this.#move(need);
    }
    const buf = this.#bufs[this.#cur]!;
    const big = length !== undefined ? length > BIG_BODY : this.#last > BIG_BODY;
    const limit = big ? this.#start + need : buf.length;
    this.#reading = this.#readInto(buf.subarray(this.#end, limit));
  }

  async #readInto(into: Uint8Array): Promise<void> {
    try {
      const n = await this.conn.read(into);
      if (n === null) this.#failed = new StreamError("the peer closed the connection", "closed");
      else {
        this.#end += n;
        this.#progress = performance.now();
      }
    } catch (e) {
      this.#failed = this.#stalled
        ? new StreamError(`nothing came for ${Math.round(this.stallMs / 1000)} s`, "stalled")
        : new StreamError(`the connection broke: ${(e as Error).message}`, "closed");
    } finally {
      this.#reading = undefined;
    }
    if (this.#stalled && this.#failed?.kind === "closed") {
      this.#failed = new StreamError(`nothing came for ${Math.round(this.stallMs / 1000)} s`, "stalled");
    }
  }

  /** Moves the unread bytes to the start of the other buffer (grown to hold `need`): the current one keeps what was handed out. */
  #move(need: number): void {
    const from = this.#bufs[this.#cur]!;
    const other = 1 - this.#cur;
    const room = Math.max(
      this.maxBody > READ_BUFFER ? READ_BUFFER : 16 * 1024,
      need > BIG_BODY ? need + BIG_BODY : need,
    );
    if (this.#bufs[other]!.length < room) this.#bufs[other] = new Uint8Array(room);
    this.#bufs[other]!.set(from.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#cur = other;
  }

  /** The next frame, which must be a control frame of `type` (an error frame becomes a thrown {@link RemoteError}). */
  async control(type: number): Promise<Record<string, unknown>> {
    return controlOf(await this.next(), type);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/**
 * A frame that must be of `type`, its payload as a control frame's JSON
 * object, or its payload as it is (`raw`). An error frame becomes a thrown
 * {@link RemoteError}, another type or malformed JSON a {@link StreamError}.
 */
export function controlOf(f: { type: number; payload: Uint8Array }, type: number): Record<string, unknown>;
export function controlOf(f: { type: number; payload: Uint8Array }, type: number, raw: true): Uint8Array;
export function controlOf(
  f: { type: number; payload: Uint8Array },
  type: number,
  raw?: true,
): Record<string, unknown> | Uint8Array {
  if (f.type === FrameType.error) {
    const v = parseControl(f.payload);
    throw new RemoteError(String(v?.error ?? "the peer refused"), String(v?.code ?? "error"));
  }
  if (f.type !== type) throw new StreamError(`expected frame type ${type}, got ${f.type}`);
  if (raw) return f.payload;
  const v = parseControl(f.payload);
  if (!v) throw new StreamError("a malformed control frame");
  return v;
}

/** The other end said no (an error frame): `code` says why, for the state machine. */
export class RemoteError extends Error {
  override name = "RemoteError";
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.code = code;
  }
}
