/**
 * The HTTP/1.1 server under the API: its own accept loop on `Deno.listen`,
 * a cap on open connections, and per-connection deadlines, with requests
 * parsed by `http-parser-js` and handed to a `Request → Response` handler.
 *
 * Why not `Deno.serve`: it has no connection cap and never closes an idle
 * connection, and when the process runs out of file descriptors its accept
 * loop ends the process (`Uncaught (in promise) Http: Error: Too many open
 * files`). node:http under Deno stops accepting for good after the same
 * error, and its header and keep-alive timeouts do not close idle sockets.
 * A proxy in front of `Deno.serve` on a Unix socket was measured at 27 % of
 * its throughput for a 548 KiB `/peers`. Here:
 *
 * - at most `maxConnections` are open; a new one past the cap closes the
 *   connection that has been waiting longest without a request in progress
 *   (an idle keep-alive or one still sending its head), else it is answered
 *   `503` and closed: a flood of idle connections cannot lock clients out;
 * - a request head must arrive within `headerTimeoutMs` (of the connection
 *   or of its first byte), a body must make progress every `bodyTimeoutMs`,
 *   a keep-alive connection is closed after `idleTimeoutMs` without a
 *   request, and a response write that stalls `writeTimeoutMs` closes it;
 *   a request that is being answered (an event stream, a `?wait=`) has no
 *   deadline;
 * - an event stream goes out chunked as it is written; a body with a
 *   `content-length` is streamed; any other body is read whole, then sent
 *   with its length;
 * - an accept that fails for want of file descriptors is counted, reported,
 *   frees the longest-idle connection and retries after a pause: never a
 *   crash.
 *
 * @module
 */
import {
  CLOSE_REASONS,
  type CloseReason,
  Connection,
  type ConnectionHost,
  DEFAULT_HTTP_LIMITS,
  type HttpLimits,
} from "./http_connection.ts";

export { CLOSE_REASONS, type CloseReason, DEFAULT_HTTP_LIMITS, type HttpLimits };

/** Pause before accepting again after running out of file descriptors. */
const FD_BACKOFF_MS = 10;
/** File descriptors kept free by closing idle connections after running out of them. */
const FD_HEADROOM = 16;
/** How long the lowered cap holds after the last time file descriptors ran out. */
const FD_CAP_HOLD_MS = 30_000;

/** What the server counts. */
export interface HttpServerStats {
  /** Connections open now. */
  open: number;
  accepted: number;
  /** Connections the server closed, by reason. */
  closed: Record<CloseReason, number>;
  /** Accepts that failed for want of file descriptors. */
  fdExhausted: number;
  requests: number;
}

/** A running HTTP server. */
export interface HttpServer {
  addr: Deno.NetAddr;
  /** The connection cap in force (the limit, lowered to fit the open-file limit). */
  maxConnections: number;
  stats(): HttpServerStats;
  shutdown(): Promise<void>;
}

export interface ServeOptions {
  limits?: Partial<HttpLimits>;
  /** Called when an accept fails for want of file descriptors. */
  onFdExhausted?: (error: Error) => void;
  /** Called before the server closes open connections on shutdown (e.g. to end event streams). */
  onShutdown?: () => void;
  /** The clock, for tests. */
  now?: () => number;
}

/** True when an error means the process (or system) has no file descriptor left. */
export function isOutOfFds(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === "EMFILE" || code === "ENFILE" || /too many open files/i.test((e as Error)?.message ?? "");
}

/**
 * The soft open-file limit of this process, from `/proc/self/limits` (Linux);
 * undefined where that cannot be read.
 */
export function openFileLimit(
  read: () => string = () => Deno.readTextFileSync("/proc/self/limits"),
): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(read());
    if (!m || m[1] === "unlimited") return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * The connection cap that fits `fdLimit`: each connection holds one file
 * descriptor, and the rest of the daemon (sockets, database, logs) keeps a
 * reserve of 64.
 */
export function connectionCap(wanted: number, fdLimit: number | undefined): number {
  if (fdLimit === undefined) return wanted;
  return Math.max(1, Math.min(wanted, fdLimit - 64));
}

/**
 * Serves `handler` on `hostname:port` (port 0 picks one).
 *
 * @throws {Error} with the address and cause when the port cannot be bound.
 */
export function serveHttp(
  hostname: string,
  port: number,
  handler: (req: Request) => Response | Promise<Response>,
  options: ServeOptions = {},
): HttpServer {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname, port, transport: "tcp" });
  } catch (e) {
    const why = e instanceof Deno.errors.AddrInUse ? "address already in use" : (e as Error).message;
    throw new Error(`Cannot serve HTTP on ${hostname}:${port}: ${why}; pick another with --http HOST:PORT`, {
      cause: e,
    });
  }
  return new Server(listener, handler, options);
}

