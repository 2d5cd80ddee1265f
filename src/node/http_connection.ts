/**
 * One HTTP/1.1 connection of the API's server (node/http_server.ts): reads
 * and parses requests (http-parser-js), answers them in order through the
 * handler, tracks the deadline of the phase it is in (head, body, idle;
 * none while an answer is being written), and writes responses: event
 * streams chunked, bodies of declared length streamed, the rest whole.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { HTTPParser } from "http-parser-js";

/** Connection limits and deadlines. */
export interface HttpLimits {
  /** Most connections open at once. */
  maxConnections: number;
  /** Time allowed for a request head, from the connection (or the request's first byte). */
  headerTimeoutMs: number;
  /** Longest pause while a request body arrives. */
  bodyTimeoutMs: number;
  /** How long a keep-alive connection may wait for its next request. */
  idleTimeoutMs: number;
  /** Longest a response write may stall (a client that does not read). */
  writeTimeoutMs: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = {
  maxConnections: 256,
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  writeTimeoutMs: 30_000,
};

/** Largest request head (request line and headers). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Bytes read from a connection at a time. */
const READ_BUFFER_BYTES = 16 * 1024; /** Why the server closed a connection itself. */
export type CloseReason =
  | "header-timeout"
  | "body-timeout"
  | "idle-timeout"
  | "write-timeout"
  | "evicted"
  | "refused"
  | "bad-request";

export const CLOSE_REASONS: readonly CloseReason[] = [
  "header-timeout",
  "body-timeout",
  "idle-timeout",
  "write-timeout",
  "evicted",
  "refused",
  "bad-request",
];

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly limits: HttpLimits;
  readonly handler: (req: Request) => Response | Promise<Response>;
  now(): number;
  /** The connection closed (itself, or by the server); `reason` when the server closed it. */
  forget(c: Connection, reason?: CloseReason): void;
  countRequest(): void;
}

/** A request whose head was parsed; its body arrives through `body`. */
interface Incoming {
  request: Request;
  head: boolean;
  keepAlive: boolean;
  /** Set once the whole message (head and body) has been read. */
  complete: boolean;
  body?: ReadableStreamDefaultController<Uint8Array>;
  /** A problem found in the head: answered with this status, then closed. */
  error?: { status: number; message: string };
}

type Phase = "head" | "body" | "busy" | "idle";

export class Connection {
  lastActive: number;
  #server: ConnectionHost;
  #conn: Deno.TcpConn;
  #phase: Phase = "head";
  #deadline: number;
  #parser = new HTTPParser(HTTPParser.REQUEST);
  #queue: Incoming[] = [];
  /** The request whose body the parser is reading, if any. */
  #reading: Incoming | undefined;
  #working = false;
  #closed = false;
  #eof = false;
  /** Resolves the read loop once the response in progress is written (bytes arrived meanwhile wait). */
  #resume: (() => void) | undefined;
  /** Resolves the read loop when a request body's reader wants more. */
  #pull: (() => void) | undefined;
  #writeDeadline = Infinity;
  /** The body of the response being written, cancelled if the client goes away. */
  #responseReader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** Bytes of the request head read so far, and its last four bytes (for the blank line). */
  #headBytes = 0;
  #headTail = 0;

  constructor(server: ConnectionHost, conn: Deno.TcpConn) {
    this.#server = server;
    this.#conn = conn;
    this.lastActive = server.now();
    this.#deadline = this.lastActive + server.limits.headerTimeoutMs;
    this.#parser.maxHeaderSize = MAX_HEAD_BYTES;
    this.#parser[HTTPParser.kOnHeadersComplete] = (info) => this.#onHead(info);
    this.#parser[HTTPParser.kOnBody] = (chunk: Buffer) => this.#onBody(chunk);
    this.#parser[HTTPParser.kOnMessageComplete] = () => this.#onMessageComplete();
  }

  /** Waiting for a request (idle, or its head still arriving): may be closed to make room. */
  get evictable(): boolean {
    return !this.#closed && (this.#phase === "idle" || this.#phase === "head") && this.#queue.length === 0;
  }

  start(): void {
    this.#readLoop().catch(() => this.close());
  }

