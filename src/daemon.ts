/**
 * The daemon: drives the sans-I/O {@link Discovery} with real sockets, a
 * real clock and one timer, serves the status endpoint and turns roster
 * events into log lines. Sockets are opened here (through transport.ts)
 * and nowhere else; tests may pass their own {@link DaemonIo}.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import process from "node:process";
import { clearImmediate, setImmediate } from "node:timers";
import { Discovery, type DiscoveryCounters, type Endpoint, type Transmit } from "./discovery.ts";
import { type Api, createHandler, type HttpServer, isLoopbackBind, LOOPBACK_HOSTS, serveHttp } from "./http.ts";
import { defaultDataDir, ensureDataDir, loadOrCreateIdentity } from "./identity.ts";
import { logger } from "./log.ts";
import {
  type BroadcastTarget,
  broadcastTargets,
  type InterfaceAddress,
  parseIPv4,
  readInterfaces,
} from "./net_address.ts";
// Loaded only with --ipmsg (start()): its GBK codec (iconv-lite) cost every daemon ~1.3 MB of RSS.
import type { Ipmsg, IpmsgEvent, IpmsgPeer } from "./ipmsg.ts";
import { IPMSG, peekIpmsgMode } from "./wire/ipmsg_command.ts";
import { Messaging, type MessagingEvent, timeOrderedId } from "./messaging.ts";
import { RateLimiter } from "./rate_limit.ts";
import { CLOSE_REASONS, DEFAULT_HTTP_LIMITS, isOutOfFds } from "./http_server.ts";
import { OncePer } from "./once_per.ts";
import { Sealer } from "./seal.ts";
import { fingerprintOf, NodeSigner, SignatureChecker } from "./signing.ts";
import type { Peer, RosterEvent } from "./roster.ts";
import { type KnownPeer, type Pin, Store, type StoredMessage, StoreError } from "./store.ts";
import { BindError, bindUdp, endpointOf, receiveLoop, type Transport, udpAddr } from "./transport.ts";
import {
  decodePacket,
  DROP_REASONS,
  type DropReason,
  fitTextField,
  type Goodbye,
  type Hello,
  PacketType,
  toHex,
} from "./wire/mod.ts";

/** The software version, from deno.json. */
export const VERSION: string = denoJson.version;
export const DEFAULT_DISCOVERY_PORT = 47474;
export const DEFAULT_UNICAST_PORT = 47475;
export const DEFAULT_HTTP = { hostname: "127.0.0.1", port: 47476 } as const;
/**
 * Per-source-address limits (token buckets). Discovery packets (hello,
 * goodbye, ping, pong) come from a host at a few a second (one announce
 * every ~2 s per daemon on it, replies, probes), so few suffice whichever
 * socket they reach; the shared broadcast socket carries nothing else. The
 * unicast socket also carries messages, whose bursts are legitimate: the
 * limit there only stops floods (and bounds the work of opening sealed
 * datagrams).
 */
export const DISCOVERY_RATE = { rate: 50, burst: 100 } as const;
export const UNICAST_RATE = { rate: 20_000, burst: 5_000 } as const;
/** Datagrams past their source's rate limit looked at, per probe, for the pong it awaits (see Daemon #overLimit). */
export const RESCUE_BUDGET = 2000;
/** First byte of the type field in a lanchat frame, and the discovery types it may hold. */
const TYPE_OFFSET = 5;
const DISCOVERY_TYPES = new Set<number>([PacketType.hello, PacketType.goodbye, PacketType.ping, PacketType.pong]);
/** IP Messenger modes limited like hellos: entries, absence and exit. */
const IPMSG_ENTRY_MODES = new Set<number>([IPMSG.BR_ENTRY, IPMSG.ANSENTRY, IPMSG.BR_ABSENCE, IPMSG.BR_EXIT]);
/** The HTTP bearer token's file name in the data directory. */
export const HTTP_TOKEN_FILE = "http_token";

