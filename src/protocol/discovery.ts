/**
 * The discovery protocol as a sans-I/O state machine: the announce schedule,
 * answers to newcomers, probes of silent peers and goodbyes. It never reads a
 * clock or touches a socket: the driver (the daemon, or a simulator) feeds it
 * datagrams and the time, asks {@link Discovery.pollTimeout} when to wake it
 * next, and sends what {@link Discovery.drainTransmits} returns.
 *
 * @module
 */
import {
  appendSignature,
  decodePacket,
  type DecodeResult,
  DROP_REASONS,
  type DropReason,
  encodePacket,
  type Goodbye,
  type Hello,
  type Packet,
} from "../wire/mod.ts";
import { type LeaveReason, Roster, type RosterEvent, type RosterOptions } from "./roster.ts";
import type { Endpoint, Transmit, Via } from "./transmit.ts";

export type { Endpoint, Transmit, Via } from "./transmit.ts";

/** Default announce interval. */
export const DEFAULT_INTERVAL_MS = 2000;
/** Offsets of the hellos sent right after start, before the periodic schedule. */
export const STARTUP_BURST_MS: readonly number[] = [0, 100, 500];
/** Up to this roster size a newcomer is answered at once. */
export const INSTANT_REPLY_MAX_PEERS = 32;
/**
 * Default announce budget: hellos a second that any one host may receive
 * from all the others together, whatever the roster size.
 */
export const DEFAULT_ANNOUNCE_BUDGET = 50;
/** Longest window replies to a newcomer are spread over. */
export const MAX_REPLY_WINDOW_MS = 2000;

/**
 * The announce interval for a roster of `peers`: the configured interval
 * while it keeps what each host receives under `budget` hellos a second,
 * else long enough that it does (`peers / budget` seconds, rounded up to a
 * whole second so that it does not change with every join), as RTCP scales
 * its report interval with the group. Expiry (3 intervals) and so crash
 * detection scale with it; receivers learn it from each hello.
 */
export function scaledInterval(baseMs: number, peers: number, budget: number): number {
  const needed = (peers * 1000) / budget;
  return needed <= baseMs ? baseMs : Math.ceil(needed / 1000) * 1000;
}

/** This node, as it announces itself. */
export interface SelfInfo {
  id: string;
  incarnation: number;
  name: string;
  hostname: string;
  version: string;
  /** The unicast port peers must answer to. */
  port: number;
  httpPort: number;
  /** This node's state when not online, and a note, sent in every hello. */
  presence?: "away" | "busy";
  note?: string;
  /** Bumped on every change of presence (an auto-reply is sent once per absence). */
  presenceChanges?: number;
}

export interface DiscoveryOptions {
  self: SelfInfo;
  /** Announce interval in ms. Default {@link DEFAULT_INTERVAL_MS}. */
  intervalMs?: number;
  probeTimeoutMs?: number;
  /** Bound on the roster. */
  maxPeers?: number;
  /** Peers of another protocol counted against the roster's bounds (see {@link RosterOptions.others}). */
  others?: RosterOptions["others"];
  /** Source of randomness in [0, 1): jitter and reply spreading. */
  random?: () => number;
  /** Hellos a second a host may receive from all others (default {@link DEFAULT_ANNOUNCE_BUDGET}). */
  announceBudget?: number;
  /**
   * Wall clock (ms since the epoch) for a monotonic time: hellos then carry
   * their send time, and each peer's clock offset is kept (see
   * {@link Peer.clockOffset}).
   */
  wall?: (now: number) => number;
  /** Signs this node's hellos and goodbyes (see wire `appendSignature`). */
  signer?: { publicKey: Uint8Array; sign: (data: Uint8Array) => Uint8Array };
  /**
   * Decides whether a received hello or goodbye may reach the roster (the
   * daemon checks its signature and the pinned key here). A reason refuses
   * it: counted and dropped.
   */
  admit?: (packet: Hello | Goodbye, from: Endpoint) => { reason: DropReason; detail: string } | undefined;
}

