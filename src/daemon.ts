/**
 * The daemon: drives the sans-I/O {@link Discovery} with real sockets, a
 * real clock and one timer, serves the status endpoint and turns roster
 * events into log lines. Sockets are opened here (through transport.ts)
 * and nowhere else; tests may pass their own {@link DaemonIo}.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { Discovery, type Endpoint, type Transmit } from "./discovery.ts";
import { createHandler, type HttpServer, serveHttp, type StatusSource } from "./http.ts";
import { defaultDataDir, ensureDataDir, loadOrCreateIdentity } from "./identity.ts";
import { logger } from "./log.ts";
import {
  type BroadcastTarget,
  broadcastTargets,
  type InterfaceAddress,
  parseIPv4,
  readInterfaces,
} from "./net_address.ts";
import type { Peer, RosterEvent } from "./roster.ts";
import { Store } from "./store.ts";
import { BindError, bindUdp, endpointOf, receiveLoop, type Transport, udpAddr } from "./transport.ts";
import { DROP_REASONS, fitTextField } from "./wire/mod.ts";

/** The software version, from deno.json. */
export const VERSION: string = denoJson.version;
export const DEFAULT_DISCOVERY_PORT = 47474;
export const DEFAULT_UNICAST_PORT = 47475;
export const DEFAULT_HTTP = { hostname: "127.0.0.1", port: 47476 } as const;
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
}

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
  readonly dataDir: string;
  readonly ports: { discovery: number; unicast: number; http: number };
  readonly httpUrl: string | undefined;
  #io: DaemonIo;
  #options: DaemonOptions;
  #store: Store;
  #discoverySocket: Transport;
  #unicastSocket: Transport;
  #http: HttpServer | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #refreshTimer: ReturnType<typeof setInterval> | undefined;
  #loops: Promise<void>[] = [];
  #interfaces: BroadcastTarget[] = [];
  #startedAt: number;
  #startedWall: number;
  #stopped = false;
  #sendErrors = 0;
  #receiveErrors = 0;
  #peersCache: { version: number; at: number; json: string } | undefined;
  #log = logger("daemon");
  #listeners = new Set<(e: RosterEvent) => void>();

  private constructor(init: {
    io: DaemonIo;
    options: DaemonOptions;
    store: Store;
    discovery: Discovery;
    dataDir: string;
    discoverySocket: Transport;
    unicastSocket: Transport;
    http: HttpServer | undefined;
  }) {
    this.#io = init.io;
    this.#options = init.options;
    this.#store = init.store;
    this.discovery = init.discovery;
    this.dataDir = init.dataDir;
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
      const discovery = new Discovery({
        intervalMs: options.intervalMs,
        probeTimeoutMs: options.probeTimeoutMs,
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
      // The HTTP handler needs the daemon, which needs the HTTP port: a late-bound reference.
      const ref: { daemon?: Daemon } = {};
      let http: HttpServer | undefined;
      const httpOpt = options.http === undefined ? DEFAULT_HTTP : options.http;
      if (httpOpt) {
        const source: StatusSource = {
          peersJson: () => ref.daemon!.peersJson(),
          status: () => ref.daemon!.status(),
          metrics: () => ref.daemon!.metrics(),
        };
        http = serveHttp(httpOpt.hostname, httpOpt.port, createHandler(source));
        opened.push({ close: () => void http!.shutdown() });
        discovery.self.httpPort = http.addr.port;
      }
      const daemon = new Daemon({ io, options, store, discovery, dataDir, discoverySocket, unicastSocket, http });
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

  /** Calls `listener` on every roster event until the returned function is called. */
  onEvent(listener: (e: RosterEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async #begin(): Promise<void> {
    const self = this.discovery.self;
    await this.#refreshTargets();
    this.discovery.start(this.#io.now());
    this.#loops.push(
      receiveLoop(this.#discoverySocket, (b, f) => this.#onDatagram(b, f), (e) => this.#onReceiveError(e)),
      receiveLoop(this.#unicastSocket, (b, f) => this.#onDatagram(b, f), (e) => this.#onReceiveError(e)),
    );
    this.#refreshTimer = setInterval(() => void this.#refreshTargets(), INTERFACE_REFRESH_MS);
    this.#log.info(
      "lanchat {version} started as {name} ({id}, incarnation {incarnation}); discovery UDP {discoveryPort}, unicast UDP {unicastPort}, HTTP {http}",
      {
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
    this.discovery.shutdown();
    const sends = this.#pump();
    await Promise.allSettled(sends);
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#refreshTimer);
    this.#discoverySocket.close();
    this.#unicastSocket.close();
    await Promise.allSettled(this.#loops);
    await this.#http?.shutdown();
    this.#store.close();
    this.#log.info("lanchat stopped; goodbye sent to {targets} targets", {
      targets: this.discovery.targets.broadcast.length + this.discovery.targets.peers.length,
    });
  }

  #onDatagram(bytes: Uint8Array, from: Deno.Addr): void {
    if (this.#stopped) return;
    const endpoint = endpointOf(from);
    const result = this.discovery.handleDatagram(bytes, endpoint, this.#io.now());
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

  #onReceiveError(e: unknown): void {
    this.#receiveErrors++;
    this.#log.debug("Receive error: {error}", { error: (e as Error)?.message ?? String(e) });
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#stopped) return;
    this.discovery.handleTimeout(this.#io.now());
    this.#pump();
  }

  /** Sends what the protocol wants sent, reports events, re-arms the timer. */
  #pump(): Promise<unknown>[] {
    const sends = this.discovery.drainTransmits().map((t) => this.#send(t));
    for (const event of this.discovery.drainEvents()) this.#report(event);
    const next = this.discovery.pollTimeout();
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
      await socket.send(t.bytes, udpAddr(t.to.address, t.to.port));
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
    const address = p.addresses[0] ? `${p.addresses[0].address}:${p.addresses[0].port}` : "?";
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
    for (const l of this.#listeners) l(event);
  }

  async #refreshTargets(): Promise<void> {
    if (this.#stopped) return;
    const o = this.#options;
    let interfaces: BroadcastTarget[] = [];
    try {
      const { addresses, down } = this.#io.readInterfaces();
      interfaces = broadcastTargets(addresses, { include: o.interfaces, exclude: o.excludeInterfaces, down });
    } catch (e) {
      this.#log.warn("Cannot read network interfaces: {error}", { error: (e as Error).message });
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
        if (this.discovery.shouldWarnOnce(`resolve:${host}`)) {
          this.#log.warn("Cannot resolve --peer {host}: {error}", { host, error: (e as Error).message });
        }
      }
    }
    if (this.#stopped) return;
    this.discovery.setTargets(broadcast, statics);
    this.#pump();
  }

  /** Wall-clock time (ms since the epoch) of a monotonic time from the io clock. */
  #wall(t: number): number {
    return this.#startedWall + (t - this.#startedAt);
  }

  /** The roster as `/peers` shows it, sorted by name. */
  peers(): PeerJson[] {
    const iso = (t: number) => new Date(this.#wall(t)).toISOString();
    return this.discovery.roster.peers()
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
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
      }));
  }

  /**
   * `/peers` as pretty JSON. Serialized once per roster change (and at most
   * every 250 ms for the last-seen times), not once per request.
   */
  peersJson(): string {
    const version = this.discovery.roster.version;
    const now = this.#io.now();
    const c = this.#peersCache;
    if (c && c.version === version && now - c.at < 250) return c.json;
    const json = JSON.stringify(this.peers(), null, 2) + "\n";
    this.#peersCache = { version, at: now, json };
    return json;
  }

  /** This node and its counters, as `/status` shows them. */
  status(): Record<string, unknown> {
    const s = this.discovery.self;
    const c = this.discovery.counters;
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
      interfaces: this.#interfaces,
      broadcastTargets: this.discovery.targets.broadcast.map((e) => `${e.address}:${e.port}`),
      staticPeers: this.discovery.targets.peers.map((e) => `${e.address}:${e.port}`),
      peers: this.discovery.roster.size,
      counters: { ...c, sendErrors: this.#sendErrors, receiveErrors: this.#receiveErrors },
    };
  }

  /** Counters and gauges in the Prometheus text format. */
  metrics(): string {
    const c = this.discovery.counters;
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
    metric("lanchat_datagrams_received_total", "counter", "Datagrams received.", [["", c.datagramsIn]]);
    metric("lanchat_datagrams_sent_total", "counter", "Datagrams sent.", [["", c.datagramsOut]]);
    metric("lanchat_bytes_received_total", "counter", "Bytes received.", [["", c.bytesIn]]);
    metric("lanchat_bytes_sent_total", "counter", "Bytes sent.", [["", c.bytesOut]]);
    metric(
      "lanchat_datagrams_dropped_total",
      "counter",
      "Datagrams dropped, by reason.",
      DROP_REASONS.map((r) => [`{reason="${r}"}`, c.dropped[r]]),
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
    return lines.join("\n") + "\n";
  }
}

function hostForUrl(h: string): string {
  return h.includes(":") ? `[${h}]` : h;
}