class Server implements HttpServer, ConnectionHost {
  readonly addr: Deno.NetAddr;
  readonly maxConnections: number;
  readonly limits: HttpLimits;
  readonly now: () => number;
  readonly handler: (req: Request) => Response | Promise<Response>;
  #listener: Deno.TcpListener;
  #options: ServeOptions;
  #conns = new Set<Connection>();
  #counts = {
    accepted: 0,
    fdExhausted: 0,
    requests: 0,
    closed: Object.fromEntries(CLOSE_REASONS.map((r) => [r, 0])) as Record<CloseReason, number>,
  };
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** Cap after running out of file descriptors, until {@link #fdCapUntil}. */
  #fdCap = Infinity;
  #fdCapUntil = 0;
  #acceptLoop: Promise<void>;

  constructor(listener: Deno.TcpListener, handler: (req: Request) => Response | Promise<Response>, o: ServeOptions) {
    this.#listener = listener;
    this.addr = listener.addr;
    this.handler = handler;
    this.#options = o;
    this.limits = { ...DEFAULT_HTTP_LIMITS, ...o.limits };
    this.maxConnections = connectionCap(this.limits.maxConnections, openFileLimit());
    this.now = o.now ?? (() => performance.now());
    this.#acceptLoop = this.#accept();
  }

  stats(): HttpServerStats {
    return { open: this.#conns.size, ...this.#counts, closed: { ...this.#counts.closed } };
  }

  /** @internal A connection closed itself or was closed. */
  forget(c: Connection, reason?: CloseReason): void {
    if (!this.#conns.delete(c)) return;
    if (reason) this.#counts.closed[reason]++;
    if (this.#conns.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** @internal */
  countRequest(): void {
    this.#counts.requests++;
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closed || e instanceof Deno.errors.BadResource) return;
        if (isOutOfFds(e)) {
          this.#counts.fdExhausted++;
          this.#options.onFdExhausted?.(e as Error);
          // Something else holds file descriptors too: until it has been
          // quiet a while, keep FD_HEADROOM of them free by closing idle
          // connections, so that the queued ones get their turn.
          this.#fdCap = Math.max(1, this.#conns.size - FD_HEADROOM);
          this.#fdCapUntil = this.now() + FD_CAP_HOLD_MS;
          while (this.#conns.size > this.#fdCap && this.#evictOne());
          await new Promise((r) => setTimeout(r, FD_BACKOFF_MS));
        }
        // Anything else (a connection reset before it was accepted): go on.
        continue;
      }
      this.#counts.accepted++;
      // Answers are written whole or in large slices; events must not wait for an ack (Nagle).
      try {
        conn.setNoDelay(true);
      } catch { /* already closed by the peer */ }
      if (this.#conns.size >= this.#cap() && !this.#evictOne()) {
        this.#counts.closed.refused++;
        refuse(conn);
        continue;
      }
      const c = new Connection(this, conn);
      this.#conns.add(c);
      this.#sweeper ??= setInterval(() => this.#sweep(), 250);
      c.start();
    }
  }

  /** The cap now: lowered for a while after the process ran out of file descriptors. */
  #cap(): number {
    if (this.#fdCap < this.maxConnections && this.now() > this.#fdCapUntil) this.#fdCap = Infinity;
    return Math.min(this.maxConnections, this.#fdCap);
  }

  /** Closes the connection waiting longest without a request in progress; false when every one is busy. */
  #evictOne(): boolean {
    let oldest: Connection | undefined;
    for (const c of this.#conns) {
      if (c.evictable && (!oldest || c.lastActive < oldest.lastActive)) oldest = c;
    }
    if (!oldest) return false;
    oldest.close("evicted");
    return true;
  }

  #sweep(): void {
    const now = this.now();
    for (const c of this.#conns) c.checkDeadline(now);
  }

  async shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    await this.#acceptLoop;
    this.#options.onShutdown?.();
    for (const c of [...this.#conns]) c.close();
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}

/** Answers a connection over the cap with a 503 and closes it, without waiting on the client. */
function refuse(conn: Deno.TcpConn): void {
  const body = '{"error":"Too many connections open to this daemon; retry shortly","status":503}\n';
  const text = `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${body.length}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${body}`;
  conn.write(new TextEncoder().encode(text)).catch(() => {}).finally(() => {
    try {
      conn.close();
    } catch { /* gone */ }
  });
}
