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
import { SkewLog } from "../../security/skew_log.ts";
import { fingerprintOf } from "../../security/signing.ts";
import { isE2e, type StaticIdentity } from "../../security/e2e_wire.ts";
import { decodePacket, DROP_REASONS, type DropReason, encodePacket, type Packet } from "../../wire/mod.ts";
import { E2eLink } from "./e2e_link.ts";
import type { MetricsWriter } from "../metrics.ts";
import type { Notices } from "../notices.ts";
import { INTERFACE_REFRESH_MS } from "../options.ts";
import type { Outgoing, Service, ServiceContext } from "../service.ts";
import { NOTHING } from "../service.ts";
import type { Targets } from "../targets.ts";
import { formatHostPort } from "../net_address6.ts";
import { Traffic } from "../traffic.ts";
import { Multicast6Sockets } from "./multicast6.ts";

/** The sockets this service owns (names the driver binds). */
export const DISCOVERY_SOCKET = "discovery";
export const UNICAST_SOCKET = "unicast";

/** Handles a decoded packet of another kind for a service built on this link; returns why it was dropped, if it was. */
export type PacketHandler = (packet: Packet, from: Endpoint, now: number, meta: PacketMeta) => DropReason | undefined;

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
  /** lanchat peers: true when it speaks end-to-end, false for a previous version (clear). */
  encrypted?: boolean;
}

/** What a packet handler is told besides the packet: whether it came through an end-to-end session. */
export interface PacketMeta {
  encrypted: boolean;
}

export class LanchatService implements Service {
  readonly name = "lanchat";
  readonly sockets = [DISCOVERY_SOCKET, UNICAST_SOCKET] as const;
  readonly discovery: Discovery;
  readonly admission: Admission;
  readonly pins: Pins;
  readonly targets: Targets;
  /** End-to-end sessions with peers (absent: everything clear, as before; tests of the link alone). */
  readonly e2e: E2eLink | undefined;
  /** Sealed datagrams refused for their send time, per source (for `lanchat doctor`). */
  readonly skews = new SkewLog();
  #ctx!: ServiceContext;
  #notices: Notices;
  #handlers = new Map<Packet["kind"], PacketHandler[]>();
  /** Handshake answers to send. */
  #replies: Outgoing[] = [];
  /** E2e handshake messages and keepalives taken, and their bytes. */
  #control = 0;
  #controlBytes = 0;
  /** Datagrams and bytes by mechanism (IPv4 broadcast, IPv6 multicast, unicast). */
  readonly traffic = new Traffic();
  /** The IPv6 discovery sockets, one per interface. */
  readonly multicast6: Multicast6Sockets;
  #log = logger("daemon");

