/**
 * lanchat's own link, as a service: the discovery and unicast sockets, the
 * admission gate in front of them (rate limits, network key, rescued pongs),
 * the discovery state machine (announce, reply, probe, goodbye, roster), the
 * node keys pinned on first use, and the routing of the other packet kinds
 * to the services built on this link (messaging). It also owns where
 * announces go (node/targets.ts).
 *
 * @module
 */
import type { DaemonEvent } from "../../api/types.ts";
import { logger } from "../../common/log.ts";
import {
  Discovery,
  type DiscoveryCounters,
  type DiscoveryOptions,
  type Endpoint,
  type Transmit,
} from "../../protocol/discovery.ts";
import type { Peer, RosterEvent } from "../../protocol/roster.ts";
import type { Admission } from "../../security/admission.ts";
import type { Pins } from "../../security/pins.ts";
import { fingerprintOf } from "../../security/signing.ts";
import { DROP_REASONS, type DropReason, type Packet } from "../../wire/mod.ts";
import type { MetricsWriter } from "../metrics.ts";
import type { Notices } from "../notices.ts";
import { INTERFACE_REFRESH_MS } from "../options.ts";
import type { Outgoing, Service, ServiceContext } from "../service.ts";
import { NOTHING } from "../service.ts";
import type { Targets } from "../targets.ts";

/** The sockets this service owns (names the driver binds). */
export const DISCOVERY_SOCKET = "discovery";
export const UNICAST_SOCKET = "unicast";

/** Handles a decoded packet of another kind for a service built on this link; returns why it was dropped, if it was. */
export type PacketHandler = (packet: Packet, from: Endpoint, now: number) => DropReason | undefined;

/** A peer online, as peer lookup and `/peers` see it. */
export interface OnlinePeer {
  id: string;
  name: string;
  hostname: string;
  /** `address:port` it was heard on, most recent first. */
  endpoints: string[];
  protocol: "lanchat" | "ipmsg";
  /** IP Messenger: the login name. */
  user?: string;
}

export class LanchatService implements Service {
  readonly name = "lanchat";
  readonly sockets = [DISCOVERY_SOCKET, UNICAST_SOCKET] as const;
  readonly discovery: Discovery;
  readonly admission: Admission;
  readonly pins: Pins;
  readonly targets: Targets;
  #ctx!: ServiceContext;
  #notices: Notices;
  #handlers = new Map<Packet["kind"], PacketHandler[]>();
  #log = logger("daemon");

