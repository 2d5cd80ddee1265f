/**
 * What the API shows of a running daemon: `/peers` (the roster, and with
 * `all` the peers seen before), `/status` (the node, its counters, each
 * service's part) and `/metrics` (the same in the Prometheus text format).
 * Read-only: it asks the services and the driver, and builds JSON.
 *
 * @module
 */
import process from "node:process";
import type { PeerJson } from "../api/types.ts";
import { VERSION } from "../common/version.ts";
import type { IpmsgPeer } from "../protocol/ipmsg.ts";
import type { Peer } from "../protocol/roster.ts";
import { fingerprintOf } from "../security/signing.ts";
import type { Pins } from "../security/pins.ts";
import type { Conversations } from "./conversations.ts";
import type { Directory } from "./directory.ts";
import { CLOSE_REASONS, type HttpServer } from "./http_server.ts";
import { labelValue, MetricsWriter } from "./metrics.ts";
import type { Notices } from "./notices.ts";
import type { Service } from "./service.ts";
import { unexpectedErrors } from "./last_resort.ts";
import type { LanchatService } from "./services/lanchat.ts";

/** What the driver tells the views about itself. */
export interface DriverFacts {
  readonly dataDir: string;
  readonly ports: { discovery: number; unicast: number; http: number };
  readonly startedAt: number;
  readonly startedWall: number;
  /** Datagrams the OS refused to send, and socket receive errors. */
  socketErrors(): { send: number; receive: number };
  now(): number;
  wall(now: number): number;
}

export class Views {
  #driver: DriverFacts;
  #lanchat: LanchatService;
  #ipmsgPeers: () => IpmsgPeer[];
  #directory: Directory;
  #conversations: Conversations;
  #services: readonly Service[];
  #notices: Notices;
  #http: () => HttpServer | undefined;
  #lanOrigins: () => string[];
  #peersCache: { version: string; at: number; body: Uint8Array } | undefined;

  constructor(o: {
    driver: DriverFacts;
    lanchat: LanchatService;
    /** IP Messenger's users online (none without `--ipmsg`). */
    ipmsgPeers: () => IpmsgPeer[];
    directory: Directory;
    conversations: Conversations;
    services: readonly Service[];
    notices: Notices;
    http: () => HttpServer | undefined;
    /** The origins the page is served at on the LAN (`lanchat web --lan`), if any. */
    lanOrigins?: () => string[];
  }) {
    this.#driver = o.driver;
    this.#lanchat = o.lanchat;
    this.#ipmsgPeers = o.ipmsgPeers;
    this.#directory = o.directory;
    this.#conversations = o.conversations;
    this.#services = o.services;
    this.#notices = o.notices;
    this.#http = o.http;
    this.#lanOrigins = o.lanOrigins ?? (() => []);
  }