/** Reads the HTTP bearer token from `path`, creating a random one (mode 0600) if absent. */
export async function loadOrCreateToken(path: string): Promise<string> {
  try {
    const token = (await Deno.readTextFile(path)).trim();
    if (token.length < 16) {
      throw new Error(`HTTP token file ${path} holds fewer than 16 characters; use a longer token`);
    }
    return token;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      if ((e as Error).message.startsWith("HTTP token file")) throw e;
      throw new Error(`Cannot read HTTP token file ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  try {
    await Deno.writeTextFile(path, token + "\n", { mode: 0o600, createNew: true });
  } catch (e) {
    throw new Error(`Cannot write HTTP token file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return token;
}

/** How often delivery-status updates are written to the database. */
export const STATUS_FLUSH_MS = 250;
/** The database's write-ahead log is checkpointed every this many flushes (10 s). */
export const CHECKPOINT_EVERY_FLUSHES = 40;
/**
 * Known peers (remembered so they can be addressed offline) that no message
 * was ever exchanged with are forgotten after this long unseen, and beyond
 * {@link MAX_IDLE_KNOWN_PEERS} of them, the least recently seen first.
 */
export const IDLE_PEER_TTL_MS = 7 * 24 * 3600_000;
export const MAX_IDLE_KNOWN_PEERS = 10_000;
/** How often known peers are pruned (and once at start). */
export const PRUNE_EVERY_MS = 3600_000;
/** How often interfaces are re-read, to pick up a new DHCP address or interface. */
export const INTERFACE_REFRESH_MS = 5000;

export interface DaemonOptions {
  dataDir?: string;
  name?: string;
  discoveryPort?: number;
  unicastPort?: number;
  /** Where to serve HTTP; null for none. */
  http?: { hostname: string; port: number } | null;
  intervalMs?: number;
  probeTimeoutMs?: number;
  /** Allow list of interface names (empty: all). */
  interfaces?: string[];
  /** Deny list of interface names. */
  excludeInterfaces?: string[];
  /** Extra broadcast addresses. */
  broadcasts?: string[];
  /** Static unicast peers: `HOST[:PORT]`, PORT being their unicast port. */
  peers?: string[];
  /**
   * File holding the bearer token the HTTP API requires; created (0600) if
   * absent. A bind beyond loopback always requires one: default
   * `<data-dir>/http_token`.
   */
  httpTokenFile?: string;
  /** The group's network key (32 bytes): every datagram sealed with it. */
  networkKey?: Uint8Array;
  /** Bound on the roster (default 1024). */
  maxPeers?: number;
  /** Hellos a second each host may receive from all others (default 50): scales the announce interval. */
  announceBudget?: number;
  /** Also speak IP Messenger (IP Messenger, FeiQ, iptux) on this UDP port. */
  ipmsg?: { port: number; group: string };
  /** Most HTTP connections open at once (default 256, lowered to fit the open-file limit). */
  httpMaxConnections?: number;
}

/** The OS-facing calls, replaceable in tests. */
export interface DaemonIo {
  bindUdp(hostname: string, port: number, options: { reuseAddress?: boolean }): Transport;
  readInterfaces(): { addresses: InterfaceAddress[]; down: Set<string> };
  resolve(host: string): Promise<string[]>;
  now(): number;
  hostname(): string;
  env(name: string): string | undefined;
}

/** The real OS. */
export const realIo: DaemonIo = {
  bindUdp,
  readInterfaces,
  resolve: (host) => Deno.resolveDns(host, "A"),
  now: () => performance.now(),
  hostname: () => Deno.hostname(),
  env: (name) => Deno.env.get(name),
};

/** A peer as `/peers` shows it. */
export interface PeerJson {
  id: string;
  name: string;
  hostname: string;
  addresses: { address: string; port: number; lastSeen: string }[];
  incarnation: number;
  version: string;
  httpPort: number;
  intervalMs: number;
  firstSeen: string;
  lastSeen: string;
  state: string;
  /** "lanchat", or "ipmsg" for IP Messenger, FeiQ and iptux users. */
  protocol: "lanchat" | "ipmsg";
  /** lanchat peers: a short fingerprint of the node key, to compare out of band. */
  fingerprint?: string;
  /** lanchat peers: how far its key is trusted (see {@link Pin}). */
  trust?: Pin["trust"];
  /** IP Messenger peers: their login name, nickname and group. */
  user?: string;
  nickname?: string;
  group?: string;
  /** lanchat peers: how far its clock is ahead of this host's, in ms (negative: behind), from its last hello. */
  clockOffsetMs?: number;
}

/** Everything the daemon reports to listeners (the SSE stream, tests). */
export type DaemonEvent = RosterEvent | MessagingEvent | IpmsgRosterEvent;

/** An IP Messenger peer joining or leaving, as listeners see it. */
export type IpmsgRosterEvent =
  | { type: "ipmsg-joined"; peer: IpmsgPeer }
  | { type: "ipmsg-left"; peer: IpmsgPeer; reason: "goodbye" | "timeout" };

/** A message as the API shows it. */
export interface MessageJson {
  id: string;
  cursor: number;
  direction: "in" | "out";
  peer: { id: string; name: string };
  seq: number;
  text: string;
  status: StoredMessage["status"];
  sentAt: string;
  receivedAt?: string;
  deliveredAt?: string;
  rttMs?: number;
  gapBefore?: number;
  late?: boolean;
  error?: string;
}

/** The outcome of looking a peer up by what a user typed. */
export type PeerLookup =
  | { ok: true; peer: { id: string; name: string; hostname: string; online: boolean } }
  | {
    ok: false;
    reason: "unknown" | "ambiguous" | "conflict";
    candidates: { id: string; name: string; hostname: string; online: boolean; trust?: Pin["trust"] }[];
  };

/** A hello refused as a possible impersonation, as `/status` lists it. */
export interface ImpersonationAlert {
  at: string;
  id: string;
  name: string;
  from: string;
  detail: string;
}

/** Most impersonation alerts kept for `/status`. */
export const MAX_ALERTS = 32;

/** Parses `HOST[:PORT]`; PORT defaults to `defaultPort`. */
export function parseHostPort(s: string, defaultPort: number): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(s.trim());
  if (!m || !m[1]) throw new TypeError(`Invalid address "${s}": expected HOST or HOST:PORT`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Invalid port in "${s}": expected 0 to 65535`);
  }
  return { host: m[1].replace(/^\[|\]$/g, ""), port };
}

/** A running daemon. */
export class Daemon {
  readonly discovery: Discovery;
  /** Replaced by a fresh one, read back from the store, when a group commit fails. */
  messaging: Messaging;
  /** IP Messenger interop, when started with `ipmsg`. */
  readonly ipmsg: Ipmsg | undefined;
  readonly dataDir: string;
  readonly ports: { discovery: number; unicast: number; http: number };
  readonly httpUrl: string | undefined;
  #io: DaemonIo;
  #options: DaemonOptions;
  #store: Store;
  #discoverySocket: Transport;
  #unicastSocket: Transport;
  #ipmsgSocket: Transport | undefined;
  #http: HttpServer | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #refreshTimer: ReturnType<typeof setInterval> | undefined;
  #pruneTimer: ReturnType<typeof setInterval> | undefined;
  #flushTimer: ReturnType<typeof setInterval> | undefined;
  #commitTimer: ReturnType<typeof setImmediate> | undefined;
  /** Callers waiting for the open group transaction to commit. */
  #commitWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #newMessaging: () => Messaging;
  #loops: Promise<void>[] = [];
  #interfaces: BroadcastTarget[] = [];
  #startedAt: number;
  #startedWall: number;
  #stopped = false;
  #sendErrors = 0;
  #receiveErrors = 0;
  #fdExhausted = 0;
  /** Pongs to our probes let through a flood that had spent their address's rate limit. */
  #rescued = 0;
  #oncePer = new OncePer();
  #peersCache: { version: number; at: number; body: Uint8Array } | undefined;
  #log = logger("daemon");
  #listeners = new Set<(e: DaemonEvent) => void>();
  #sealer: Sealer | undefined;
  #limits = {
    broadcast: new RateLimiter(DISCOVERY_RATE),
    unicast: new RateLimiter(UNICAST_RATE),
    discovery: new RateLimiter(DISCOVERY_RATE),
    ipmsg: new RateLimiter(UNICAST_RATE),
  };
  #known = new Map<string, KnownPeer>();
  #pins = new Map<string, Pin>();
  #checker = new SignatureChecker();
  #alerts: ImpersonationAlert[] = [];

  private constructor(init: {
    io: DaemonIo;
    options: DaemonOptions;
    store: Store;
    discovery: Discovery;
    newMessaging: () => Messaging;
    ipmsg: Ipmsg | undefined;
    ipmsgSocket: Transport | undefined;
    sealer: Sealer | undefined;
    dataDir: string;
    discoverySocket: Transport;
    unicastSocket: Transport;
    http: HttpServer | undefined;
  }) {
    this.#io = init.io;
    this.#options = init.options;
    this.#store = init.store;
    this.discovery = init.discovery;
    this.#newMessaging = init.newMessaging;
    this.messaging = init.newMessaging();
    // Group commit: what a burst of datagrams or requests writes is committed
    // once, at the end of the event-loop turn; acks and replies wait for it.
    // (setImmediate: setTimeout(0) waits about 2 ms here, setImmediate 5 µs.)
    init.store.startGroupCommit(() => {
      this.#commitTimer ??= setImmediate(() => this.#commit());
    });
    this.ipmsg = init.ipmsg;
    this.#ipmsgSocket = init.ipmsgSocket;
    this.#sealer = init.sealer;
    this.dataDir = init.dataDir;
    for (const k of init.store.knownPeers()) this.#known.set(k.id, k);
    for (const p of init.store.pins()) this.#pins.set(p.id, p);
    this.#discoverySocket = init.discoverySocket;
    this.#unicastSocket = init.unicastSocket;
    this.#http = init.http;
    this.ports = {
      discovery: (init.discoverySocket.addr as Deno.NetAddr).port,
      unicast: (init.unicastSocket.addr as Deno.NetAddr).port,
      http: init.http?.addr.port ?? 0,
    };
    this.httpUrl = init.http ? `http://${hostForUrl(init.http.addr.hostname)}:${init.http.addr.port}` : undefined;
    this.#startedAt = init.io.now();
    this.#startedWall = Date.now();
  }

  /**
   * Starts a daemon: identity, database, sockets, HTTP, then the announce
   * schedule. Throws an Error with a message a user can act on when any of
   * them cannot be set up; whatever was opened is closed again.
   */
  static async start(options: DaemonOptions = {}, io: DaemonIo = realIo): Promise<Daemon> {
    const log = logger("daemon");
    const dataDir = options.dataDir ?? defaultDataDir(io.env);
    await ensureDataDir(dataDir);
    const identity = await loadOrCreateIdentity(dataDir);
    if (identity.created) log.info("Created node identity {id} in {dataDir}", { id: identity.id, dataDir });
    const store = await Store.open(dataDir);
    const opened: { close(): void }[] = [store];
    try {
      const incarnation = store.nextIncarnation();
      const discoveryPort = options.discoveryPort ?? DEFAULT_DISCOVERY_PORT;
      const discoverySocket = io.bindUdp("0.0.0.0", discoveryPort, { reuseAddress: true });
      opened.push(discoverySocket);
      const wantedUnicast = options.unicastPort ?? DEFAULT_UNICAST_PORT;
      let unicastSocket: Transport;
      try {
        unicastSocket = io.bindUdp("0.0.0.0", wantedUnicast, {});
      } catch (e) {
        if (!(e instanceof BindError && e.inUse) || wantedUnicast === 0) throw e;
        unicastSocket = io.bindUdp("0.0.0.0", 0, {});
        log.info("Unicast port {wanted} is in use (another daemon on this host?); using port {port}", {
          wanted: wantedUnicast,
          port: (unicastSocket.addr as Deno.NetAddr).port,
        });
      }
      opened.push(unicastSocket);
      const hostname = fitTextField(io.hostname());
      const user = io.env("USER") ?? io.env("LOGNAME") ?? "user";
      // The daemon needs the discovery and the HTTP server, which call back into it: a late-bound reference.
      const t0 = io.now();
      const w0 = Date.now();
      // Whole milliseconds: the wire carries integers (performance.now() is fractional).
      const wall = (t: number) => Math.round(w0 + (t - t0));
      const ref: { daemon?: Daemon; ipmsg?: Ipmsg } = {};
      const discovery = new Discovery({
        wall,
        signer: new NodeSigner(identity.pkcs8, identity.publicKey),
        admit: (packet, from) => ref.daemon ? ref.daemon.#admit(packet, from) : undefined,
        intervalMs: options.intervalMs,
        probeTimeoutMs: options.probeTimeoutMs,
        maxPeers: options.maxPeers,
        // IP Messenger peers count against the same bounds (--max-peers, 16 per address).
        others: { count: () => ref.ipmsg?.size ?? 0, countAt: (a) => ref.ipmsg?.countAt(a) ?? 0 },
        announceBudget: options.announceBudget,
        self: {
          id: identity.id,
          incarnation,
          name: fitTextField(options.name ?? `${user}@${hostname}`),
          hostname,
          version: VERSION,
          port: (unicastSocket.addr as Deno.NetAddr).port,
          httpPort: 0,
        },
      });
      let http: HttpServer | undefined;
      const httpOpt = options.http === undefined ? DEFAULT_HTTP : options.http;
      if (httpOpt) {
        const d = () => ref.daemon!;
        const api: Api = {
          peersBody: () => d().peersBody(),
          allPeers: () => d().allPeers(),
          status: () => d().status(),
          metrics: () => d().metrics(),
          lookupPeer: (q) => d().lookupPeer(q),
          onlinePeers: () => d().onlinePeers(),
          sendMessage: (to, text) => d().sendMessage(to, text),
          sendMessages: (items) => d().sendMessages(items),
          waitDelivered: (id, ms) => d().waitDelivered(id, ms),
          history: (q) => d().history(q),
          messageJson: (m) => d().messageJson(m),
          onEvent: (l) => d().onEvent(l),
          peerName: (id) => d().peerName(id),
          trustPeer: (id) => d().trustPeer(id),
          forgetPeer: (id) => d().forgetPeer(id),
        };
        const loopback = isLoopbackBind(httpOpt.hostname);
        const tokenFile = options.httpTokenFile ?? (loopback ? undefined : `${dataDir}/${HTTP_TOKEN_FILE}`);
        const token = tokenFile === undefined ? undefined : await loadOrCreateToken(tokenFile);
        if (tokenFile) log.info("The HTTP API requires the bearer token in {tokenFile}", { tokenFile });
        http = serveHttp(
          httpOpt.hostname,
          httpOpt.port,
          createHandler(api, { token, allowedHosts: loopback ? LOOPBACK_HOSTS : undefined }),
          {
            limits: options.httpMaxConnections ? { maxConnections: options.httpMaxConnections } : {},
            onFdExhausted: (e) => ref.daemon?.outOfFds("accepting an HTTP connection", e),
          },
        );
        if (http.maxConnections < (options.httpMaxConnections ?? DEFAULT_HTTP_LIMITS.maxConnections)) {
          log.warn(
            "HTTP connections are capped at {cap}, not {wanted}: the open-file limit is lower (raise it with ulimit -n or LimitNOFILE=)",
            { cap: http.maxConnections, wanted: options.httpMaxConnections ?? DEFAULT_HTTP_LIMITS.maxConnections },
          );
        }
        opened.push({ close: () => void http!.shutdown() });
        discovery.self.httpPort = http.addr.port;
      }
      let ipmsg: Ipmsg | undefined;
      let ipmsgSocket: Transport | undefined;
      if (options.ipmsg) {
        try {
          ipmsgSocket = io.bindUdp("0.0.0.0", options.ipmsg.port, {});
        } catch (e) {
          if (e instanceof BindError && e.inUse) {
            throw new Error(
              `Cannot speak IP Messenger: UDP port ${options.ipmsg.port} is in use on this host (by IP Messenger, FeiQ, iptux or another lanchat --ipmsg); only one program per host can own it`,
              { cause: e },
            );
          }
          throw e;
        }
        opened.push(ipmsgSocket);
        const { Ipmsg } = await import("./ipmsg.ts");
        ipmsg = new Ipmsg({
          user: fitTextField(user.replaceAll(":", ";")),
          host: hostname.replaceAll(":", ";"),
          nickname: discovery.self.name,
          group: options.ipmsg.group,
          port: options.ipmsg.port,
          intervalMs: discovery.intervalMs,
          firstPacketNo: Math.floor(Date.now() / 1000),
          wall,
          maxPeers: options.maxPeers,
          others: { count: () => discovery.roster.size, countAt: (a) => discovery.roster.countAt(a) },
        });
        ref.ipmsg = ipmsg;
      }
      const ipmsgIds = new Set(store.knownPeers().filter((k) => k.protocol === "ipmsg").map((k) => k.id));
      const newMessaging = () =>
        new Messaging({
          self: { id: identity.id, incarnation },
          store,
          wall,
          foreignPeer: (peer) => ipmsgIds.has(peer),
        });
      const daemon = new Daemon({
        io,
        options,
        store,
        discovery,
        newMessaging,
        ipmsg,
        ipmsgSocket,
        sealer: options.networkKey ? await Sealer.create(options.networkKey) : undefined,
        dataDir,
        discoverySocket,
        unicastSocket,
        http,
      });
      ref.daemon = daemon;
      await daemon.#begin();
      return daemon;
    } catch (e) {
      for (const o of opened.reverse()) {
        try {
          o.close();
        } catch { /* already closed */ }
      }
      throw e;
    }
  }

  /** Calls `listener` on every roster and messaging event until the returned function is called. */
  onEvent(listener: (e: DaemonEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async #begin(): Promise<void> {
    const self = this.discovery.self;
    await this.#refreshTargets();
    this.discovery.start(this.#io.now());
    if (this.ipmsg && this.#ipmsgSocket) {
      const ipmsg = this.ipmsg;
      ipmsg.start(this.#io.now());
      // Messages to IP Messenger peers left from the last run go out when those peers appear.
      const ipmsgIds = new Set([...this.#known.values()].filter((k) => k.protocol === "ipmsg").map((k) => k.id));
      for (const m of this.#store.outbox()) {
        if (ipmsgIds.has(m.peer)) ipmsg.send(m.id, m.peer, m.text, this.#io.now());
      }
      this.#loops.push(receiveLoop(this.#ipmsgSocket, (b, f) => {
        if (this.#stopped) return;
        const from = endpointOf(f);
        const now = this.#io.now();
        // The same per-source limits as lanchat's sockets, before any decoding:
        // everything, and entries (like hellos) much lower.
        const mode = peekIpmsgMode(b);
        const entry = mode !== undefined && IPMSG_ENTRY_MODES.has(mode);
        if (
          !this.#limits.ipmsg.allow(from.address, now) || (entry && !this.#limits.discovery.allow(from.address, now))
        ) {
          ipmsg.counters.received++;
          ipmsg.counters.dropped["rate-limit"]++;
          return this.#flood(from.address, "IP Messenger datagrams", "over its rate limit", now);
        }
        ipmsg.handleDatagram(b, from, now);
        this.#pump();
      }, (e) => this.#onReceiveError(e)));
    }
    this.#loops.push(
      receiveLoop(this.#discoverySocket, (b, f) => this.#onDatagram(b, f, "broadcast"), (e) => this.#onReceiveError(e)),
      receiveLoop(this.#unicastSocket, (b, f) => this.#onDatagram(b, f, "unicast"), (e) => this.#onReceiveError(e)),
    );
    this.#refreshTimer = setInterval(() => void this.#refreshTargets(), INTERFACE_REFRESH_MS);
    this.#pruneKnownPeers();
    this.#pruneTimer = setInterval(() => this.#pruneKnownPeers(), PRUNE_EVERY_MS);
    // Delivery-status updates are written behind (see Store.flush): at most
    // this much of them is lost in a crash, and then only re-sent.
    let ticks = 0;
    this.#flushTimer = setInterval(() => {
      try {
        this.#store.flush();
        if (++ticks % CHECKPOINT_EVERY_FLUSHES === 0) this.#store.checkpoint();
        this.#sealer?.guard.prune(this.#wall(this.#io.now()));
      } catch (e) {
        this.#log.error("Storage error: {error}", { error: (e as Error).message });
      }
    }, STATUS_FLUSH_MS);
    this.#log.info(
      "lanchat {version} started as {name} ({id}, incarnation {incarnation}); {group}; discovery UDP {discoveryPort}, unicast UDP {unicastPort}, HTTP {http}",
      {
        group: this.#sealer
          ? `keyed group (network key id ${this.#sealer.keyIdHex}: only hosts with that key see it)`
          : "open group (no network key: every lanchat host on the LAN sees it)",
        version: VERSION,
        name: self.name,
        id: self.id,
        incarnation: self.incarnation,
        discoveryPort: this.ports.discovery,
        unicastPort: this.ports.unicast,
        http: this.httpUrl ?? "off",
        dataDir: this.dataDir,
      },
    );
    this.#pump();
  }

  /** Says goodbye on every interface, closes sockets and the database. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#commit();
    this.discovery.shutdown();
    this.ipmsg?.shutdown();
    const sends = this.#pump();
    await Promise.allSettled(sends);
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#refreshTimer);
    clearInterval(this.#flushTimer);
    clearInterval(this.#pruneTimer);
    this.#discoverySocket.close();
    this.#unicastSocket.close();
    this.#ipmsgSocket?.close();
    await Promise.allSettled(this.#loops);
    await this.#http?.shutdown();
    this.#store.close();
    if (this.#commitTimer) clearImmediate(this.#commitTimer);
    this.#log.info("lanchat stopped; goodbye sent to {targets} targets", {
      targets: this.discovery.targets.broadcast.length + this.discovery.targets.peers.length,
    });
  }

  #onDatagram(bytes: Uint8Array, from: Deno.Addr, via: "broadcast" | "unicast"): void {
    if (this.#stopped) return;
    const endpoint = endpointOf(from);
    const now = this.#io.now();
    if (!this.#limits[via].allow(endpoint.address, now)) return this.#overLimit(bytes, undefined, endpoint, now);
    let plain = bytes;
    if (this.#sealer) {
      const r = this.#sealer.open(bytes, this.#wall(now));
      if (!r.ok) {
        if (r.aheadMs !== undefined) this.#clockSkew(endpoint.address, r.aheadMs, now);
        return this.#dropUnread(bytes, endpoint, r.reason, r.detail);
      }
      plain = r.inner;
    }
    if (!this.#discoveryAllowed(plain, endpoint.address, now)) return this.#overLimit(bytes, plain, endpoint, now);
    this.#handlePlain(plain, endpoint, now);
  }

  /**
   * A datagram past its source's rate limit. Dropped, unless it is the pong
   * answering a probe this node sent to that address (the probe's random
   * nonce proves it came from the peer): a flood of junk sent under a live
   * peer's address spends that address's budget, and must not evict the peer.
   * At most {@link RESCUE_BUDGET} datagrams a probe are looked at this way
   * (opened, with a network key, and peeked at), which bounds the work.
   */
  #overLimit(bytes: Uint8Array, plain: Uint8Array | undefined, endpoint: Endpoint, now: number): void {
    const awaited = this.discovery.awaitedPong(endpoint.address, now);
    if (awaited && awaited.examined++ < RESCUE_BUDGET) {
      if (plain === undefined && this.#sealer) {
        const r = this.#sealer.open(bytes, this.#wall(now));
        if (r.ok) plain = r.inner;
      } else {
        plain ??= bytes;
      }
      if (plain !== undefined && plain[TYPE_OFFSET] === PacketType.pong) {
        const d = decodePacket(plain);
        if (d.ok && d.value.kind === "pong" && d.value.id === awaited.id && d.value.nonce === awaited.nonce) {
          this.#rescued++;
          return this.#handlePlain(plain, endpoint, now);
        }
      }
    }
    this.#flood(endpoint.address, "datagrams", "over its rate limit", now);
    this.#dropUnread(bytes, endpoint, "rate-limit");
  }

  /**
   * Sealed datagrams refused for their send time: say why in words, once an
   * hour per source, since such a host otherwise simply never appears.
   */
  #clockSkew(address: string, aheadMs: number, now: number): void {
    if (this.#oncePer.hit(`clock:${address}`, now, 3600_000) === 0) return;
    const s = Math.round(Math.abs(aheadMs) / 1000);
    this.#log.warn(
      "Datagrams from {address} are {seconds} s {direction} this host's clock; a keyed group needs clocks within 30 s: run NTP on both",
      { address, seconds: s, direction: aheadMs > 0 ? "ahead of" : "behind" },
    );
  }

  /**
   * A flood from one source, in the log: one line per source and kind per
   * minute with how many were refused, not one per datagram.
   */
  #flood(address: string, what: string, why: string, now: number): void {
    const n = this.#oncePer.hit(`flood:${address}:${what}:${why}`, now);
    if (n > 0) {
      this.#log.warn("Refusing {what} from {address}: {why} ({count} since the last such line)", {
        what,
        address,
        why,
        count: n,
      });
    }
  }

  /** Counts a datagram dropped before the protocol saw it (rate limit, network key). */
  #dropUnread(bytes: Uint8Array, from: Endpoint, reason: "rate-limit" | "auth" | "replay", detail?: string): void {
    const c = this.discovery.counters;
    c.datagramsIn++;
    c.bytesIn += bytes.length;
    c.dropped[reason]++;
    if (detail) {
      this.#log.debug("Dropped datagram from {from}: {reason} ({detail})", { from: from.address, reason, detail });
    }
  }

  /** The discovery-packet limit, by a look at the type byte (the full decode comes after). */
  #discoveryAllowed(bytes: Uint8Array, address: string, now: number): boolean {
    const type = bytes[TYPE_OFFSET];
    return type === undefined || !DISCOVERY_TYPES.has(type) || this.#limits.discovery.allow(address, now);
  }

  #handlePlain(bytes: Uint8Array, endpoint: { address: string; port: number }, now: number): void {
    const result = this.discovery.handleDatagram(bytes, endpoint, now);
    if (result.ok) {
      const packet = result.value;
      if (packet.kind === "msg" || packet.kind === "ack") {
        const dropped = this.messaging.handlePacket(packet, endpoint, now);
        if (dropped) {
          // Counted once: as dropped, not as received (datagramsIn = Σ received + Σ dropped).
          this.discovery.counters.dropped[dropped]++;
          this.discovery.counters.received[packet.kind]--;
        }
      } else if (packet.kind === "hello") {
        // Keep messaging's idea of where the peer is current (a changed address).
        const peer = this.discovery.roster.get(packet.id);
        if (peer?.addresses[0]) this.messaging.peerUp(peer.id, peer.addresses[0], now);
        if (peer && packet.signed && !this.#pins.has(peer.id)) this.#pinOnFirstUse(packet, now);
      }
    }
    if (!result.ok && result.reason !== "self") {
      this.#log.debug("Dropped datagram from {from}: {reason} ({detail})", {
        from: `${endpoint.address}:${endpoint.port}`,
        reason: result.reason,
        detail: result.detail,
      });
      if (result.reason === "bad-version" && this.discovery.shouldWarnOnce(`version:${endpoint.address}`)) {
        this.#log.warn("{from} speaks another lanchat protocol version ({detail}); upgrade one of them", {
          from: endpoint.address,
          detail: result.detail,
        });
      }
    }
    this.#pump();
  }

  /**
   * Lets a hello or goodbye reach the roster only when it is signed by the
   * key its node id derives from, and that key is the one pinned for the id.
   */
  #admit(packet: Hello | Goodbye, from: Endpoint): { reason: DropReason; detail: string } | undefined {
    const check = this.#checker.check(packet.id, packet.signed);
    if (!check.ok) {
      if (check.reason === "impersonation") this.#alert(packet, from, check.detail);
      return check;
    }
    const pin = this.#pins.get(packet.id);
    const key = toHex(packet.signed!.publicKey);
    if (pin && pin.key !== key) {
      const detail = `node id ${packet.id} is pinned to another key`;
      this.#alert(packet, from, detail);
      return { reason: "impersonation", detail };
    }
    return undefined;
  }

  #alert(packet: Hello | Goodbye, from: Endpoint, detail: string): void {
    const name = packet.kind === "hello" ? packet.name : this.#pins.get(packet.id)?.name ?? "?";
    const alert: ImpersonationAlert = {
      at: new Date(this.#wall(this.#io.now())).toISOString(),
      id: packet.id,
      name,
      from: `${from.address}:${from.port}`,
      detail,
    };
    this.#alerts.push(alert);
    if (this.#alerts.length > MAX_ALERTS) this.#alerts.shift();
    if (this.discovery.shouldWarnOnce(`impersonation:${from.address}`)) {
      this.#log.warn("Possible impersonation: {from} claims to be {name} ({id}): {detail}; refused", {
        from: alert.from,
        name,
        id: packet.id,
        detail,
      });
    }
  }

  /**
   * Pins a node's key the first time the roster takes it (trust on first
   * use). A new key claiming a name another pinned key has is pinned as a
   * conflict: listed, warned about, never chosen by name until trusted.
   */
  #pinOnFirstUse(hello: Hello, now: number): void {
    const rival = [...this.#pins.values()].find((p) =>
      p.name === hello.name && p.id !== hello.id && (p.trust === "tofu" || p.trust === "trusted")
    );
    const pin: Pin = {
      id: hello.id,
      key: toHex(hello.signed!.publicKey),
      name: hello.name,
      firstSeen: this.#wall(now),
      trust: rival ? "conflict" : "tofu",
    };
    this.#pins.set(pin.id, pin);
    try {
      this.#store.savePins([pin]);
    } catch (e) {
      this.#log.warn("{error}", { error: (e as Error).message });
    }
    if (rival) {
      this.#alerts.push({
        at: new Date(pin.firstSeen).toISOString(),
        id: hello.id,
        name: hello.name,
        from: this.discovery.roster.get(hello.id)?.addresses.map((a) => `${a.address}:${a.port}`).join(", ") ?? "?",
        detail: `claims the name of ${rival.id} (key ${fingerprintOf(rival.id)}) with another key`,
      });
      if (this.#alerts.length > MAX_ALERTS) this.#alerts.shift();
      this.#log.warn(
        "Possible impersonation: {name} ({id}, key {fp}) claims a name pinned to {rival} (key {rivalFp}); " +
          'it is not chosen by name: if that host got a new key, run "lanchat trust {id}"',
        {
          name: hello.name,
          id: hello.id,
          fp: fingerprintOf(hello.id),
          rival: rival.id,
          rivalFp: fingerprintOf(rival.id),
        },
      );
    }
  }

  /**
   * Marks a peer's pinned key as confirmed by a person; other keys pinned
   * with the same name are marked replaced (no longer chosen by name).
   */
  trustPeer(id: string): Pin {
    const pin = this.#pins.get(id);
    if (!pin) throw new RangeError(`No key is pinned for ${id}: it has not been seen since it was forgotten`);
    const changed: Pin[] = [{ ...pin, trust: "trusted" }];
    for (const p of this.#pins.values()) {
      if (p.id !== id && p.name === pin.name && p.trust !== "replaced") changed.push({ ...p, trust: "replaced" });
    }
    this.#store.savePins(changed);
    for (const p of changed) this.#pins.set(p.id, p);
    this.#peersCache = undefined;
    return changed[0]!;
  }

  /** Forgets a peer's pinned key: its next hello pins a key anew (trust on first use). */
  forgetPeer(id: string): boolean {
    if (!this.#pins.has(id)) return false;
    this.#store.deletePin(id);
    this.#pins.delete(id);
    this.#peersCache = undefined;
    return true;
  }

  /** The pinned key of a node, if any. */
  pin(id: string): Pin | undefined {
    return this.#pins.get(id);
  }

  /**
   * Running out of file descriptors, anywhere: counted, and logged at most
   * once a minute per place, never a crash.
   */
  outOfFds(where: string, e: unknown): void {
    this.#fdExhausted++;
    const n = this.#oncePer.hit(`fd:${where}`, this.#io.now());
    if (n > 0) {
      this.#log.warn(
        "Out of file descriptors while {where} ({count}× since the last such line): {error}; raise the open-file limit (ulimit -n, LimitNOFILE=) or lower --http-max-connections",
        { where, count: n, error: (e as Error)?.message ?? String(e) },
      );
    }
  }

  #onReceiveError(e: unknown): void {
    this.#receiveErrors++;
    this.#log.debug("Receive error: {error}", { error: (e as Error)?.message ?? String(e) });
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#stopped) return;
    const now = this.#io.now();
    this.discovery.handleTimeout(now);
    this.messaging.handleTimeout(now);
    this.ipmsg?.handleTimeout(now);
    this.#pump();
  }

  /**
   * Commits the open group transaction; then what waited for it (acks,
   * messaging events, API replies) goes. When the commit fails, nothing of
   * it was stored: messaging starts over from the store, so the senders of
   * what was lost retry (no ack went out) and what was posted gets an error.
   */
  #commit(): void {
    if (this.#commitTimer) clearImmediate(this.#commitTimer);
    this.#commitTimer = undefined;
    const waiters = this.#commitWaiters;
    this.#commitWaiters = [];
    try {
      this.#store.commit();
    } catch (e) {
      this.#log.error("{error}; messages received or posted since the last commit were not stored", {
        error: (e as Error).message,
      });
      const counters = { ...this.messaging.counters, storeErrors: this.messaging.counters.storeErrors + 1 };
      this.messaging = this.#newMessaging();
      Object.assign(this.messaging.counters, counters);
      const now = this.#io.now();
      for (const p of this.discovery.roster.peers()) {
        if (p.addresses[0]) this.messaging.peerUp(p.id, p.addresses[0], now);
      }
      for (const w of waiters) w.reject(e);
      this.#pump();
      return;
    }
    for (const w of waiters) w.resolve();
    this.#pump();
  }

  /** Resolves when what was written so far is committed; rejects with a StoreError if that commit fails. */
  #durable(): Promise<void> {
    if (!this.#store.uncommitted) return Promise.resolve();
    return new Promise((resolve, reject) => this.#commitWaiters.push({ resolve, reject }));
  }

  /** Sends what the protocol wants sent, reports events, re-arms the timer. */
  #pump(): Promise<unknown>[] {
    // Roster events first: they tell messaging who is reachable.
    for (const event of this.discovery.drainEvents()) this.#report(event);
    const sends = this.discovery.drainTransmits().map((t) => this.#send(t));
    // Acks, and events about stored messages, only once the store committed them.
    if (!this.#store.uncommitted) {
      for (const t of this.messaging.drainTransmits()) sends.push(this.#send(t));
      for (const event of this.messaging.drainEvents()) this.#reportMessaging(event);
    }
    if (this.ipmsg && this.#ipmsgSocket) {
      const socket = this.#ipmsgSocket;
      for (const t of this.ipmsg.drainTransmits()) {
        sends.push(
          socket.send(t.bytes, udpAddr(t.to.address, t.to.port)).then(() => {}, (e) => {
            this.#sendErrors++;
            this.#log.debug("Cannot send IP Messenger packet to {to}: {error}", {
              to: `${t.to.address}:${t.to.port}`,
              error: (e as Error).message,
            });
          }),
        );
      }
      for (const event of this.ipmsg.drainEvents()) this.#reportIpmsg(event);
    }
    const times = [
      this.discovery.pollTimeout(),
      this.#stopped ? undefined : this.messaging.pollTimeout(),
      this.#stopped ? undefined : this.ipmsg?.pollTimeout(),
    ].filter((t): t is number => t !== undefined);
    const next = times.length ? Math.min(...times) : undefined;
    if (next === undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    } else if (next < this.#timerAt) {
      clearTimeout(this.#timer);
      this.#timerAt = next;
      this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, next - this.#io.now()));
    }
    return sends;
  }

  async #send(t: Transmit): Promise<void> {
    const socket = t.via === "broadcast" ? this.#discoverySocket : this.#unicastSocket;
    try {
      const bytes = this.#sealer ? this.#sealer.seal(t.bytes, this.#wall(this.#io.now())) : t.bytes;
      await socket.send(bytes, udpAddr(t.to.address, t.to.port));
    } catch (e) {
      this.#sendErrors++;
      this.#log.debug("Cannot send {kind} to {to}: {error}", {
        kind: t.kind,
        to: `${t.to.address}:${t.to.port}`,
        error: (e as Error).message,
      });
    }
  }

  #report(event: RosterEvent): void {
    const p = event.peer;
    const now = this.#io.now();
    const first = p.addresses[0];
    const address = first ? `${first.address}:${first.port}` : "?";
    if (event.type === "left") {
      this.messaging.peerDown(p.id);
    } else if (first) {
      if (event.type === "joined") this.messaging.peerUp(p.id, first, now);
      else this.messaging.peerRestarted(p.id, first, now);
      this.#remember({
        id: p.id,
        protocol: "lanchat",
        name: p.name,
        hostname: p.hostname,
        address: first.address,
        port: first.port,
        lastSeen: this.#wall(now),
      });
    }
    if (event.type === "joined") {
      this.#log.info("Peer joined: {name} ({id}) at {address}", { name: p.name, id: p.id, address });
    } else if (event.type === "restarted") {
      this.#log.info("Peer restarted: {name} ({id}) at {address}, incarnation {incarnation}", {
        name: p.name,
        id: p.id,
        address,
        incarnation: p.incarnation,
      });
    } else {
      this.#log.info("Peer left: {name} ({id}), reason {reason}", { name: p.name, id: p.id, reason: event.reason });
    }
    this.#emit(event);
  }

  #reportIpmsg(event: IpmsgEvent): void {
    const now = this.#io.now();
    switch (event.type) {
      case "joined":
      case "updated": {
        const p = event.peer;
        this.#remember(this.#knownIpmsg(p, now));
        if (event.type === "joined") {
          this.#log.info("IP Messenger peer joined: {name} ({user}@{host}, {client}) at {address}", {
            name: p.nickname,
            user: p.user,
            host: p.host,
            client: p.version,
            address: p.address,
            id: p.id,
          });
          this.#emit({ type: "ipmsg-joined", peer: p });
        }
        break;
      }
      case "left":
        this.#log.info("IP Messenger peer left: {name} ({id}), reason {reason}", {
          name: event.peer.nickname,
          id: event.peer.id,
          reason: event.reason,
        });
        this.#emit({ type: "ipmsg-left", peer: event.peer, reason: event.reason });
        break;
      case "refused":
        if (event.reason === "roster-full") {
          this.#flood(event.address, "IP Messenger entries", "the roster is full (--max-peers, 16 per address)", now);
        } else {
          this.#flood(event.address, "IP Messenger messages", "more than 120 a minute from one address", now);
        }
        break;
      case "message":
        if (!this.#known.has(event.peer.id)) this.#remember(this.#knownIpmsg(event.peer, now));
        try {
          const message = this.#store.receiveUnordered({
            id: timeOrderedId(event.sentAt),
            peer: event.peer.id,
            text: event.text,
            sentAt: event.sentAt,
            receivedAt: this.#wall(now),
          });
          this.#reportMessaging({ type: "message", message });
        } catch (e) {
          // Already answered with RECVMSG (IP Messenger acks before the
          // application sees it); say loudly that it could not be kept.
          this.#reportMessaging({ type: "store-error", error: (e as Error).message });
        }
        break;
      case "delivered": {
        const at = this.#wall(now);
        this.#store.markDelivered(event.messageId, at, event.rttMs);
        const message = this.#store.message(event.messageId);
        if (message) this.#reportMessaging({ type: "delivered", message, rttMs: event.rttMs });
        break;
      }
    }
  }

  /** Forgets known peers never messaged and long unseen (see {@link IDLE_PEER_TTL_MS}). */
  #pruneKnownPeers(): void {
    const now = this.#wall(this.#io.now());
    try {
      const gone = this.#store.pruneKnownPeers(now - IDLE_PEER_TTL_MS, MAX_IDLE_KNOWN_PEERS);
      for (const id of gone) this.#known.delete(id);
      if (gone.length > 0) {
        this.#log.info("Forgot {count} peers never messaged and not seen for 7 days", { count: gone.length });
      }
    } catch (e) {
      this.#log.warn("{error}", { error: (e as Error).message });
    }
  }

  /** An IP Messenger peer as a known peer. */
  #knownIpmsg(p: IpmsgPeer, now: number): KnownPeer {
    return {
      id: p.id,
      protocol: "ipmsg",
      name: p.nickname,
      hostname: p.host,
      address: p.address,
      port: p.port,
      lastSeen: this.#wall(now),
    };
  }

  /** Remembers a peer (in memory and in the database), so that it can be addressed while offline. */
  #remember(known: KnownPeer): void {
    this.#known.set(known.id, known);
    try {
      this.#store.rememberPeer(known);
    } catch (e) {
      this.#log.warn("{error}", { error: (e as Error).message });
    }
  }

  /** Every peer online, lanchat and IP Messenger, for a broadcast. */
  onlinePeers(): { id: string; name: string }[] {
    return [
      ...this.discovery.roster.peers().map((p) => ({ id: p.id, name: p.name })),
      ...(this.ipmsg?.peers() ?? []).map((p) => ({ id: p.id, name: p.nickname })),
    ];
  }

  #reportMessaging(event: MessagingEvent): void {
    if (event.type === "store-error") {
      this.#log.error("Storage error: {error}", { error: event.error });
    } else {
      const m = event.message;
      const name = this.peerName(m.peer);
      if (event.type === "message") {
        // Debug, like deliveries: at thousands a second, a line each would be the daemon's main cost.
        this.#log.debug("Message from {name}: {bytes} bytes", { name, peer: m.peer, id: m.id, bytes: m.text.length });
      } else if (event.type === "delivered") {
        this.#log.debug("Delivered {id} to {name} in {rttMs} ms", { id: m.id, name, rttMs: event.rttMs });
      } else if (event.type === "failed") {
        this.#log.warn("Message {id} to {name} failed: {error}", { id: m.id, name, error: event.error });
      }
    }
    this.#emit(event);
  }

  #emit(event: DaemonEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (e) {
        this.#log.error("Event listener failed: {error}", { error: (e as Error).message });
      }
    }
  }

  /** A peer's display name, from the roster or from peers seen before; else its short id. */
  peerName(id: string): string {
    return this.discovery.roster.get(id)?.name ?? this.ipmsg?.get(id)?.nickname ?? this.#known.get(id)?.name ??
      id.slice(0, 12);
  }

  /**
   * Finds the peer a user means by `query`, online or seen before, by the
   * first of these rules that matches anything:
   *
   * 1. its node id;
   * 2. its display name, exactly; 3. the same without regard to case;
   * 4. an IPv4 address it was heard on (`A.B.C.D`), and with `:PORT` also
   *    that port (its unicast port, or 2425 for IP Messenger);
   * 5. an unambiguous id prefix (4+ hex characters);
   * 6. its hostname, the user part of a `user@host` name, or its IP
   *    Messenger login name.
   *
   * Exactly one match is the answer, whether online or not; more than one is
   * ambiguous, listed, never guessed (not even by preferring the one online:
   * a message meant for someone offline must not go to their namesake).
   */
  lookupPeer(query: string): PeerLookup {
    const q = query.trim();
    /** A candidate, with the `address:port` endpoints it was heard on. */
    type Cand = { id: string; name: string; hostname: string; online: boolean; endpoints: string[] };
    const cands = new Map<string, Cand>();
    for (const k of this.#known.values()) {
      cands.set(k.id, {
        id: k.id,
        name: k.name,
        hostname: k.hostname,
        online: false,
        endpoints: [`${k.address}:${k.port}`],
      });
    }
    for (const p of this.ipmsg?.peers() ?? []) {
      cands.set(p.id, {
        id: p.id,
        name: p.nickname,
        hostname: p.host,
        online: true,
        endpoints: [`${p.address}:${p.port}`],
      });
    }
    for (const p of this.discovery.roster.peers()) {
      cands.set(p.id, {
        id: p.id,
        name: p.name,
        hostname: p.hostname,
        online: true,
        endpoints: p.addresses.map((a) => `${a.address}:${a.port}`).concat(cands.get(p.id)?.endpoints ?? []),
      });
    }
    const all = [...cands.values()];
    const lower = q.toLowerCase();
    const at = /^(\d+\.\d+\.\d+\.\d+)(?::(\d+))?$/.exec(q);
    const atAddress = (c: Cand) =>
      at !== null && parseIPv4(at[1]!) !== undefined &&
      c.endpoints.some((e) => at[2] === undefined ? e.startsWith(`${at[1]}:`) : e === `${at[1]}:${Number(at[2])}`);
    // A name picks a node only by a key pinned for it: not a key that claimed
    // a pinned name (a possible impersonation), not one whose name was handed
    // to another key. Ids, id prefixes and addresses are explicit enough.
    const trust = (c: Cand) => this.#pins.get(c.id)?.trust;
    const byName = (f: (c: Cand) => boolean) => (c: Cand) => f(c) && trust(c) !== "replaced";
    const rules: ((c: Cand) => boolean)[] = [
      (c) => c.id === lower,
      byName((c) => c.name === q),
      byName((c) => c.name.toLowerCase() === lower),
      atAddress,
      (c) => /^[0-9a-f]{4,}$/.test(lower) && c.id.startsWith(lower),
      byName((c) => c.hostname === q || c.name.split("@")[0] === q || this.ipmsg?.get(c.id)?.user === q),
    ];
    const view = (c: Cand) => {
      const t = trust(c);
      return { id: c.id, name: c.name, hostname: c.hostname, online: c.online, ...(t ? { trust: t } : {}) };
    };
    for (const [i, rule] of rules.entries()) {
      const hits = all.filter(rule);
      const byNameRule = i === 1 || i === 2 || i === 5;
      if (byNameRule && hits.some((h) => trust(h) === "conflict")) {
        return { ok: false, reason: "conflict", candidates: hits.map(view) };
      }
      if (hits.length === 1) return { ok: true, peer: view(hits[0]!) };
      if (hits.length > 1) return { ok: false, reason: "ambiguous", candidates: hits.map(view) };
    }
    return { ok: false, reason: "unknown", candidates: all.map(view) };
  }

  /**
   * Stores and sends a message. Resolves once it is stored (committed), with
   * status queued or sent; delivery is reported by a "delivered" event.
   *
   * @throws {RangeError} for a text too long or a message to this node.
   * @throws {StoreError} when it cannot be stored: then nothing is sent.
   */
  async sendMessage(to: string, text: string): Promise<StoredMessage> {
    const [result] = await this.sendMessages([{ to, text }]);
    if (result instanceof Error) throw result;
    return result!;
  }

  /**
   * Stores and sends messages under one commit. Resolves once they are
   * stored, with each one's stored message or the error (RangeError,
   * StoreError) that kept it from being stored; rejects with a StoreError
   * when the commit fails (then none of them is stored or sent).
   */
  async sendMessages(items: { to: string; text: string }[]): Promise<(StoredMessage | Error)[]> {
    const now = this.#io.now();
    const results: (StoredMessage | Error)[] = [];
    // IP Messenger has no ack of ours to hold back: its sends wait for the commit here.
    const ipmsgSends: (() => void)[] = [];
    for (const { to, text } of items) {
      try {
        if (this.ipmsg && (this.ipmsg.get(to) || this.#known.get(to)?.protocol === "ipmsg")) {
          const ipmsg = this.ipmsg;
          if (!ipmsg.fits(to, text)) {
            throw new RangeError("Text is too long for one IP Messenger packet (8 KiB); send it in parts");
          }
          const online = ipmsg.get(to) !== undefined;
          const message = this.#store.insertOutgoing({
            id: timeOrderedId(this.#wall(now)),
            peer: to,
            text,
            sentAt: this.#wall(now),
            status: online ? "sent" : "queued",
          });
          results.push(message);
          ipmsgSends.push(() => {
            ipmsg.send(message.id, to, text, this.#io.now());
            this.#reportMessaging({ type: online ? "sent" : "queued", message });
          });
        } else {
          results.push(this.messaging.send(to, text, now));
        }
      } catch (e) {
        if (!(e instanceof RangeError || e instanceof StoreError)) throw e;
        results.push(e);
      }
    }
    this.#pump();
    await this.#durable();
    for (const send of ipmsgSends) send();
    if (ipmsgSends.length) this.#pump();
    return results;
  }

  /** Resolves with the delivered message, or undefined after `timeoutMs`. */
  waitDelivered(id: string, timeoutMs: number): Promise<StoredMessage | undefined> {
    const already = this.#store.message(id);
    if (already?.status === "delivered" || already?.status === "failed") return Promise.resolve(already);
    return new Promise((resolve) => {
      const off = this.onEvent((e) => {
        if ((e.type === "delivered" || e.type === "failed") && e.message.id === id) {
          clearTimeout(timer);
          off();
          resolve(e.message);
        }
      });
      const timer = setTimeout(() => {
        off();
        resolve(undefined);
      }, timeoutMs);
    });
  }

  /** History, oldest first (see {@link Store.history}). */
  history(q: { peer?: string; sinceCursor?: number; sinceTime?: number; limit?: number }): StoredMessage[] {
    return this.#store.history(q);
  }

  /** A stored message as the API shows it. */
  messageJson(m: StoredMessage): MessageJson {
    const iso = (t: number | undefined) => t === undefined ? undefined : new Date(t).toISOString();
    const out: MessageJson = {
      id: m.id,
      cursor: m.cursor,
      direction: m.direction,
      peer: { id: m.peer, name: this.peerName(m.peer) },
      seq: m.seq,
      text: m.text,
      status: m.status,
      sentAt: iso(m.sentAt)!,
    };
    if (m.receivedAt !== undefined) out.receivedAt = iso(m.receivedAt);
    if (m.deliveredAt !== undefined) out.deliveredAt = iso(m.deliveredAt);
    if (m.rttMs !== undefined) out.rttMs = Math.round(m.rttMs * 1000) / 1000;
    if (m.gapBefore) out.gapBefore = m.gapBefore;
    if (m.late) out.late = true;
    if (m.error) out.error = m.error;
    return out;
  }

  async #refreshTargets(): Promise<void> {
    if (this.#stopped) return;
    const o = this.#options;
    let interfaces: BroadcastTarget[] = [];
    const known = new Set<string>();
    try {
      const { addresses, down } = this.#io.readInterfaces();
      for (const a of addresses) known.add(a.name);
      interfaces = broadcastTargets(addresses, { include: o.interfaces, exclude: o.excludeInterfaces, down });
    } catch (e) {
      if (isOutOfFds(e)) this.outOfFds("reading network interfaces", e);
      else this.#log.warn("Cannot read network interfaces: {error}", { error: (e as Error).message });
    }
    for (const name of known.size > 0 ? o.interfaces ?? [] : []) {
      if (!known.has(name) && this.discovery.shouldWarnOnce(`interface:${name}`)) {
        this.#log.warn(
          "--interface {name} names no interface of this host (it has {names}); nothing is announced there until it appears",
          { name, names: [...known].join(", ") || "none" },
        );
      }
    }
    const changed = JSON.stringify(interfaces) !== JSON.stringify(this.#interfaces);
    if (changed) {
      this.#log.info("Announcing on {targets}", {
        targets: interfaces.length ? interfaces.map((i) => `${i.interface} ${i.broadcast}`).join(", ") : "no interface",
      });
    }
    this.#interfaces = interfaces;
    const port = this.ports.discovery;
    const broadcast: Endpoint[] = interfaces.map((i) => ({ address: i.broadcast, port }));
    for (const b of o.broadcasts ?? []) broadcast.push({ address: b, port });
    const statics: Endpoint[] = [];
    for (const spec of o.peers ?? []) {
      const { host, port: p } = parseHostPort(spec, DEFAULT_UNICAST_PORT);
      if (parseIPv4(host) !== undefined) {
        statics.push({ address: host, port: p });
        continue;
      }
      try {
        for (const a of await this.#io.resolve(host)) statics.push({ address: a, port: p });
      } catch (e) {
        if (isOutOfFds(e)) this.outOfFds("resolving a --peer host name", e);
        else if (this.discovery.shouldWarnOnce(`resolve:${host}`)) {
          this.#log.warn("Cannot resolve --peer {host}: {error}; will try again every 5 s", {
            host,
            error: dnsProblem(e),
          });
        }
      }
    }
    if (this.#stopped) return;
    this.discovery.setTargets(broadcast, statics);
    this.ipmsg?.setBroadcasts(broadcast.map((b) => b.address));
    this.#pump();
  }

  /** Wall-clock time (ms since the epoch) of a monotonic time from the io clock. */
  #wall(t: number): number {
    return this.#startedWall + (t - this.#startedAt);
  }

  /** The roster as `/peers` shows it, sorted by name. */
  peers(): PeerJson[] {
    const iso = (t: number) => new Date(this.#wall(t)).toISOString();
    const lanchat: PeerJson[] = this.discovery.roster.peers()
      .map((p: Peer) => ({
        id: p.id,
        name: p.name,
        hostname: p.hostname,
        addresses: p.addresses.map((a) => ({ address: a.address, port: a.port, lastSeen: iso(a.lastSeen) })),
        incarnation: p.incarnation,
        version: p.version,
        httpPort: p.httpPort,
        intervalMs: p.interval,
        firstSeen: iso(p.firstSeen),
        lastSeen: iso(p.lastSeen),
        state: p.state,
        protocol: "lanchat" as const,
        fingerprint: fingerprintOf(p.id),
        trust: this.#pins.get(p.id)?.trust,
        clockOffsetMs: p.clockOffset,
      }));
    const ipmsg: PeerJson[] = (this.ipmsg?.peers() ?? []).map((p) => ({
      id: p.id,
      name: p.nickname,
      hostname: p.host,
      addresses: [{ address: p.address, port: p.port, lastSeen: iso(p.lastSeen) }],
      incarnation: 0,
      version: p.version,
      httpPort: 0,
      intervalMs: 0,
      firstSeen: iso(p.firstSeen),
      lastSeen: iso(p.lastSeen),
      state: p.absent ? "absent" : "alive",
      protocol: "ipmsg" as const,
      user: p.user,
      nickname: p.nickname,
      group: p.group,
    }));
    return [...lanchat, ...ipmsg].sort(byNameThenId);
  }

  /**
   * The roster, then every peer seen before that is not online (state
   * `offline`, the address and time it was last seen), each part sorted by
   * name: `GET /peers?all=1`, `lanchat peers --all`.
   */
  allPeers(): PeerJson[] {
    const online = this.peers();
    const here = new Set(online.map((p) => p.id));
    const offline: PeerJson[] = [...this.#known.values()].filter((k) => !here.has(k.id)).map((k) => {
      const seen = new Date(k.lastSeen).toISOString();
      const pin = this.#pins.get(k.id);
      return {
        id: k.id,
        name: k.name,
        hostname: k.hostname,
        addresses: [{ address: k.address, port: k.port, lastSeen: seen }],
        incarnation: 0,
        version: "",
        httpPort: 0,
        intervalMs: 0,
        firstSeen: seen,
        lastSeen: seen,
        state: "offline",
        protocol: k.protocol,
        ...(k.protocol === "lanchat" ? { fingerprint: fingerprintOf(k.id), trust: pin?.trust } : {}),
      };
    });
    return [...online, ...offline.sort(byNameThenId)];
  }

  /**
   * `/peers` as pretty JSON, UTF-8. Serialized and encoded once per roster
   * change (and at most every 250 ms for the last-seen times), not once per
   * request: with 1,000 peers that is 400 KB a request not re-made.
   */
  peersBody(): Uint8Array {
    const version = this.discovery.roster.version;
    const now = this.#io.now();
    const c = this.#peersCache;
    if (c && c.version === version && now - c.at < 250) return c.body;
    const body = new TextEncoder().encode(JSON.stringify(this.peers(), null, 2) + "\n");
    this.#peersCache = { version, at: now, body };
    return body;
  }

  /** This node and its counters, as `/status` shows them. */
  status(): Record<string, unknown> {
    const s = this.discovery.self;
    return {
      id: s.id,
      name: s.name,
      hostname: s.hostname,
      version: VERSION,
      incarnation: s.incarnation,
      startedAt: new Date(this.#startedWall).toISOString(),
      uptimeSeconds: Math.round((this.#io.now() - this.#startedAt) / 1000),
      dataDir: this.dataDir,
      ports: this.ports,
      intervalMs: this.discovery.intervalMs,
      announceIntervalMs: this.discovery.announceIntervalMs,
      announceBudget: this.discovery.announceBudget,
      interfaces: this.#interfaces,
      broadcastTargets: this.discovery.targets.broadcast.map((e) => `${e.address}:${e.port}`),
      staticPeers: this.discovery.targets.peers.map((e) => `${e.address}:${e.port}`),
      peers: this.discovery.roster.size,
      memory: (({ rss, heapUsed }) => ({ rssBytes: rss, heapUsedBytes: heapUsed }))(Deno.memoryUsage()),
      cpu: (({ user, system }) => ({ userMs: Math.round(user / 1000), systemMs: Math.round(system / 1000) }))(
        process.cpuUsage(),
      ),
      security: {
        ...(this.#sealer
          ? { group: "keyed", keyId: this.#sealer.keyIdHex, cipher: "AES-256-GCM", replayWindowSeconds: 30 }
          : { group: "open" }),
        fingerprint: fingerprintOf(this.discovery.self.id),
        signedHellos: "Ed25519",
        pinnedKeys: this.#pins.size,
        impersonations: this.#alerts,
      },
      counters: {
        ...this.#viewCounters(),
        sendErrors: this.#sendErrors,
        receiveErrors: this.#receiveErrors,
        fdExhausted: this.#fdExhausted,
        pongsPastRateLimit: this.#rescued,
      },
      http: this.#http ? { maxConnections: this.#http.maxConnections, ...this.#http.stats() } : null,
      messaging: {
        ...this.messaging.counters,
        outbox: this.messaging.pending().length + (this.ipmsg?.pending().length ?? 0),
      },
      ipmsg: this.ipmsg ? { port: this.ipmsg.port, peers: this.ipmsg.peers().length, ...this.ipmsg.counters } : null,
    };
  }

  /**
   * The protocol's counters as /status and /metrics show them: our own
   * broadcasts heard back (every daemon hears its own) are not datagrams in
   * and not drops, but a count of their own, so that `dropped` means only
   * what someone else sent that was refused. Σ received + Σ dropped is still
   * `datagramsIn`.
   */
  #viewCounters(): DiscoveryCounters & { ownEchoes: number } {
    const c = this.discovery.counters;
    const { self: ownEchoes, ...dropped } = c.dropped;
    return {
      ...c,
      datagramsIn: c.datagramsIn - ownEchoes,
      dropped: dropped as DiscoveryCounters["dropped"],
      ownEchoes,
    };
  }

  /** Counters and gauges in the Prometheus text format. */
  metrics(): string {
    const c = this.#viewCounters();
    const s = this.discovery.self;
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of samples) lines.push(`${name}${labels} ${v}`);
    };
    const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
    metric("lanchat_info", "gauge", "This node.", [[
      `{id="${s.id}",name="${esc(s.name)}",version="${esc(VERSION)}"}`,
      1,
    ]]);
    metric("lanchat_uptime_seconds", "gauge", "Seconds since the daemon started.", [[
      "",
      Math.round((this.#io.now() - this.#startedAt) / 1000),
    ]]);
    metric("lanchat_peers", "gauge", "Peers in the roster.", [["", this.discovery.roster.size]]);
    metric("lanchat_datagrams_received_total", "counter", "Datagrams received from others.", [["", c.datagramsIn]]);
    metric("lanchat_own_echoes_total", "counter", "This node's own broadcasts heard back.", [["", c.ownEchoes]]);
    metric("lanchat_datagrams_sent_total", "counter", "Datagrams sent.", [["", c.datagramsOut]]);
    metric("lanchat_bytes_received_total", "counter", "Bytes received.", [["", c.bytesIn]]);
    metric("lanchat_bytes_sent_total", "counter", "Bytes sent.", [["", c.bytesOut]]);
    metric(
      "lanchat_datagrams_dropped_total",
      "counter",
      "Datagrams dropped, by reason.",
      DROP_REASONS.filter((r) => r !== "self").map((r) => [`{reason="${r}"}`, c.dropped[r]]),
    );
    metric(
      "lanchat_packets_received_total",
      "counter",
      "Valid packets received, by kind.",
      Object.entries(c.received).map(([k, v]) => [`{kind="${k}"}`, v]),
    );
    metric("lanchat_peers_joined_total", "counter", "Peers that joined.", [["", c.peersJoined]]);
    metric("lanchat_peers_restarted_total", "counter", "Peers seen restarting.", [["", c.peersRestarted]]);
    metric(
      "lanchat_peers_left_total",
      "counter",
      "Peers that left, by reason.",
      Object.entries(c.peersLeft).map(([k, v]) => [`{reason="${k}"}`, v]),
    );
    metric("lanchat_probes_sent_total", "counter", "Probes sent to silent peers.", [["", c.probesSent]]);
    metric("lanchat_send_errors_total", "counter", "Datagrams the OS refused to send.", [["", this.#sendErrors]]);
    metric("lanchat_receive_errors_total", "counter", "Socket receive errors.", [["", this.#receiveErrors]]);
    metric(
      "lanchat_pongs_past_rate_limit_total",
      "counter",
      "Pongs answering this node's probes let through a flood that had spent their address's rate limit.",
      [["", this.#rescued]],
    );
    metric(
      "lanchat_fd_exhausted_total",
      "counter",
      "Times an operation failed for want of file descriptors.",
      [["", this.#fdExhausted]],
    );
    if (this.#http) {
      const h = this.#http.stats();
      metric("lanchat_http_connections", "gauge", "HTTP connections open.", [["", h.open]]);
      metric("lanchat_http_connections_max", "gauge", "Cap on open HTTP connections.", [[
        "",
        this.#http.maxConnections,
      ]]);
      metric("lanchat_http_connections_accepted_total", "counter", "HTTP connections accepted.", [["", h.accepted]]);
      metric(
        "lanchat_http_connections_closed_total",
        "counter",
        "HTTP connections the daemon closed itself, by reason.",
        CLOSE_REASONS.map((r) => [`{reason="${r}"}`, h.closed[r]]),
      );
      metric("lanchat_http_requests_total", "counter", "HTTP requests.", [["", h.requests]]);
    }
    const mc = this.messaging.counters;
    metric("lanchat_outbox_messages", "gauge", "Messages waiting to be delivered.", [[
      "",
      this.messaging.pending().length,
    ]]);
    for (
      const [key, name, help] of [
        ["messagesSent", "lanchat_messages_sent_total", "Messages sent (first transmission)."],
        ["messagesDelivered", "lanchat_messages_delivered_total", "Messages acknowledged by their peer."],
        ["messagesReceived", "lanchat_messages_received_total", "Messages received and stored."],
        ["duplicates", "lanchat_message_duplicates_total", "Duplicate messages acknowledged and dropped."],
        ["fragmentsSent", "lanchat_fragments_sent_total", "Message fragments sent."],
        ["fragmentsRetransmitted", "lanchat_fragments_retransmitted_total", "Message fragments sent again."],
        ["acksSent", "lanchat_acks_sent_total", "Acks sent."],
        ["gapsSkipped", "lanchat_message_gaps_total", "Messages given up on by a sender, seen as gaps."],
        ["storeErrors", "lanchat_store_errors_total", "Failed database writes."],
      ] as const
    ) metric(name, "counter", help, [["", mc[key]]]);
    return lines.join("\n") + "\n";
  }
}

/** Why a host name could not be resolved, in words (the resolver's own errors dump its query structure). */
export function dnsProblem(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such host (no DNS A record)";
  if (e instanceof Deno.errors.TimedOut) return "the DNS server did not answer in time";
  if (e instanceof Deno.errors.ConnectionRefused) return "the DNS server refused the query";
  const message = (e as Error)?.message ?? String(e);
  if (/invalid characters|malformed label/i.test(message)) return "not a valid host name";
  if (/no connections available|network is unreachable/i.test(message)) return "no DNS server can be reached";
  return "the lookup failed";
}

function hostForUrl(h: string): string {
  return h.includes(":") ? `[${h}]` : h;
}

/**
 * Orders peers by name without regard to case, then by id: by UTF-16 code
 * units, not `localeCompare`, whose ICU collation data costs every daemon
 * about 3.5 MiB of resident memory the first time `/peers` is asked for.
 */
export function byNameThenId(a: { name: string; id: string }, b: { name: string; id: string }): number {
  const x = a.name.toLowerCase();
  const y = b.name.toLowerCase();
  if (x !== y) return x < y ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