  constructor(o: {
    discovery: Omit<DiscoveryOptions, "admit" | "wall">;
    admission: Admission;
    pins: Pins;
    targets: Targets;
    notices: Notices;
    wall: (now: number) => number;
  }) {
    this.admission = o.admission;
    this.pins = o.pins;
    this.targets = o.targets;
    this.#notices = o.notices;
    this.discovery = new Discovery({
      ...o.discovery,
      wall: o.wall,
      // A hello or goodbye reaches the roster only when signed by the key
      // its id derives from, and that key is the one pinned for the id.
      admit: (packet, from) => this.pins.check(packet, from, o.wall(this.#ctx.io.now())),
    });
    o.targets.onRefresh((t) => this.discovery.setTargets(t.broadcast, t.statics));
  }

  /** Lets a service built on this link handle packets of these kinds once they are decoded and admitted. */
  route(kinds: Packet["kind"][], handler: PacketHandler): void {
    for (const k of kinds) this.#handlers.set(k, [...(this.#handlers.get(k) ?? []), handler]);
  }

  /** Seals (with a network key) a datagram of a service built on this link, stamped with `now`. */
  seal(bytes: Uint8Array, now: number): Uint8Array {
    return this.admission.seal(bytes, this.#ctx.wall(now));
  }

  async start(ctx: ServiceContext, now: number): Promise<void> {
    this.#ctx = ctx;
    await this.targets.refresh();
    this.discovery.start(now);
    ctx.every(INTERFACE_REFRESH_MS, async () => {
      await this.targets.refresh();
      ctx.changed();
    });
    // The replay window forgets nonces older than 30 s.
    ctx.every(1000, () => this.admission.sealer?.guard.prune(ctx.wall(ctx.io.now())));
  }

  onDatagram(socket: string, bytes: Uint8Array, from: Endpoint, now: number): void {
    const via = socket === DISCOVERY_SOCKET ? "broadcast" : "unicast";
    const verdict = this.admission.admit(bytes, from, via, now, this.#ctx.wall(now));
    if (!verdict.ok) {
      if (verdict.reason === "rate-limit") this.#notices.flood(from.address, verdict.limit!, "over its rate limit");
      if (verdict.aheadMs !== undefined) this.#notices.clockSkew(from.address, verdict.aheadMs);
      // Counted like any drop: datagramsIn = Σ received + Σ dropped.
      const c = this.discovery.counters;
      c.datagramsIn++;
      c.bytesIn += bytes.length;
      c.dropped[verdict.reason]++;
      if (verdict.detail) {
        this.#log.debug("Dropped datagram from {from}: {reason} ({detail})", {
          from: from.address,
          reason: verdict.reason,
          detail: verdict.detail,
        });
      }
      return;
    }
    const result = this.discovery.handleDatagram(verdict.plain, from, now);
    if (result.ok) {
      const packet = result.value;
      for (const handle of this.#handlers.get(packet.kind) ?? []) {
        const dropped = handle(packet, from, now);
        if (dropped) {
          // Counted once: as dropped, not as received.
          this.discovery.counters.dropped[dropped]++;
          this.discovery.counters.received[packet.kind]--;
        }
      }
      if (packet.kind === "hello" && packet.signed) {
        const peer = this.discovery.roster.get(packet.id);
        if (peer) this.pins.pinOnFirstUse(packet, this.#ctx.wall(now), endpoints(peer).join(", "));
      }
      return;
    }
    if (result.reason === "self") return;
    this.#log.debug("Dropped datagram from {from}: {reason} ({detail})", {
      from: `${from.address}:${from.port}`,
      reason: result.reason,
      detail: result.detail,
    });
    if (result.reason === "bad-version") {
      this.#notices.once(
        `version:${from.address}`,
        "{from} speaks another lanchat protocol version ({detail}); upgrade one of them",
        { from: from.address, detail: result.detail },
      );
    }
  }

  handleTimeout(now: number, late?: number): void {
    this.discovery.handleTimeout(now, late);
  }

  pollTimeout(): number | undefined {
    return this.discovery.pollTimeout();
  }