  /** The roster as `/peers` shows it, lanchat and IP Messenger peers, sorted by name. */
  peers(): PeerJson[] {
    const d = this.#driver;
    const iso = (t: number) => new Date(d.wall(t)).toISOString();
    const pins = this.#lanchat.pins;
    const lanchat: PeerJson[] = this.#lanchat.discovery.roster.peers().map((p: Peer) => ({
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
      trust: pins.get(p.id)?.trust,
      ...keyNote(pins, p.id),
      clockOffsetMs: p.clockOffset,
      presence: p.presence ?? "online",
      ...(p.note ? { note: p.note } : {}),
      ...(this.#lanchat.e2e ? { encrypted: !!p.staticKey } : {}),
    }));
    const ipmsg: PeerJson[] = this.#ipmsgPeers().map((p) => ({
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
      presence: p.absent ? "away" as const : "online" as const,
      ...(p.absent && p.absenceNote ? { note: p.absenceNote } : {}),
      protocol: "ipmsg" as const,
      encrypted: false,
      user: p.user,
      nickname: p.nickname,
      group: p.group,
    }));
    return [...lanchat, ...ipmsg].sort(byNameThenId);
  }

  /**
   * `/peers` as pretty JSON, UTF-8. Serialized and encoded once per roster
   * change (and at most every 250 ms for the last-seen times), not once per
   * request: with 1,000 peers that is 400 KB a request not re-made.
   */
  peersBody(): Uint8Array {
    const version = `${this.#lanchat.discovery.roster.version}/${this.#lanchat.pins.version}`;
    const now = this.#driver.now();
    const c = this.#peersCache;
    if (c && c.version === version && now - c.at < 250) return c.body;
    const body = new TextEncoder().encode(JSON.stringify(this.peers(), null, 2) + "\n");
    this.#peersCache = { version, at: now, body };
    return body;
  }

  /**
   * The roster, then every peer seen before that is not online (state
   * `offline`, the address and time it was last seen), each part sorted by
   * name: `GET /peers?all=1`, `lanchat peers --all`.
   */
  allPeers(): PeerJson[] {
    const online = this.peers();
    const here = new Set(online.map((p) => p.id));
    const pins = this.#lanchat.pins;
    const offline: PeerJson[] = [...this.#directory.known()].filter((k) => !here.has(k.id)).map((k) => {
      const seen = new Date(k.lastSeen).toISOString();
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
        ...(k.protocol === "lanchat"
          ? { fingerprint: fingerprintOf(k.id), trust: pins.get(k.id)?.trust, ...keyNote(pins, k.id) }
          : {}),
      };
    });
    return [...online, ...offline.sort(byNameThenId)];
  }

  /** This node, its counters and every service's part, as `/status` shows them. */
  status(): Record<string, unknown> {
    const d = this.#driver;
    const s = this.#lanchat.discovery.self;
    const http = this.#http();
    const out: Record<string, unknown> = {
      id: s.id,
      name: s.name,
      hostname: s.hostname,
      version: VERSION,
      incarnation: s.incarnation,
      presence: s.presence ?? "online",
      ...(s.note ? { note: s.note } : {}),
      startedAt: new Date(d.startedWall).toISOString(),
      uptimeSeconds: Math.round((d.now() - d.startedAt) / 1000),
      dataDir: d.dataDir,
      ports: d.ports,
      cpu: (({ user, system }) => ({ userMs: Math.round(user / 1000), systemMs: Math.round(system / 1000) }))(
        process.cpuUsage(),
      ),
      http: http
        ? {
          maxConnections: http.maxConnections,
          ...http.stats(),
          ...(this.#lanOrigins().length ? { lan: this.#lanOrigins() } : {}),
        }
        : null,
      ipmsg: null,
    };
    for (const service of this.#services) Object.assign(out, service.status?.());
    const errors = d.socketErrors();
    out.counters = {
      ...(out.counters as Record<string, unknown>),
      sendErrors: errors.send,
      receiveErrors: errors.receive,
      fdExhausted: this.#notices.fdExhausted,
      unexpectedErrors: unexpectedErrors(),
    };
    out.messaging = { ...(out.messaging as Record<string, unknown>), outbox: this.#conversations.outboxSize() };
    out.problems = this.problems();
    return out;
  }

  /** What is wrong that a user must act on, in words (every service's); none when healthy. */
  problems(): string[] {
    return this.#services.flatMap((s) => s.problems?.() ?? []);
  }

  /** Counters and gauges in the Prometheus text format. */
  metrics(): string {
    const d = this.#driver;
    const s = this.#lanchat.discovery.self;
    const m = new MetricsWriter();
    m.metric("lanchat_info", "gauge", "This node.", [
      [`{id="${s.id}",name="${labelValue(s.name)}",version="${labelValue(VERSION)}"}`, 1],
    ]);
    m.single(
      "lanchat_uptime_seconds",
      "gauge",
      "Seconds since the daemon started.",
      Math.round((d.now() - d.startedAt) / 1000),
    );
    for (const service of this.#services) service.metrics?.(m);
    const errors = d.socketErrors();
    m.single("lanchat_send_errors_total", "counter", "Datagrams the OS refused to send.", errors.send);
    m.single("lanchat_receive_errors_total", "counter", "Socket receive errors.", errors.receive);
    m.single(
      "lanchat_unexpected_errors_total",
      "counter",
      "Errors nothing handled, logged with their stack by the last resort (bugs: the daemon went on).",
      unexpectedErrors(),
    );
    m.single(
      "lanchat_fd_exhausted_total",
      "counter",
      "Times an operation failed for want of file descriptors.",
      this.#notices.fdExhausted,
    );
    const http = this.#http();
    if (http) {
      const h = http.stats();
      m.single("lanchat_http_connections", "gauge", "HTTP connections open.", h.open);
      m.single("lanchat_http_connections_max", "gauge", "Cap on open HTTP connections.", http.maxConnections);
      m.single("lanchat_http_connections_accepted_total", "counter", "HTTP connections accepted.", h.accepted);
      m.metric(
        "lanchat_http_connections_closed_total",
        "counter",
        "HTTP connections the daemon closed itself, by reason.",
        CLOSE_REASONS.map((r) => [`{reason="${r}"}`, h.closed[r]]),
      );
      m.single("lanchat_http_requests_total", "counter", "HTTP requests.", h.requests);
    }
    m.single("lanchat_outbox_messages", "gauge", "Messages waiting to be delivered.", this.#conversations.outboxSize());
    return m.toString();
  }
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

/** A peer's key-change note as a PeerJson field, when its key changed. */
function keyNote(pins: Pins, id: string): { keyNote?: string } {
  const note = pins.note(id);
  return note ? { keyNote: note } : {};
}