/** Counters kept by the protocol; the driver adds socket-level ones. */
export interface DiscoveryCounters {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: Record<DropReason, number>;
  received: Record<Packet["kind"], number>;
  peersJoined: number;
  peersRestarted: number;
  peersLeft: Record<LeaveReason, number>;
  probesSent: number;
}

/**
 * The delay before the next periodic announce: the interval with ±25 %
 * jitter, so that daemons started together drift apart.
 */
export function announceDelay(intervalMs: number, random: number): number {
  return Math.round(intervalMs * (0.75 + 0.5 * random));
}

/**
 * How long to wait before answering a newcomer's hello when the roster has
 * `peers` entries: at once on a small LAN; on a big one spread over a window
 * that grows with the roster (as IP Messenger spreads ANSENTRY), so that a
 * join does not make every host answer in the same millisecond.
 */
export function replyDelay(peers: number, random: number): number {
  if (peers <= INSTANT_REPLY_MAX_PEERS) return 0;
  const window = Math.min(MAX_REPLY_WINDOW_MS, peers * 2);
  return Math.floor(random * window);
}

/** What the drain methods return when there is nothing: no allocation per call on the hot path. */
const NOTHING: readonly never[] = Object.freeze([]);

interface PendingReply {
  at: number;
  peerId: string;
  to: Endpoint;
}

/**
 * Pings a probe sends, spread over the probe timeout (at 0, ⅓ and ⅔ of it):
 * one lost ping or pong (loss on the link, or a flood filling the peer's
 * receive buffer) does not remove a peer that is alive.
 */
export const PINGS_PER_PROBE = 3;
/**
 * Pings a probe sends, spread over the probe timeout, once the driver saw
 * a flood under the probed address (see {@link AwaitedPong.flooded}): the
 * pongs then share the socket's receive buffer with that flood and the
 * kernel drops most of what comes while it is full, so each pong has a
 * small chance; more of them, spread in time, make one arriving near sure.
 */
export const FLOODED_PINGS_PER_PROBE = 10;

/** A probe sent to an address whose pong has not come yet. */
export interface AwaitedPong {
  /** The probed peer. */
  id: string;
  nonce: number;
  /** Sealed datagrams from the address the driver opened for this pong past their rate limit (it bounds that work). */
  examined: number;
  /** Set by the driver when datagrams from the address came past its rate limit while this pong was awaited. */
  flooded: boolean;
  /** Where the pings go, the ping itself, when the last one went and how many went. */
  to: Endpoint;
  ping: Uint8Array;
  sentAt: number;
  pings: number;
}

/** How many pings a probe sends in all, and when its next one is due. */
function pingPlan(a: AwaitedPong, timeoutMs: number): { max: number; nextAt: number } {
  const max = a.flooded ? FLOODED_PINGS_PER_PROBE : PINGS_PER_PROBE;
  return { max, nextAt: a.sentAt + timeoutMs / max };
}

/** Why a well-formed packet was not taken (counted under `reason`). */
export type Refused = Extract<DecodeResult<Packet>, { ok: false }>;

/** The discovery state machine. */
export class Discovery {
  readonly self: SelfInfo;
  /** The configured (smallest) announce interval. */
  readonly intervalMs: number;
  readonly announceBudget: number;
  readonly roster: Roster;
  #counters: DiscoveryCounters;
  // The per-datagram counts, kept as plain fields and folded into the
  // counters when they are read: on a LAN of 1,000 every host counts 50
  // hellos a second, and the simulator 50,000 (see src/sim.ts).
  #datagramsIn = 0;
  #bytesIn = 0;
  #hellosIn = 0;
  #selfId: string;
  #random: () => number;
  #broadcastTargets: Endpoint[] = [];
  #staticPeers: Endpoint[] = [];
  #burst: number[] = [];
  #nextAnnounce: number | undefined;
  #replies: PendingReply[] = [];
  /** When the earliest pending reply is due (Infinity if none). */
  #nextReply = Infinity;
  #transmits: Transmit[] = [];
  #events: RosterEvent[] = [];
  #warned = new Set<string>();
  #stopped = false;
  #signer: DiscoveryOptions["signer"];
  #admit: DiscoveryOptions["admit"];
  #wall: ((now: number) => number) | undefined;
  /** The latest time this machine was told (stamps hellos sent from setTargets). */
  #now = 0;
  /** address → the probe awaiting a pong from it. */
  #awaiting = new Map<string, AwaitedPong>();