  drainTransmits(): readonly Outgoing[] {
    const out = this.discovery.drainTransmits();
    return out.length === 0 ? NOTHING : out.map((t) => this.outgoing(t, this.#ctx.io.now()));
  }

  /** A lanchat datagram as the driver sends it: sealed, on the socket it names. */
  outgoing(t: Transmit, now: number): Outgoing {
    return {
      socket: t.via === "broadcast" ? DISCOVERY_SOCKET : UNICAST_SOCKET,
      to: t.to,
      bytes: this.seal(t.bytes, now),
      kind: t.kind,
    };
  }

  drainEvents(): readonly DaemonEvent[] {
    const events = this.discovery.drainEvents();
    for (const e of events) logRosterEvent(this.#log, e);
    return events;
  }

  shutdown(): void {
    this.discovery.shutdown();
  }

  nameOf(id: string): string | undefined {
    return this.discovery.roster.get(id)?.name;
  }

  /** The peers in the roster, for peer lookup. */
  onlinePeers(): OnlinePeer[] {
    return this.discovery.roster.peers().map((p) => ({
      id: p.id,
      name: p.name,
      hostname: p.hostname,
      endpoints: endpoints(p),
      protocol: "lanchat" as const,
    }));
  }

  /**
   * The protocol's counters as /status and /metrics show them: our own
   * broadcasts heard back (every daemon hears its own) are not datagrams in
   * and not drops, but a count of their own, so that `dropped` means only
   * what someone else sent that was refused. Σ received + Σ dropped is still
   * `datagramsIn`.
   */
  counters(): DiscoveryCounters & { ownEchoes: number } {
    const c = this.discovery.counters;
    const { self: ownEchoes, ...dropped } = c.dropped;
    return {
      ...c,
      datagramsIn: c.datagramsIn - ownEchoes,
      dropped: dropped as DiscoveryCounters["dropped"],
      ownEchoes,
    };
  }

  status(): Record<string, unknown> {
    const d = this.discovery;
    const sealer = this.admission.sealer;
    return {
      intervalMs: d.intervalMs,
      announceIntervalMs: d.announceIntervalMs,
      announceBudget: d.announceBudget,
      interfaces: this.targets.interfaces,
      broadcastTargets: d.targets.broadcast.map((e) => `${e.address}:${e.port}`),
      staticPeers: d.targets.peers.map((e) => `${e.address}:${e.port}`),
      peers: d.roster.size,
      security: {
        ...(sealer
          ? { group: "keyed", keyId: sealer.keyIdHex, cipher: "AES-256-GCM", replayWindowSeconds: 30 }
          : { group: "open" }),
        fingerprint: fingerprintOf(d.self.id),
        signedHellos: "Ed25519",
        pinnedKeys: this.pins.size,
        impersonations: this.pins.alerts,
        /** Keys in conflict with a pinned name (a changed key), in words. */
        keyChanges: this.pins.keyChanges(),
      },
      counters: { ...this.counters(), pongsPastRateLimit: this.admission.rescued },
    };
  }

  metrics(m: MetricsWriter): void {
    const c = this.counters();
    m.single("lanchat_peers", "gauge", "Peers in the roster.", this.discovery.roster.size);
    m.single("lanchat_datagrams_received_total", "counter", "Datagrams received from others.", c.datagramsIn);
    m.single("lanchat_own_echoes_total", "counter", "This node's own broadcasts heard back.", c.ownEchoes);
    m.single("lanchat_datagrams_sent_total", "counter", "Datagrams sent.", c.datagramsOut);
    m.single("lanchat_bytes_received_total", "counter", "Bytes received.", c.bytesIn);
    m.single("lanchat_bytes_sent_total", "counter", "Bytes sent.", c.bytesOut);
    m.metric(
      "lanchat_datagrams_dropped_total",
      "counter",
      "Datagrams dropped, by reason.",
      DROP_REASONS.filter((r) => r !== "self").map((r) => [`{reason="${r}"}`, c.dropped[r]]),
    );
    m.metric(
      "lanchat_packets_received_total",
      "counter",
      "Valid packets received, by kind.",
      Object.entries(c.received).map(([k, v]) => [`{kind="${k}"}`, v]),
    );
    m.single("lanchat_peers_joined_total", "counter", "Peers that joined.", c.peersJoined);
    m.single("lanchat_peers_restarted_total", "counter", "Peers seen restarting.", c.peersRestarted);
    m.metric(
      "lanchat_peers_left_total",
      "counter",
      "Peers that left, by reason.",
      Object.entries(c.peersLeft).map(([k, v]) => [`{reason="${k}"}`, v]),
    );
    m.single("lanchat_probes_sent_total", "counter", "Probes sent to silent peers.", c.probesSent);
    m.single(
      "lanchat_pongs_past_rate_limit_total",
      "counter",
      "Pongs answering this node's probes let through a flood that had spent their address's rate limit.",
      this.admission.rescued,
    );
  }

  /** The start-up line's words for the group. */
  groupLine(): string {
    const sealer = this.admission.sealer;
    return sealer
      ? `keyed group (network key id ${sealer.keyIdHex}: only hosts with that key see it)`
      : "open group (no network key: every lanchat host on the LAN sees it)";
  }
}

/** Where a peer was heard, `address:port`, most recent first. */
function endpoints(p: Peer): string[] {
  return p.addresses.map((a) => `${a.address}:${a.port}`);
}

/** A peer joining, restarting or leaving: one `info` line. */
function logRosterEvent(log: ReturnType<typeof logger>, event: RosterEvent): void {
  const p = event.peer;
  const first = p.addresses[0];
  const address = first ? `${first.address}:${first.port}` : "?";
  if (event.type === "joined") {
    log.info("Peer joined: {name} ({id}) at {address}", { name: p.name, id: p.id, address });
  } else if (event.type === "restarted") {
    log.info("Peer restarted: {name} ({id}) at {address}, incarnation {incarnation}", {
      name: p.name,
      id: p.id,
      address,
      incarnation: p.incarnation,
    });
  } else if (event.type === "left") {
    log.info("Peer left: {name} ({id}), reason {reason}", { name: p.name, id: p.id, reason: event.reason });
  } else {
    log.info("{name} is {presence}{note}", {
      name: p.name,
      id: p.id,
      presence: p.presence ?? "online",
      note: p.note ? `: ${p.note}` : "",
    });
  }
}
