/**
 * Frames of lanchat's file stream (TCP): a stream has no message
 * boundaries, so every frame says its own length.
 *
 * ```
 * offset 0..3  body length, 32-bit big-endian (at most MAX_FRAME_BODY)
 * offset 4..   body: one type byte, then the type's payload
 *              (sealed after the handshake: see security/file_cipher.ts)
 * ```
 *
 * The handshake: the server sends `hello` at once. A fetcher that knows
 * the server's static key (its hello on the LAN carries it) sends `init` at
 * once, without waiting for the hello, reads the hello and the `reply`, and
 * from then on every frame both ways is sealed with the keys the two split
 * (security/file_handshake.ts), its first the `want`. A previous-version
 * fetcher (or server) answers the hello with `auth`, as before.
 *
 * Control frames carry a UTF-8 JSON object; `data` frames carry file
 * bytes. {@link FrameReader} cuts frames out of whatever chunks the socket
 * gives (one byte at a time or many frames at once). Pure: no I/O; a
 * malformed stream is a returned error, never a throw.
 *
 * @module
 */

/** Frame types. Append-only: they are part of the protocol. */
export const FrameType = {
  /** server → client, first frame, never sealed: `{v, challenge, e2e: 1}` (a previous version: no `e2e`) */
  hello: 1,
  /** client → server, previous versions' handshake, never sealed: `{v, offer, id, publicKey, nonce, signature}` */
  auth: 2,
  /** server → client: `{ok: true}` or `{error}` (sealed once a key is agreed) */
  welcome: 3,
  /** client → server: `{file, offset}`: file -1 is the manifest */
  get: 4,
  /** server → client: `{size, offset}` then data frames, then `end` */
  file: 5,
  data: 6,
  /** end of one file's bytes: `{bytes}` sent in this answer */
  end: 7,
  /** client → server: `{file, sha256ok}` once a file is checked */
  verified: 8,
  /** either way: `{error, code}`; the connection closes after it */
  error: 9,
  /** client → server, first frame, never sealed: the Noise IK initiation (an e2e initiation, 230 bytes) */
  init: 10,
  /** server → client, after `hello`, never sealed: the Noise IK response (an e2e response, 78 bytes) */
  reply: 11,
  /** client → server, the first sealed frame: `{v: 2, offer, hello}`, `hello` the SHA-256 (hex) of the hello's payload */
  want: 12,
} as const;
export type FrameTypeName = keyof typeof FrameType;

/** Bytes of file data per data frame. */
export const DATA_CHUNK = 1024 * 1024;
/** Largest frame body accepted: a data chunk, its type byte and a cipher's tag, with room. */
export const MAX_FRAME_BODY = DATA_CHUNK + 64;
/** Largest JSON payload of a control frame. */
export const MAX_CONTROL_JSON = 64 * 1024;

/** One frame out of the stream. */
export interface Frame {
  type: number;
  payload: Uint8Array;
}

/** Header + body for one frame (the body already sealed when a key is used). */
export function frameBytes(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** A frame's plain body: its type byte and payload. */
export function frameBody(type: number, payload: Uint8Array): Uint8Array {
  const body = new Uint8Array(1 + payload.length);
  body[0] = type;
  body.set(payload, 1);
  return body;
}

/** A control frame's payload. */
export function controlPayload(value: Record<string, unknown>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** Reads a control frame's JSON object; undefined for anything but a JSON object of at most MAX_CONTROL_JSON bytes. */
export function parseControl(payload: Uint8Array): Record<string, unknown> | undefined {
  if (payload.length > MAX_CONTROL_JSON) return undefined;
  try {
    const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
    return v !== null && typeof v === "object" && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The body length a 4-byte frame header says, or why it cannot be read (past MAX_FRAME_BODY). */
export function bodyLength(head: Uint8Array): number | string {
  const length = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
  return length > MAX_FRAME_BODY ? `a frame of ${length} bytes (at most ${MAX_FRAME_BODY})` : length;
}

/** Splits a frame body into type and payload; undefined for an empty body. */
export function splitBody(body: Uint8Array): Frame | undefined {
  if (body.length === 0) return undefined;
  return { type: body[0]!, payload: body.subarray(1) };
}

/**
 * Cuts frame bodies out of a byte stream. Feed it chunks; take bodies with
 * {@link next}. Holds at most one partial frame (≤ MAX_FRAME_BODY + 4 bytes).
 */
export class FrameReader {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #need = -1;
  #scratch = new Uint8Array(0);
  /** Set once the stream is malformed (a length past the maximum); nothing more is read. */
  error: string | undefined;

  /** Adds bytes from the socket. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0 || this.error) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** Bytes held, waiting for the rest of their frame. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * The next whole frame body, or undefined until more bytes come. The body
   * may be a view into a buffer the reader reuses: it is valid until the
   * next call (copy it to keep it).
   */
  next(): Uint8Array | undefined {
    if (this.error) return undefined;
    if (this.#need < 0) {
      if (this.#buffered < 4) return undefined;
      const length = bodyLength(this.#take(4));
      if (typeof length === "string") {
        this.error = length;
        this.#chunks = [];
        this.#buffered = 0;
        return undefined;
      }
      this.#need = length;
    }
    if (this.#buffered < this.#need) return undefined;
    const body = this.#take(this.#need);
    this.#need = -1;
    return body;
  }

  #take(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      // Whole in the first chunk: a view, no copy.
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return out;
    }
    // Spread over chunks: assembled in one buffer that is reused (a frame body is valid until the next
    // call to next(): callers finish with it first), not a new megabyte per frame for the GC to find.
    if (this.#scratch.length < n) this.#scratch = new Uint8Array(Math.max(n, 64 * 1024));
    const out = this.#scratch.subarray(0, n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    return out;
  }
}
