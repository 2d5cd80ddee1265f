/**
 * The only code that opens sockets. {@link Transport} is the narrow subset of
 * `Deno.DatagramConn` the daemon uses, so a real socket fits without a
 * wrapper and {@link FakeNetwork} can stand in for one in tests.
 *
 * @module
 */

/** A datagram socket: send, receive, close, and its own address. */
export interface Transport {
  readonly addr: Deno.Addr;
  send(p: Uint8Array, addr: Deno.Addr): Promise<number>;
  receive(p?: Uint8Array): Promise<[Uint8Array, Deno.Addr]>;
  close(): void;
  /** Joins an IPv6 multicast group on the interface of that index (absent: the socket cannot, as on a fake network). */
  joinMulticastV6?(address: string, networkInterface: number): Promise<Deno.MulticastV6Membership>;
}

/**
 * Receive buffer size: larger than any UDP payload (65,507 bytes), because
 * the kernel cuts a datagram larger than the buffer without telling. A
 * datagram above the protocol limit is then seen whole and dropped as
 * oversize by the decoder.
 */
export const RECEIVE_BUFFER_SIZE = 65_536;

/** Raised when a socket cannot be bound, with the address and the cause. */
export class BindError extends Error {
  override name = "BindError";
  /** True when another process holds the port. */
  readonly inUse: boolean;
  constructor(hostname: string, port: number, cause: unknown, protocol: "UDP" | "TCP" = "UDP") {
    const inUse = cause instanceof Deno.errors.AddrInUse;
    const why = inUse ? "address already in use" : cause instanceof Error ? cause.message : String(cause);
    super(`Cannot bind ${protocol} ${hostname}:${port}: ${why}`, { cause });
    this.inUse = inUse;
  }
}

/** Binds a UDP socket. Throws {@link BindError} with a message a user can act on. */
export function bindUdp(hostname: string, port: number, options: { reuseAddress?: boolean } = {}): Transport {
  try {
    return Deno.listenDatagram({ transport: "udp", hostname, port, reuseAddress: options.reuseAddress ?? false });
  } catch (e) {
    throw new BindError(hostname, port, e);
  }
}

/** Listens on a TCP port (file transfer). Throws {@link BindError} with a message a user can act on. */
export function listenTcp(hostname: string, port: number): Deno.TcpListener {
  try {
    return Deno.listen({ transport: "tcp", hostname, port });
  } catch (e) {
    throw new BindError(hostname, port, e, "TCP");
  }
}

/** Opens a TCP connection (file transfer), with TCP_NODELAY: frames go out as they are written. */
export async function connectTcp(hostname: string, port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ transport: "tcp", hostname, port });
  conn.setNoDelay(true);
  return conn;
}

/** The IPv4/IPv6 address and port of a UDP address. */
export function endpointOf(addr: Deno.Addr): { address: string; port: number } {
  if (addr.transport !== "udp" && addr.transport !== "tcp") throw new TypeError(`Not an IP address: ${addr.transport}`);
  // A dual-stack socket reports IPv4 senders as ::ffff:a.b.c.d.
  const host = addr.hostname.startsWith("::ffff:") && addr.hostname.includes(".")
    ? addr.hostname.slice(7)
    : addr.hostname;
  return { address: host, port: addr.port };
}

/** A UDP `Deno.Addr` for an address and port. */
export function udpAddr(address: string, port: number): Deno.NetAddr {
  return { transport: "udp", hostname: address, port };
}

/** Datagrams a receive loop handles before it lets the event loop turn. */
export const YIELD_EVERY = 64;

/**
 * Runs a receive loop with one reused buffer (the `for await` iterator
 * allocates 64 KiB per datagram and loses most of a burst) until the socket
 * is closed. `onDatagram` gets a view into the shared buffer, valid only until
 * it returns. Receive errors that do not mean "closed" (an ICMP port
 * unreachable surfacing as ConnectionRefused, say) are passed to `onError`
 * and the loop goes on: nothing the network sends ends it.
 */