  checkDeadline(now: number): void {
    if (this.#closed) return;
    if (now >= this.#writeDeadline) return this.close("write-timeout");
    if (now < this.#deadline) return;
    const reason: Record<Phase, CloseReason | undefined> = {
      head: "header-timeout",
      body: "body-timeout",
      idle: "idle-timeout",
      busy: undefined,
    };
    const r = reason[this.#phase];
    if (r) this.close(r);
  }

  close(reason?: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#cancelResponse();
    for (const r of [this.#reading, ...this.#queue]) {
      try {
        r?.body?.error(new Error("connection closed"));
      } catch { /* done */ }
    }
    this.#resume?.();
    this.#pull?.();
    this.#server.forget(this, reason);
  }

  #setPhase(phase: Phase): void {
    this.#phase = phase;
    const l = this.#server.limits;
    const now = this.#server.now();
    this.#deadline = phase === "head"
      ? now + l.headerTimeoutMs
      : phase === "body"
      ? now + l.bodyTimeoutMs
      : phase === "idle"
      ? now + l.idleTimeoutMs
      : Infinity;
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    while (!this.#closed) {
      let n: number | null;
      try {
        n = await this.#conn.read(buffer);
      } catch {
        n = null;
      }
      if (this.#closed) return;
      if (n === null) {
        this.#eof = true;
        // A client that went away: a response still streaming to it (an
        // event stream) is cancelled, which tells its source to stop.
        this.#cancelResponse();
        if (!this.#working) this.close();
        return;
      }
      this.lastActive = this.#server.now();
      let bytes = buffer.subarray(0, n);
      // A request is being answered: what comes meanwhile (a pipelined
      // request) waits, without reading more, until that answer is out.
      if (this.#working && !this.#reading) {
        bytes = bytes.slice();
        await new Promise<void>((r) => this.#resume = r);
        this.#resume = undefined;
        if (this.#closed) return;
      }
      if (this.#phase === "idle") this.#setPhase("head");
      else if (this.#phase === "body") this.#setPhase("body");
      if (this.#phase === "head" && this.#headTooLong(bytes)) {
        this.#badRequest(431, `The request head is over ${MAX_HEAD_BYTES} bytes`);
        return;
      }
      const r = this.#parser.execute(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      if (r instanceof Error) {
        this.#badRequest(/header size/.test(r.message) ? 431 : 400, `Malformed request: ${r.message}`);
        return;
      }
      this.#work();
      // Backpressure: a body nobody reads is not read from the socket either.
      const body = this.#reading?.body;
      if (body && (body.desiredSize ?? 1) <= 0) {
        await new Promise<void>((r) => this.#pull = r);
        this.#pull = undefined;
      }
    }
  }

  /**
   * Counts the bytes of a request head as they arrive (the parser checks
   * its own limit only between reads): true once the head, up to its blank
   * line, is over {@link MAX_HEAD_BYTES}.
   */
  #headTooLong(bytes: Uint8Array): boolean {
    for (let i = 0; i < bytes.length; i++) {
      this.#headBytes++;
      this.#headTail = ((this.#headTail << 8) | bytes[i]!) >>> 0;
      if (this.#headTail === 0x0d0a0d0a) {
        this.#headBytes = 0;
        return false;
      }
      if (this.#headBytes > MAX_HEAD_BYTES) return true;
    }
    return false;
  }

  #onHead(info: {
    method: number;
    url: string;
    versionMajor: number;
    versionMinor: number;
    headers: string[];
    shouldKeepAlive: boolean;
    upgrade: boolean;
  }): number {
    const method = HTTPParser.methods[info.method] ?? "GET";
    // Header pairs and a URL string: the Request constructor then builds its
    // Headers and URL once (a Headers object and a URL cost twice the time).
    const pairs: [string, string][] = [];
    let error: Incoming["error"];
    let lengths = 0;
    let length = 0;
    let chunked = false;
    let host = "localhost";
    let expectContinue = false;
    for (let i = 0; i < info.headers.length; i += 2) {
      const name = info.headers[i]!;
      const value = info.headers[i + 1] ?? "";
      pairs.push([name, value]);
      switch (name.toLowerCase()) {
        case "content-length":
          lengths++;
          length = Number(value.trim());
          if (!/^\d{1,15}$/.test(value.trim())) error = { status: 400, message: "Content-Length is not a number" };
          break;
        case "transfer-encoding":
          chunked = true;
          if (value.trim().toLowerCase() !== "chunked") {
            error = { status: 501, message: `Transfer-Encoding ${value} is not supported` };
          }
          break;
        case "host":
          host = value;
          break;
        case "expect":
          expectContinue = /^100-continue$/i.test(value.trim());
          break;
      }
    }
    if (lengths > 1 || (lengths > 0 && chunked)) {
      error = { status: 400, message: "Conflicting Content-Length and Transfer-Encoding headers" };
    }
    if (info.upgrade) error = { status: 501, message: "Protocol upgrades are not supported" };
    // Only HTTP/1.0 and 1.1 are spoken here: another version is refused, not answered as if it were 1.1.
    if (info.versionMajor !== 1 || (info.versionMinor !== 0 && info.versionMinor !== 1)) {
      error = {
        status: 505,
        message: `HTTP/${info.versionMajor}.${info.versionMinor} is not supported: use HTTP/1.1`,
      };
    }
    if (!info.url.startsWith("/")) error ??= { status: 400, message: "The request target must be a path" };
    const hasBody = chunked || length > 0;
    const incoming: Incoming = {
      request: undefined as unknown as Request,
      head: method === "HEAD",
      keepAlive: info.shouldKeepAlive && !error,
      complete: false,
      error,
    };
    let body: ReadableStream<Uint8Array> | undefined;
    if (hasBody && method !== "GET" && method !== "HEAD") {
      body = new ReadableStream<Uint8Array>({
        start: (c) => {
          incoming.body = c;
        },
        pull: () => this.#pull?.(),
        cancel: () => {
          incoming.body = undefined;
          this.#pull?.();
        },
      }, { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength });
    }
    const path = info.url.startsWith("/") ? info.url : "/";
    // No AbortSignal (it would cost a third of the request's allocations):
    // a client that goes away cancels the response body instead.
    const init = { method, headers: pairs, body, duplex: "half" } as RequestInit;
    try {
      incoming.request = new Request(`http://${host}${path}`, init);
    } catch {
      // A Host that makes no URL, or a header the fetch API refuses.
      try {
        incoming.request = new Request(`http://localhost${path}`, init);
      } catch {
        incoming.request = new Request("http://localhost/");
        incoming.error ??= { status: 400, message: "Malformed request head" };
        incoming.keepAlive = false;
      }
    }
    if (body && expectContinue && !incoming.error) {
      this.#write(new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n")).catch(() => this.close());
    }
    this.#server.countRequest();
    this.#reading = incoming;
    this.#queue.push(incoming);
    this.#setPhase(hasBody ? "body" : "busy");
    return 0;
  }

  #onBody(chunk: Buffer): void {
    const r = this.#reading;
    if (!r?.body) return; // nobody reads it: dropped (the connection closes after the answer)
    try {
      r.body.enqueue(new Uint8Array(chunk));
    } catch { /* cancelled */ }
  }

  #onMessageComplete(): void {
    const r = this.#reading;
    if (!r) return;
    r.complete = true;
    try {
      r.body?.close();
    } catch { /* cancelled */ }
    this.#reading = undefined;
    this.#setPhase("busy");
  }

  /** Answers queued requests in order, one at a time. */
  #work(): void {
    if (this.#working || this.#closed) return;
    const next = this.#queue[0];
    if (!next) return;
    this.#working = true;
    this.#respond(next).then(
      () => {
        this.#queue.shift();
        this.#working = false;
        // An answer sent before its request's body was all read: the rest of
        // the body would be taken for the next request, so the connection ends.
        if (!next.keepAlive || !next.complete || this.#eof) return this.close();
        if (this.#queue.length === 0 && !this.#reading) this.#setPhase("idle");
        this.#resume?.();
        this.#work();
      },
      () => this.close(),
    );
  }

  async #respond(incoming: Incoming): Promise<void> {
    let res: Response;
    if (incoming.error) {
      res = Response.json({ error: incoming.error.message, status: incoming.error.status }, {
        status: incoming.error.status,
      });
      incoming.keepAlive = false;
    } else {
      try {
        res = await this.#server.handler(incoming.request);
      } catch (e) {
        res = Response.json({ error: `Internal error: ${(e as Error).message}`, status: 500 }, { status: 500 });
      }
    }
    if (this.#closed) {
      await res.body?.cancel().catch(() => {});
      return;
    }
    await this.#writeResponse(res, incoming);
  }

  /**
   * Writes a response. An event stream (`text/event-stream`), or a body
   * the handler marked `transfer-encoding: chunked` (a large JSON answer
   * made a slice at a time), goes out chunked, each piece as it comes; a
   * body with a `content-length` is streamed under that length; any other
   * body is read whole first (the API's JSON and text) and sent with its
   * length.
   */
  async #writeResponse(res: Response, incoming: Incoming): Promise<void> {
    const keepAlive = incoming.keepAlive && incoming.complete;
    const lines = [`HTTP/1.1 ${res.status} ${reason(res.status)}`, `date: ${httpDate()}`];
    for (const [k, v] of res.headers) {
      if (!HOP_BY_HOP.has(k)) lines.push(`${k}: ${v}`);
    }
    if (!keepAlive) lines.push("connection: close");
    if (incoming.head || res.status === 204 || res.status === 304 || res.body === null) {
      await res.body?.cancel().catch(() => {});
      if (!incoming.head) lines.push("content-length: 0");
      await this.#write(encodeHead(lines));
      return;
    }
    const declared = res.headers.get("content-length");
    const events = /^text\/event-stream/i.test(res.headers.get("content-type") ?? "");
    const streamed = events || /^chunked$/i.test(res.headers.get("transfer-encoding") ?? "");
    if (!streamed && declared === null) {
      const body = await res.bytes();
      lines.push(`content-length: ${body.byteLength}`);
      // A small answer goes out in one write; a large one is not copied to put its head in front.
      if (body.byteLength <= 16 * 1024) await this.#write(concat(encodeHead(lines), body));
      else {
        await this.#write(encodeHead(lines));
        await this.#write(body);
      }
      return;
    }
    const reader = res.body.getReader();
    this.#responseReader = reader;
    try {
      if (events) {
        // Each event goes out as it comes.
        lines.push("transfer-encoding: chunked");
        await this.#write(encodeHead(lines));
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          if (r.value.byteLength > 0) await this.#write(chunk(r.value));
        }
        await this.#write(LAST_CHUNK);
      } else if (streamed) {
        // A long answer made a slice at a time: the head goes with the first
        // slice and the end with the last, so a short one is a single write.
        lines.push("transfer-encoding: chunked");
        let pending = encodeHead(lines);
        let first = true;
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          if (r.value.byteLength === 0) continue;
          if (first) pending = concat(pending, chunk(r.value));
          else {
            await this.#write(pending);
            pending = chunk(r.value);
          }
          first = false;
        }
        await this.#write(concat(pending, LAST_CHUNK));
      } else {
        let left = Number(declared);
        lines.push(`content-length: ${left}`);
        await this.#write(encodeHead(lines));
        for (let r = await reader.read(); !r.done && left > 0; r = await reader.read()) {
          const piece = r.value.subarray(0, left);
          await this.#write(piece);
          left -= piece.byteLength;
        }
        // A body shorter than it said: the client cannot tell where it ends.
        if (left > 0) throw new Error(`response body ended ${left} bytes short of its content-length`);
      }
    } catch (e) {
      await reader.cancel().catch(() => {});
      throw e;
    } finally {
      this.#responseReader = undefined;
    }
  }

  #cancelResponse(): void {
    this.#responseReader?.cancel().catch(() => {});
    this.#responseReader = undefined;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    this.#writeDeadline = this.#server.now() + this.#server.limits.writeTimeoutMs;
    try {
      let off = 0;
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    } finally {
      this.#writeDeadline = Infinity;
    }
  }

  #badRequest(status: number, message: string): void {
    this.#reading = undefined;
    this.#queue.push({
      request: new Request("http://localhost/"),
      head: false,
      keepAlive: false,
      complete: true,
      error: { status, message },
    });
    this.#work();
  }
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "date"]);
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");
const CRLF = new TextEncoder().encode("\r\n");

function encodeHead(lines: string[]): Uint8Array {
  return new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
}

function chunk(data: Uint8Array): Uint8Array {
  return concat(new TextEncoder().encode(data.byteLength.toString(16) + "\r\n"), data, CRLF);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

let dateCache = { second: -1, text: "" };
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateCache.second) dateCache = { second, text: new Date(second * 1000).toUTCString() };
  return dateCache.text;
}

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  206: "Partial Content",
  207: "Multi-Status",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
  507: "Insufficient Storage",
};

function reason(status: number): string {
  return REASONS[status] ?? "Status";
}