  constructor(o: {
    discovery: Omit<DiscoveryOptions, "admit" | "wall">;
    admission: Admission;
    pins: Pins;
    targets: Targets;
    notices: Notices;
    wall: (now: number) => number;
    e2e?: { identity: StaticIdentity; incarnation: number; requireEncryption: boolean };
  }) {
    this.admission = o.admission;
    this.pins = o.pins;
    this.targets = o.targets;
    this.#notices = o.notices;
    this.multicast6 = new Multicast6Sockets(o.notices);
    this.discovery = new Discovery({
      // Crashed peers found within seconds at any size (protocol/failure_detector.ts).
      failureDetector: true,
      ...o.discovery,
      wall: o.wall,
      // A hello or goodbye reaches the roster only when signed by the key
      // its id derives from, and that key is the one pinned for the id.
      admit: (packet, from) => this.pins.check(packet, from, o.wall(this.#ctx.io.now())),
    });
    o.targets.onRefresh((t) => this.discovery.setTargets(t.broadcast, t.statics));
    this.e2e = o.e2e &&
      new E2eLink({ ...o.e2e, roster: this.discovery.roster, pins: o.pins, notices: o.notices });
    if (this.e2e) this.discovery.self.staticKey = this.e2e.staticKey;
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
    await this.#openMulticast6();
    this.discovery.start(now);
    ctx.every(INTERFACE_REFRESH_MS, async () => {
      await this.targets.refresh();
      await this.#openMulticast6();
      ctx.changed();
    });
    // The replay window forgets nonces older than 30 s.
    ctx.every(1000, () => this.admission.sealer?.guard.prune(ctx.wall(ctx.io.now())));
  }

  /** A socket per IPv6 interface announced on (see multicast6.ts). */
  #openMulticast6(): Promise<void> {
    return this.multicast6.reconcile(
      this.targets.multicast6,
      this.targets.discoveryPort,
      this.#ctx,
      this,
      UNICAST_SOCKET,
    );
  }

  onDatagram(socket: string, bytes: Uint8Array, source: Endpoint, now: number): void {
    const multicast = this.multicast6.interfaceOf(socket) !== undefined;
    const via = socket === DISCOVERY_SOCKET || multicast ? "broadcast" : "unicast";
    this.traffic.count(
      "received",
      multicast ? "ipv6-multicast" : socket === DISCOVERY_SOCKET ? "ipv4-broadcast" : "unicast",
      bytes.length,
    );
    // A link-local source, kept with its interface (Deno gives none).
    const from = this.multicast6.source(source, socket);
    const verdict = this.admission.admit(bytes, from, via, now, this.#ctx.wall(now));
    if (!verdict.ok) {
      if (verdict.reason === "rate-limit") this.#notices.flood(from.address, verdict.limit!, "over its rate limit");
      if (verdict.aheadMs !== undefined) {
        this.#notices.clockSkew(from.address, verdict.aheadMs);
        this.skews.refused(from.address, verdict.aheadMs, now);
      }
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
    const plain = verdict.plain;
    if (isE2e(plain)) {
      if (!this.e2e) {
        return this.#drop("malformed", "an end-to-end datagram, and this link has none", from, bytes.length);
      }
      const taken = this.e2e.receive(plain, from, now);
      if (taken.kind === "drop") return this.#drop(taken.reason, taken.detail, from, bytes.length);
      if (taken.kind === "packets") {
        // A bundle's bytes shared among its packets, so the byte counters still add up to what came in.
        const n = taken.packets.length;
        taken.packets.forEach((p, i) =>
          this.#take(p, Math.floor(taken.size / n) + (i < taken.size % n ? 1 : 0), from, now, true)
        );
        return;
      }
      // A handshake message or a keepalive: counted apart (see counters()).
      this.#control++;
      this.#controlBytes += bytes.length;
      if (taken.reply) this.#replies.push(this.#e2eOutgoing({ to: from, bytes: taken.reply, data: false }, now));
      return;
    }
    const decoded = decodePacket(plain);
    if (!decoded.ok) return this.#refused(this.discovery.handleDatagram(plain, from, now), from);
    // No one strips the encryption by forging clear packets under a peer's id.
    const unencrypted = this.e2e?.refusesClear(decoded.value);
    if (unencrypted) return this.#drop("unencrypted", unencrypted, from, bytes.length);
    this.#take(decoded.value, plain.length, from, now, false);
  }

  /** A packet decoded and admitted (clear, or opened from a session): to discovery, then the services built on it. */
  #take(packet: Packet, size: number, from: Endpoint, now: number, encrypted: boolean): void {
    const fullBefore = packet.kind === "hello" ? this.discovery.counters.dropped["roster-full"] : 0;
    const refused = this.discovery.handlePacket(packet, size, from, now);
    if (refused) return this.#refused(refused, from);
    if (packet.kind === "hello" && this.discovery.counters.dropped["roster-full"] > fullBefore) {
      const roster = this.discovery.roster;
      this.#notices.rosterFull(from.address, roster.size, roster.maxPeers);
    }
    for (const handle of this.#handlers.get(packet.kind) ?? []) {
      const dropped = handle(packet, from, now, { encrypted });
      if (dropped) {
        // Counted once: as dropped, not as received.
        this.discovery.counters.dropped[dropped]++;
        this.discovery.counters.received[packet.kind]--;
      }
    }
    if (packet.kind === "note") {
      const why = this.discovery.takeNote(packet);
      if (why) this.#log.debug("Note from {id} not taken: {why}", { id: packet.id, why });
    }
    if (packet.kind === "hello" && packet.signed) {
      const peer = this.discovery.roster.get(packet.id);
      if (peer) this.pins.pinOnFirstUse(packet, this.#ctx.wall(now), endpoints(peer).join(", "));
    }
  }

  /** A datagram refused here (not by discovery): counted like any drop, datagramsIn = Σ received + Σ dropped. */
  #drop(reason: DropReason, detail: string, from: Endpoint, size: number): void {
    const c = this.discovery.counters;
    c.datagramsIn++;
    c.bytesIn += size;
    c.dropped[reason]++;
    this.#log.debug("Dropped datagram from {from}: {reason} ({detail})", {
      from: `${from.address}:${from.port}`,
      reason,
      detail,
    });
  }