export async function receiveLoop(
  transport: Transport,
  onDatagram: (bytes: Uint8Array, from: Deno.Addr) => void | Promise<void>,
  onError: (error: unknown) => void,
): Promise<void> {
  const buffer = new Uint8Array(RECEIVE_BUFFER_SIZE);
  let handled = 0;
  while (true) {
    // While datagrams keep coming, each receive completes at once and this
    // loop would never let timers or the HTTP server run: under a flood the
    // daemon would stop answering. Every YIELD_EVERY datagrams it lets the
    // event loop turn; what the socket cannot hold meanwhile the kernel drops.
    // (setImmediate, not setTimeout(0): that waits about 2 ms here, which
    // capped a busy socket at ~7,000 datagrams/s; measured with a flood,
    // setImmediate still lets timers and HTTP run, 0.4 / 6 ms late at most.)
    if (++handled % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
    let bytes: Uint8Array;
    let from: Deno.Addr;
    try {
      [bytes, from] = await transport.receive(buffer);
    } catch (e) {
      if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) return;
      onError(e);
      continue;
    }
    try {
      // An async handler (opening a sealed datagram) is awaited before the
      // next receive: the buffer is reused, and datagrams keep their order.
      const r = onDatagram(bytes, from);
      if (r) await r;
    } catch (e) {
      onError(e);
    }
  }
}

/**
 * An in-memory UDP network for tests: transports bound to addresses on it
 * deliver to each other; an address ending in `.255` is a broadcast to every
 * transport bound to that port. Optional loss. Delivery is asynchronous
 * (next microtask), as with real sockets.
 */
export class FakeNetwork {
  #bound = new Map<string, FakeTransport>();
  /** Probability in [0, 1) that a datagram is lost, per receiver. */
  loss = 0;
  random: () => number = Math.random;
  /** Every datagram sent, for inspection. */
  readonly sent: { from: string; to: string; bytes: Uint8Array }[] = [];

  /** Binds a fake socket; port 0 picks a free one. */
  bind(address: string, port: number): FakeTransport {
    if (port === 0) {
      port = 50_000;
      while (this.#bound.has(`${address}:${port}`)) port++;
    }
    const key = `${address}:${port}`;
    if (this.#bound.has(key)) throw new BindError(address, port, new Deno.errors.AddrInUse("in use"));
    const t = new FakeTransport(this, address, port, () => this.#bound.delete(key));
    this.#bound.set(key, t);
    return t;
  }

  /** @internal Called by {@link FakeTransport.send}. */
  deliver(from: FakeTransport, bytes: Uint8Array, to: Deno.NetAddr): void {
    this.sent.push({ from: `${from.addr.hostname}:${from.addr.port}`, to: `${to.hostname}:${to.port}`, bytes });
    const receivers = to.hostname.endsWith(".255")
      ? [...this.#bound.values()].filter((t) => t.addr.port === to.port)
      : [this.#bound.get(`${to.hostname}:${to.port}`)].filter((t) => t !== undefined);
    for (const r of receivers) {
      if (this.loss > 0 && this.random() < this.loss) continue;
      r.enqueue(bytes.slice(), from.addr);
    }
  }
}

/** One socket on a {@link FakeNetwork}. */
export class FakeTransport implements Transport {
  readonly addr: Deno.NetAddr;
  #net: FakeNetwork;
  #queue: [Uint8Array, Deno.Addr][] = [];
  #waiters: { resolve: (v: [Uint8Array, Deno.Addr]) => void; reject: (e: unknown) => void; p?: Uint8Array }[] = [];
  #closed = false;
  #onClose: () => void;
  /** Errors to throw from the next receive calls, for tests of error paths. */
  readonly pendingErrors: Error[] = [];

  constructor(net: FakeNetwork, address: string, port: number, onClose: () => void) {
    this.#net = net;
    this.addr = { transport: "udp", hostname: address, port };
    this.#onClose = onClose;
  }

  send(p: Uint8Array, addr: Deno.Addr): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    if (addr.transport !== "udp") return Promise.reject(new TypeError("udp only"));
    const bytes = p.slice();
    queueMicrotask(() => this.#net.deliver(this, bytes, addr));
    return Promise.resolve(p.length);
  }

  receive(p?: Uint8Array): Promise<[Uint8Array, Deno.Addr]> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    const err = this.pendingErrors.shift();
    if (err) return Promise.reject(err);
    const next = this.#queue.shift();
    if (next) return Promise.resolve(copyInto(next, p));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject, p }));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    for (const w of this.#waiters.splice(0)) w.reject(new Deno.errors.BadResource("closed"));
  }

  /** @internal */
  enqueue(bytes: Uint8Array, from: Deno.Addr): void {
    if (this.#closed) return;
    const w = this.#waiters.shift();
    if (w) w.resolve(copyInto([bytes, from], w.p));
    else this.#queue.push([bytes, from]);
  }
}

function copyInto([bytes, from]: [Uint8Array, Deno.Addr], p?: Uint8Array): [Uint8Array, Deno.Addr] {
  if (!p) return [bytes, from];
  const n = Math.min(bytes.length, p.length);
  p.set(bytes.subarray(0, n));
  return [p.subarray(0, n), from];
}
import { setImmediate } from "node:timers";
