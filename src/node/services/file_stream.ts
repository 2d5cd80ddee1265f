/**
 * One end of a file-stream connection: frames in and out over a TCP
 * connection, sealed once a key is agreed, with a deadline on every read
 * (a stalled peer is cut off, not waited for).
 *
 * @module
 */
import {
  controlPayload,
  frameBody,
  frameBytes,
  FrameReader,
  FrameType,
  parseControl,
  splitBody,
} from "../../wire/file_frames.ts";
import type { StreamCipher } from "../../security/file_cipher.ts";

/** Bytes asked of the socket per read. */
const READ_CHUNK = 1024 * 1024 + 64;
/** Bytes read ahead of the frames taken, at most. */
const READ_AHEAD_BYTES = 4 * 1024 * 1024;
/** A read that waits longer than this ends the connection. */
export const STALL_MS = 30_000;

/** Raised for a broken stream: the peer sent something malformed, went away or stalled. */
export class StreamError extends Error {
  override name = "StreamError";
}

export class FrameConn {
  readonly conn: Deno.Conn;
  cipher: StreamCipher | undefined;
  #reader = new FrameReader();
  #closed = false;
  #pumping = false;
  #readBuffer: Uint8Array | undefined;
  /** Wakes a {@link next} waiting for bytes. */
  #wake: (() => void) | undefined;
  /** Wakes the pump waiting for room. */
  #resume: (() => void) | undefined;
  /** Why the stream ended, once it has. */
  #ended: StreamError | undefined;
  /** Read continuously ahead of the frames taken (bulk data; off during the handshake). */
  readAhead = false;
  stallMs: number;

  constructor(conn: Deno.Conn, stallMs = STALL_MS) {
    this.conn = conn;
    this.stallMs = stallMs;
  }

  /** Sends one frame (sealed once a key is agreed). */
  async send(type: number, payload: Uint8Array): Promise<void> {
    const body = frameBody(type, payload);
    await this.writeAll(frameBytes(this.cipher ? this.cipher.seal(body) : body));
  }

  sendControl(type: number, value: Record<string, unknown>): Promise<void> {
    return this.send(type, controlPayload(value));
  }

  async writeAll(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) at += await this.conn.write(bytes.subarray(at));
  }

  /** The next frame; throws {@link StreamError} when the stream ends, stalls or is malformed. */
  async next(): Promise<{ type: number; payload: Uint8Array }> {
    for (;;) {
      const body = this.#reader.next();
      if (body) {
        // Room again in the read-ahead: let the pump go on.
        if (this.#reader.buffered < READ_AHEAD_BYTES) this.#resume?.();
        const plain = this.cipher ? this.cipher.open(body) : body;
        const frame = plain && splitBody(plain);
        if (!frame) {
          throw new StreamError(this.cipher ? "a frame did not open (another network key?)" : "an empty frame");
        }
        return frame;
      }
      if (this.#reader.error) throw new StreamError(this.#reader.error);
      if (this.#ended) throw this.#ended;
      if (!this.#pumping) this.#pump();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const woke = await Promise.race([
        new Promise<"more">((resolve) => this.#wake = () => resolve("more")),
        new Promise<"stalled">((resolve) => timer = setTimeout(() => resolve("stalled"), this.stallMs)),
      ]).finally(() => clearTimeout(timer));
      this.#wake = undefined;
      if (woke === "stalled") {
        this.close();
        throw new StreamError(`nothing came for ${Math.round(this.stallMs / 1000)} s`);
      }
    }
  }

  /**
   * Reads the socket into the frame reader: one read at a time during the
   * handshake, then (with {@link readAhead}) continuously, up to
   * READ_AHEAD_BYTES ahead of what has been taken, so the network keeps
   * flowing while a frame is written to disk and hashed.
   */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      do {
        if (this.#reader.buffered >= READ_AHEAD_BYTES) {
          await new Promise<void>((resolve) => this.#resume = resolve);
          this.#resume = undefined;
          continue;
        }
        // One buffer for every read, and a copy of what came: a view into a fresh 1 MiB buffer per
        // read kept the whole megabyte alive for a 64 KiB read (150 MiB during a 4 GiB transfer).
        const buf = this.#readBuffer ??= new Uint8Array(READ_CHUNK);
        let n: number | null;
        try {
          n = await this.conn.read(buf);
        } catch (e) {
          this.#ended = new StreamError(`the connection broke: ${(e as Error).message}`);
          break;
        }
        if (n === null) {
          this.#ended = new StreamError("the peer closed the connection");
          break;
        }
        this.#reader.push(buf.slice(0, n));
        this.#wake?.();
      } while (this.readAhead && !this.#closed);
    } finally {
      this.#pumping = false;
      this.#wake?.();
    }
  }

  /** The next frame, which must be a control frame of `type` (an error frame becomes a thrown {@link RemoteError}). */
  async control(type: number): Promise<Record<string, unknown>> {
    const f = await this.next();
    if (f.type === FrameType.error) {
      const v = parseControl(f.payload);
      throw new RemoteError(String(v?.error ?? "the peer refused"), String(v?.code ?? "error"));
    }
    if (f.type !== type) throw new StreamError(`expected frame type ${type}, got ${f.type}`);
    const v = parseControl(f.payload);
    if (!v) throw new StreamError("a malformed control frame");
    return v;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#resume?.();
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
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