  /** Discovery refused it (and counted it): the log, and a warning for another protocol version. */
  #refused(result: { ok: false; reason: DropReason; detail: string } | { ok: true }, from: Endpoint): void {
    if (result.ok || result.reason === "self") return;
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
    this.e2e?.sessions.handleTimeout(now);
  }

  pollTimeout(): number | undefined {
    const d = this.discovery.pollTimeout();
    const e = this.e2e?.sessions.pollTimeout();
    return d === undefined ? e : e === undefined ? d : Math.min(d, e);
  }

  drainTransmits(): readonly Outgoing[] {
    const now = this.#ctx.io.now();
    const out = this.discovery.drainTransmits();
    const replies = this.#replies.length ? this.#replies.splice(0) : NOTHING;
    const e2e = this.e2e ? this.e2e.drain().map((t) => this.#e2eOutgoing(t, now)) : NOTHING;
    if (out.length === 0 && replies.length === 0 && e2e.length === 0) return NOTHING;
    return [...this.#counted([...replies, ...e2e]), ...this.outgoingAll(out, now)];
  }

  /** Counts what goes out by mechanism: the discovery socket's broadcasts, multicast to the IPv6 group, unicast. */
  #counted(out: Outgoing[]): Outgoing[] {
    for (const o of out) {
      const mechanism = o.socket === DISCOVERY_SOCKET
        ? "ipv4-broadcast"
        : o.to.address.startsWith("ff")
        ? "ipv6-multicast"
        : "unicast";
      this.traffic.count("sent", mechanism, o.bytes.length);
    }
    return out;
  }

  /**
   * A step's lanchat datagrams as the driver sends them, on the sockets they
   * name: to a peer that speaks end-to-end, through its session, those to one
   * peer sealed together (bundled) once all are given (what comes out now: a
   * handshake may have to run first); to one of a previous version, clear
   * (nothing with `--require-encryption`); sealed with the network key when
   * the group has one, but for e2e data, encrypted already.
   */
  outgoingAll(ts: readonly Transmit[], now: number): Outgoing[] {
    // Counted here, whichever service calls (messaging, peer exchange): every lanchat datagram sent is in the traffic counters.
    return this.#counted(this.#outgoing(ts, now));
  }

  #outgoing(ts: readonly Transmit[], now: number): Outgoing[] {
    const out: Outgoing[] = [];
    let viaE2e = false;
    for (const t of ts) {
      if (this.e2e && t.via === "unicast" && t.peer !== undefined) {
        const route = this.e2e.route(t.peer);
        if (route === "e2e") {
          this.e2e.send({ ...t, peer: t.peer }, now);
          viaE2e = true;
          continue;
        }
        if (route === "refused") {
          this.e2e.counters.notSent++;
          continue;
        }
        this.e2e.counters.clearSent++;
      }
      out.push(this.#clear(t, now));
    }
    if (viaE2e) { for (const x of this.e2e!.drain()) out.push(this.#e2eOutgoing(x, now)); }
    return out;
  }

  /** A datagram that does not go through an e2e session: sealed with the network key, if any. */
  #clear(t: Transmit, now: number): Outgoing {
    return {
      // The IPv6 group is sent to from the dual-stack unicast socket (the discovery socket is IPv4).
      socket: t.via === "broadcast" && !t.to.address.includes(":") ? DISCOVERY_SOCKET : UNICAST_SOCKET,
      to: t.to,
      bytes: this.seal(t.bytes, now),
      kind: t.kind,
    };
  }

  /** An e2e datagram as the driver sends it: handshakes sealed with the network key (if any), data as it is. */
  #e2eOutgoing(t: { to: Endpoint; bytes: Uint8Array; data: boolean }, now: number): Outgoing {
    return {
      socket: UNICAST_SOCKET,
      to: t.to,
      bytes: t.data ? t.bytes : this.seal(t.bytes, now),
      kind: t.data ? "e2e data" : "e2e handshake",
    };
  }

  /**
   * Sets this node's presence: the state in its hellos, announced at once;
   * the note to each peer that speaks end-to-end, over its session (not in
   * the hello, which every host reads).
   */
  setPresence(presence: "online" | "away" | "busy", note: string | undefined, now: number): void {
    this.discovery.setPresence(presence, note, now);
    if (presence === "online") return;
    for (const p of this.discovery.roster.peers()) this.#sendNote(p.id, now);
  }

  /** This node's note to `peer`, when it is away or busy and the peer speaks end-to-end. */
  #sendNote(peer: string, now: number): void {
    const self = this.discovery.self;
    const to = this.discovery.roster.get(peer)?.addresses[0];
    if (!self.presence || !to || this.e2e?.route(peer) !== "e2e") return;
    const bytes = encodePacket({
      kind: "note",
      id: self.id,
      incarnation: self.incarnation,
      presence: self.presence,
      note: self.note ?? "",
    });
    this.e2e.send({ via: "unicast", to: { address: to.address, port: to.port }, bytes, kind: "note", peer }, now);
  }

  onEvent(event: DaemonEvent, now: number): void {
    if (event.type !== "joined" && event.type !== "restarted" && event.type !== "left") return;
    this.e2e?.onRosterEvent(event, now);
    if (event.type !== "left") this.#sendNote(event.peer.id, now);
  }

  /** `lanchat forget`: the peer's end-to-end state goes with its pin. */
  forget(id: string): boolean {
    this.e2e?.forget(id);
    return this.pins.forget(id);
  }

  drainEvents(): readonly DaemonEvent[] {
    this.e2e?.drainEvents();
    const events = this.discovery.drainEvents();
    for (const e of events) {
      // A host inventing peers costs a few lines a minute, not one per invented peer.
      const b = e.type === "presence" ? { ok: true, held: 0 } : this.#notices.burst("roster");
      if (b.ok) logRosterEvent(this.#log, e, b.held);
    }
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
      ...(this.e2e ? { encrypted: !!p.staticKey } : {}),
    }));
  }

  /**
   * The protocol's counters as /status and /metrics show them: our own
   * broadcasts heard back (every daemon hears its own) are not datagrams in
   * and not drops, but a count of their own, so that `dropped` means only
   * what someone else sent that was refused. Σ received + Σ dropped is still
   * `datagramsIn`.
   */
  counters(): Omit<DiscoveryCounters, "received"> & {
    received: DiscoveryCounters["received"] & { e2e: number };
    ownEchoes: number;
  } {
    const c = this.discovery.counters;
    const { self: ownEchoes, ...dropped } = c.dropped;
    return {
      ...c,
      // End-to-end handshake messages and keepalives carry no packet: `e2e` counts them.
      datagramsIn: c.datagramsIn - ownEchoes + this.#control,
      bytesIn: c.bytesIn + this.#controlBytes,
      received: { ...c.received, e2e: this.#control },
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
      interfaces6: this.targets.multicast6.map((m) => ({
        ...m,
        listening: this.multicast6.interfaces.includes(m.interface),
      })),
      broadcastTargets: d.targets.broadcast.map((e) => formatHostPort(e.address, e.port)),
      staticPeers: d.targets.peers.map((e) => formatHostPort(e.address, e.port)),
      traffic: this.traffic.json(),
      peers: d.roster.size,
      security: {
        ...(sealer
          ? { group: "keyed", keyId: sealer.keyIdHex, cipher: "AES-256-GCM", replayWindowSeconds: 30 }
          : { group: "open" }),
        fingerprint: fingerprintOf(d.self.id),
        signedHellos: "Ed25519",
        pinnedKeys: this.pins.size,
        impersonations: this.pins.alerts,
        ...(this.e2e ? { e2e: this.e2e.status() } : {}),
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
    this.e2e?.metrics(m);
    this.traffic.metrics(m);
    m.single("lanchat_peers_joined_total", "counter", "Peers that joined.", c.peersJoined);
    m.single("lanchat_peers_restarted_total", "counter", "Peers seen restarting.", c.peersRestarted);
    m.metric(
      "lanchat_peers_left_total",
      "counter",
      "Peers that left, by reason.",
      Object.entries(c.peersLeft).map(([k, v]) => [`{reason="${k}"}`, v]),
    );
    m.single("lanchat_probes_sent_total", "counter", "Probes sent to silent peers.", c.probesSent);
    m.metric(
      "lanchat_failure_detector_total",
      "counter",
      "The failure detector's work, by event (suspicions raised and taken, refutations, removals after a suspicion).",
      [...Object.entries(c.detector), ["removedAfterSuspicion", c.removedAfterSuspicion]].map(([k, v]) => [
        `{event="${k}"}`,
        v as number,
      ]),
    );
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
  return p.addresses.map((a) => formatHostPort(a.address, a.port));
}

/** A peer joining, restarting or leaving: one `info` line. */
function logRosterEvent(log: ReturnType<typeof logger>, event: RosterEvent, held: number): void {
  if (held > 0) {
    log.info("{held} peer(s) joined, restarted or left without a line of their own (over 30 lines a minute)", { held });
  }
  const p = event.peer;
  const first = p.addresses[0];
  const address = first ? formatHostPort(first.address, first.port) : "?";
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