  constructor(options: DiscoveryOptions) {
    this.self = options.self;
    this.#selfId = options.self.id;
    this.intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.announceBudget = options.announceBudget ?? DEFAULT_ANNOUNCE_BUDGET;
    this.#random = options.random ?? Math.random;
    this.#signer = options.signer;
    this.#admit = options.admit;
    this.#wall = options.wall;
    this.roster = new Roster({
      selfId: this.self.id,
      probeTimeoutMs: options.probeTimeoutMs,
      maxPeers: options.maxPeers,
      others: options.others,
    });
    this.#counters = {
      datagramsIn: 0,
      datagramsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
      received: { hello: 0, goodbye: 0, ping: 0, pong: 0, msg: 0, ack: 0, read: 0 },
      peersJoined: 0,
      peersRestarted: 0,
      peersLeft: { goodbye: 0, timeout: 0 },
      probesSent: 0,
    };
  }

  /** Counters kept by the protocol (the driver may add to them). */
  get counters(): DiscoveryCounters {
    const c = this.#counters;
    if (this.#datagramsIn > 0) {
      c.datagramsIn += this.#datagramsIn;
      c.bytesIn += this.#bytesIn;
      c.received.hello += this.#hellosIn;
      this.#datagramsIn = this.#bytesIn = this.#hellosIn = 0;
    }
    return c;
  }

  /** The announce interval now: {@link scaledInterval} of the roster size. */
  get announceIntervalMs(): number {
    return scaledInterval(this.intervalMs, this.roster.size, this.announceBudget);
  }

  /** Where announces go: broadcast addresses and static peers. */
  get targets(): { broadcast: readonly Endpoint[]; peers: readonly Endpoint[] } {
    return { broadcast: this.#broadcastTargets, peers: this.#staticPeers };
  }

  /** Starts the startup burst of announces at `now`. */
  start(now: number): void {
    this.#now = now;
    this.#burst = STARTUP_BURST_MS.map((offset) => now + offset);
    this.#nextAnnounce = this.#burst.shift();
  }

  /**
   * Sets where announces go. A target that was not there before (a new
   * interface, a new DHCP address) is announced to at once.
   */
  setTargets(broadcast: Endpoint[], staticPeers: Endpoint[]): void {
    const key = (e: Endpoint) => `${e.address}:${e.port}`;
    const oldB = new Set(this.#broadcastTargets.map(key));
    const oldP = new Set(this.#staticPeers.map(key));
    this.#broadcastTargets = [...broadcast];
    this.#staticPeers = [...staticPeers];
    if (this.#stopped || this.#nextAnnounce === undefined) return;
    const hello = this.#helloBytes(false);
    for (const t of broadcast) if (!oldB.has(key(t))) this.#send("broadcast", t, hello, "hello");
    for (const t of staticPeers) if (!oldP.has(key(t))) this.#send("unicast", t, hello, "hello");
  }

  /**
   * Handles one received datagram. `from` is its source; `via` the socket
   * it arrived on. Malformed input is counted by reason and dropped.
   */
  handleDatagram(bytes: Uint8Array, from: Endpoint, now: number): DecodeResult<Packet> {
    const decoded = decodePacket(bytes);
    if (!decoded.ok) {
      this.#datagramsIn++;
      this.#bytesIn += bytes.length;
      this.#counters.dropped[decoded.reason]++;
      return decoded;
    }
    return this.handlePacket(decoded.value, bytes.length, from, now) ?? decoded;
  }

  /**
   * Handles a packet already decoded from a datagram of `size` bytes (a
   * simulator decodes a broadcast once for all its receivers). Returns why
   * it was dropped, or undefined when it was taken.
   */
  handlePacket(packet: Packet, size: number, from: Endpoint, now: number): Refused | undefined {
    this.#now = now;
    this.#datagramsIn++;
    this.#bytesIn += size;
    if (packet.id === this.#selfId) {
      this.#counters.dropped.self++;
      return { ok: false, reason: "self", detail: "own datagram" };
    }
    if (this.#stopped) return undefined;
    if (this.#admit && (packet.kind === "hello" || packet.kind === "goodbye")) {
      const refused = this.#admit(packet, from);
      if (refused) {
        this.#counters.dropped[refused.reason]++;
        return { ok: false, ...refused };
      }
    }
    if (packet.kind === "hello") {
      this.#hellosIn++;
      this.#onHello(packet, from, now);
      return undefined;
    }
    this.#counters.received[packet.kind]++;
    switch (packet.kind) {
      case "goodbye": {
        const event = this.roster.goodbye(packet.id, packet.incarnation, now);
        if (event) this.#emit(event);
        this.#setReplies(this.#replies.filter((r) => r.peerId !== packet.id));
        break;
      }
      case "ping": {
        const pong = encodePacket({
          kind: "pong",
          id: this.self.id,
          incarnation: this.self.incarnation,
          nonce: packet.nonce,
        });
        this.#send("unicast", from, pong, "pong");
        const known = this.roster.heard(packet.id, packet.incarnation, from.address, from.port, now);
        // Someone probes us but we do not know them: introduce ourselves so
        // that they answer with a hello.
        if (!known) this.#send("unicast", from, this.#helloBytes(false), "hello");
        break;
      }
      case "pong":
        if (this.#awaiting.get(from.address)?.id === packet.id) this.#awaiting.delete(from.address);
        this.roster.heard(packet.id, packet.incarnation, from.address, from.port, now);
        break;
      case "msg":
      case "ack":
        // Any packet from a peer's unicast socket proves it alive there;
        // messages and acks are then handled by the messaging layer.
        this.roster.heard(packet.id, packet.incarnation, from.address, from.port, now);
        break;
    }
    return undefined;
  }

  /**
   * Does whatever is due at `now`: announces, delayed replies, probes,
   * expiry. `late` is how long after the time {@link pollTimeout} asked for
   * the driver's wake-up came: a probe's deadline does not count time this
   * node's event loop was not there to read the answer (see
   * {@link Roster.tick}).
   */
  handleTimeout(now: number, late = 0): void {
    if (this.#stopped) return;
    this.#now = now;
    if (this.#nextAnnounce !== undefined && now >= this.#nextAnnounce) {
      this.#announce();
      this.#nextAnnounce = this.#burst.shift() ??
        Math.max(now, this.#nextAnnounce) + announceDelay(this.announceIntervalMs, this.#random());
    }
    if (this.#nextReply <= now) {
      const due = this.#replies.filter((r) => r.at <= now);
      this.#setReplies(this.#replies.filter((r) => r.at > now));
      if (due.length > 0) {
        const reply = this.#helloBytes(true);
        for (const r of due) this.#send("unicast", r.to, reply, "hello");
      }
    }
    const { probes, events } = this.roster.tick(now, late);
    for (const probe of probes) {
      const ping = encodePacket({
        kind: "ping",
        id: this.self.id,
        incarnation: this.self.incarnation,
        nonce: probe.nonce,
      });
      for (const a of probe.addresses) {
        this.#send("unicast", a, ping, "ping");
        this.#awaiting.set(a.address, {
          id: probe.peer.id,
          nonce: probe.nonce,
          examined: 0,
          flooded: false,
          to: { address: a.address, port: a.port },
          ping,
          sentAt: now,
          pings: 1,
        });
      }
      this.#counters.probesSent++;
    }
    const timeout = this.roster.probeTimeoutMs;
    for (const [address, a] of this.#awaiting) {
      if (!this.#stillAwaited(a)) {
        this.#awaiting.delete(address);
        continue;
      }
      const plan = pingPlan(a, timeout);
      if (a.pings < plan.max && plan.nextAt <= now) {
        this.#send("unicast", a.to, a.ping, "ping");
        // Each ping's pong gets its own look past the rate limit: under a
        // flood the first pong may have been dropped by a full socket buffer.
        a.examined = 0;
        a.pings++;
        a.sentAt = now;
      }
    }
    for (const event of events) this.#emit(event);
  }

  /**
   * The probe awaiting a pong from `address` at `now`, if any (until the
   * roster has decided it, see {@link Discovery.handleTimeout}). A peer that
   * is alive answers it with the probe's random nonce, which a host that did
   * not see the ping cannot guess: the driver lets such a pong through a
   * flood that spends the address's rate limit (someone else sending junk
   * under the peer's address), so that the flood cannot evict the peer.
   */
  awaitedPong(address: string, _now: number): AwaitedPong | undefined {
    const a = this.#awaiting.get(address);
    if (a && !this.#stillAwaited(a)) {
      this.#awaiting.delete(address);
      return undefined;
    }
    return a;
  }

  /**
   * Whether the probe `a` is for is still open: its peer still probed with
   * its nonce. Not a fixed time: a pong read after the probe's deadline but
   * before the roster looked (the loop was busy reading, its timer late) is
   * still the answer, and the roster, told how late it looked, takes it.
   */
  #stillAwaited(a: AwaitedPong): boolean {
    const peer = this.roster.get(a.id);
    return peer !== undefined && peer.state === "probing" && peer.probeNonce === a.nonce;
  }

  /** The next time {@link handleTimeout} must be called, if any. */
  pollTimeout(): number | undefined {
    if (this.#stopped) return undefined;
    let next = this.#nextAnnounce ?? Infinity;
    if (this.#nextReply < next) next = this.#nextReply;
    const roster = this.roster.nextDeadline();
    if (roster !== undefined && roster < next) next = roster;
    // Pings still to repeat (only while peers are being probed: few, if any).
    const timeout = this.roster.probeTimeoutMs;
    for (const a of this.#awaiting.values()) {
      const plan = pingPlan(a, timeout);
      if (a.pings < plan.max && plan.nextAt < next) next = plan.nextAt;
    }
    return next === Infinity ? undefined : next;
  }

  /** Datagrams to send, oldest first; the queue is emptied. */
  drainTransmits(): readonly Transmit[] {
    const out = this.#transmits;
    if (out.length === 0) return NOTHING;
    this.#transmits = [];
    return out;
  }

  /** Roster events since the last call; the queue is emptied. */
  drainEvents(): readonly RosterEvent[] {
    const out = this.#events;
    if (out.length === 0) return NOTHING;
    this.#events = [];
    return out;
  }

  /**
   * Says goodbye on every broadcast target and to every static peer, then
   * stops: no further announces or probes.
   */
  shutdown(): void {
    if (this.#stopped) return;
    const bye = this.#signed(encodePacket({ kind: "goodbye", id: this.self.id, incarnation: this.self.incarnation }));
    for (const t of this.#broadcastTargets) this.#send("broadcast", t, bye, "goodbye");
    for (const t of this.#staticPeers) this.#send("unicast", t, bye, "goodbye");
    this.#stopped = true;
    this.#nextAnnounce = undefined;
    this.#setReplies([]);
  }

  /** Warnings worth one log line per sender (e.g. another protocol version). */
  shouldWarnOnce(key: string): boolean {
    if (this.#warned.has(key)) return false;
    if (this.#warned.size > 1000) this.#warned.clear();
    this.#warned.add(key);
    return true;
  }

  #onHello(hello: Hello, from: Endpoint, now: number): void {
    // On a LAN big enough to scale the interval, no peer is expected more
    // often than this node announces (see Roster.observe).
    const own = this.announceIntervalMs;
    const obs = this.roster.observe(hello, from.address, now, own > this.intervalMs ? own : 0);
    if (obs.outcome === "full") {
      this.#counters.dropped["roster-full"]++;
      return;
    }
    if (obs.outcome === "ignored") {
      if (obs.peer) this.#counters.dropped["stale-incarnation"]++;
      return;
    }
    if (obs.peer && hello.sentAt !== undefined && this.#wall) {
      obs.peer.clockOffset = hello.sentAt - Math.round(this.#wall(now));
    }
    if (obs.peer && (obs.peer.presence !== hello.presence || obs.peer.note !== hello.note)) {
      obs.peer.presence = hello.presence;
      obs.peer.note = hello.note;
      // A joining or restarting peer's state comes with that event; a change later is its own.
      if (obs.outcome === "refreshed") this.#events.push({ type: "presence", peer: obs.peer });
    }
    if (obs.event) this.#emit(obs.event);
    if ((obs.outcome === "joined" || obs.outcome === "restarted") && !hello.reply) {
      const to = { address: from.address, port: hello.port };
      if (this.#replies.some((r) => r.peerId === hello.id)) return;
      const delay = replyDelay(this.roster.size, this.#random());
      if (delay === 0) {
        this.#send("unicast", to, this.#helloBytes(true), "hello");
      } else {
        this.#replies.push({ at: now + delay, peerId: hello.id, to });
        if (now + delay < this.#nextReply) this.#nextReply = now + delay;
      }
    }
  }

  /**
   * Sets this node's presence and announces it at once (not at the next
   * interval): every peer's roster shows it within a datagram's time.
   */
  setPresence(presence: "online" | "away" | "busy", note: string | undefined, now: number): void {
    this.#now = now;
    this.self.presence = presence === "online" ? undefined : presence;
    this.self.note = presence === "online" ? undefined : note || undefined;
    this.self.presenceChanges = (this.self.presenceChanges ?? 0) + 1;
    this.#announce();
  }

  #announce(): void {
    const hello = this.#helloBytes(false);
    for (const t of this.#broadcastTargets) this.#send("broadcast", t, hello, "hello");
    for (const t of this.#staticPeers) this.#send("unicast", t, hello, "hello");
  }

  /** This node's hello, signed when there is a signer (signatures reused while the hello is unchanged). */
  #helloBytes(reply: boolean): Uint8Array {
    return this.#signed(encodePacket(this.#hello(reply)));
  }

  #signed(unsigned: Uint8Array): Uint8Array {
    // Each hello carries its send time, so each is signed afresh (~30 µs).
    return this.#signer ? appendSignature(unsigned, this.#signer.publicKey, this.#signer.sign) : unsigned;
  }

  #hello(reply: boolean): Hello {
    const s = this.self;
    return {
      kind: "hello",
      id: s.id,
      incarnation: s.incarnation,
      name: s.name,
      hostname: s.hostname,
      port: s.port,
      httpPort: s.httpPort,
      version: s.version,
      interval: this.announceIntervalMs,
      reply,
      ...(s.presence ? { presence: s.presence, ...(s.note ? { note: s.note } : {}) } : {}),
      ...(this.#wall ? { sentAt: Math.round(this.#wall(this.#now)) } : {}),
    };
  }

  #send(via: Via, to: Endpoint, bytes: Uint8Array, kind: Packet["kind"]): void {
    this.#counters.datagramsOut++;
    this.#counters.bytesOut += bytes.length;
    this.#transmits.push({ via, to, bytes, kind });
  }

  #emit(event: RosterEvent): void {
    if (event.type === "joined") this.#counters.peersJoined++;
    else if (event.type === "restarted") this.#counters.peersRestarted++;
    else if (event.type === "left") this.#counters.peersLeft[event.reason]++;
    this.#events.push(event);
  }

  #setReplies(replies: PendingReply[]): void {
    this.#replies = replies;
    let next = Infinity;
    for (const r of replies) if (r.at < next) next = r.at;
    this.#nextReply = next;
  }
}
