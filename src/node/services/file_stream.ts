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

export class FrameConn {
  readonly conn: Deno.Conn;
  cipher: StreamCipher | undefined;
  #closed = false;
  /**
   * Frames are read whole with reads sized to them (a header, then exactly
   * its body), each body into one of two buffers that are reused: no
   * allocation per frame, and never more than one frame read ahead.
   */
  #bodies = [new Uint8Array(64 * 1024), new Uint8Array(64 * 1024)];
  #turn = 0;
  #head = new Uint8Array(4);
  /** The next frame, already being read (with {@link readAhead}). */
  #ahead: Promise<Uint8Array> | undefined;
  /** Read the next frame while the last is handled (bulk data; off during the handshake). */
  readAhead = false;
  stallMs: number;
  /** Largest frame body read (smaller while only control frames may come, as in the handshake). */
  maxBody = MAX_FRAME_BODY;

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
    const parts = frames.map(({ type, payload }) => {
      const body = frameBody(type, payload);
      return frameBytes(this.cipher ? this.cipher.seal(body) : body);
    });
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    await this.writeAll(out);
  }

  sendControl(type: number, value: Record<string, unknown>): Promise<void> {
    return this.send(type, controlPayload(value));
  }

  async writeAll(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) at += await this.conn.write(bytes.subarray(at));
  }

  /**
   * The next frame; throws {@link StreamError} when the stream ends, stalls
   * or is malformed. Its payload is valid until the next call (copy it to
   * keep it): the buffer is reused.
   */
  async next(): Promise<{ type: number; payload: Uint8Array }> {
    const reading = this.#ahead ?? this.#readFrame();
    this.#ahead = undefined;
    const body = await withinStall(reading, this.stallMs, () => this.close());
    // The next frame goes into the other buffer while this one is handled.
    if (this.readAhead) {
      this.#ahead = this.#readFrame();
      this.#ahead.catch(() => {}); // seen by the next call, if any
    }
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

  async #readFrame(): Promise<Uint8Array> {
    await this.#readExact(this.#head);
    const length = bodyLength(this.#head);
    if (typeof length === "string") throw new StreamError(length, "oversized");
    if (length > this.maxBody) {
      throw new StreamError(`a frame of ${length} bytes (at most ${this.maxBody})`, "oversized");
    }
    const i = this.#turn;
    this.#turn = 1 - i;
    if (this.#bodies[i]!.length < length) this.#bodies[i] = new Uint8Array(Math.min(MAX_FRAME_BODY, length * 2));
    const body = this.#bodies[i]!.subarray(0, length);
    await this.#readExact(body);
    return body;
  }

  async #readExact(into: Uint8Array): Promise<void> {
    let got = 0;
    while (got < into.length) {
      let n: number | null;
      try {
        n = await this.conn.read(into.subarray(got));
      } catch (e) {
        throw new StreamError(`the connection broke: ${(e as Error).message}`, "closed");
      }
      if (n === null) throw new StreamError("the peer closed the connection", "closed");
      got += n;
    }
  }

  /** The next frame, which must be a control frame of `type` (an error frame becomes a thrown {@link RemoteError}). */
  async control(type: number): Promise<Record<string, unknown>> {
    return controlOf(await this.next(), type);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
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
