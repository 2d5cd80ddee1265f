/**
 * The discovery protocol as a sans-I/O state machine: the announce schedule,
 * answers to newcomers, probes of silent peers and goodbyes. It never reads a
 * clock or touches a socket: the driver (the daemon, or a simulator) feeds it
 * datagrams and the time, asks {@link Discovery.pollTimeout} when to wake it
 * next, and sends what {@link Discovery.drainTransmits} returns.
 *
 * Here: taking datagrams (the admission hook, hellos into the roster with
 * presence and clock offset, pings answered, goodbyes), the timers and the
 * counters. Beside it: `discovery_schedule.ts` (when to announce and when to
 * answer a newcomer), `discovery_probes.ts` (pings to silent peers and the
 * pongs awaited), `discovery_hello.ts` (this node's hello and goodbye, signed).
 *
 * @module
 */
import {
  decodePacket,
  type DecodeResult,
  DROP_REASONS,
  type DropReason,
  encodePacket,
  type Goodbye,
  type Hello,
  type Note,
  type Packet,
  PacketType,
  type Suspect,
} from "../wire/mod.ts";
import { type LeaveReason, randomNonce, Roster, type RosterEvent, type RosterOptions } from "./roster.ts";
import type { Endpoint, Transmit, Via } from "./transmit.ts";
import {
  announceDelay,
  DEFAULT_ANNOUNCE_BUDGET,
  DEFAULT_INTERVAL_MS,
  NewcomerReplies,
  replyDelay,
  scaledInterval,
  STARTUP_BURST_MS,
} from "./discovery_schedule.ts";
import { noteOf, presenceOf } from "./discovery_presence.ts";
import { goodbyeBytes, helloOf, type SelfInfo, signed, type Signer } from "./discovery_hello.ts";
import { type AwaitedPong, DETECTOR_PINGS_PER_PROBE, Probes } from "./discovery_probes.ts";
import { CHECK_INTERVALS, Reachability } from "./reachability.ts";
import { type DetectorCounters, FailureDetector, PROBE_PERIOD_MS, zeroDetectorCounters } from "./failure_detector.ts";

export type { Endpoint, Transmit, Via } from "./transmit.ts";
export {
  announceDelay,
  DEFAULT_ANNOUNCE_BUDGET,
  DEFAULT_INTERVAL_MS,
  INSTANT_REPLY_MAX_PEERS,
  MAX_REPLY_WINDOW_MS,
  replyDelay,
  scaledInterval,
  STARTUP_BURST_MS,
} from "./discovery_schedule.ts";
export type { SelfInfo } from "./discovery_hello.ts";
export { type AwaitedPong, FLOODED_PINGS_PER_PROBE, PINGS_PER_PROBE } from "./discovery_probes.ts";

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
  signer?: Signer;
  /**
   * Decides whether a received hello or goodbye may reach the roster (the
   * daemon checks its signature and the pinned key here). A reason refuses
   * it: counted and dropped.
   */
  admit?: (packet: Hello | Goodbye | Suspect, from: Endpoint) => { reason: DropReason; detail: string } | undefined;
  /**
   * Run the failure detector (failure_detector.ts). The daemon and the
   * simulator do; without it (the default, kept for the unit tests of the
   * announce and probe schedules) this behaves as a version before it: no
   * `fd` in hellos, its packets dropped as an unknown type.
   */
  failureDetector?: boolean;
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
  /** Pings to peers heard only by their hellos, asking whether they hear us (see reachability.ts). */
  checksSent: number;
  /** The failure detector's (failure_detector.ts). */
  detector: DetectorCounters;
  /** Peers removed by the last check of a suspicion (also counted in peersLeft.timeout). */
  removedAfterSuspicion: number;
}

/**
 * Share of the announce budget hellos may take: the rest is left to the
 * failure detector (about six datagrams a second per host, more while a
 * suspicion is settled) and to replies.
 */
export const HELLO_SHARE = 0.8;

/** What the drain methods return when there is nothing: no allocation per call on the hot path. */
const NOTHING: readonly never[] = Object.freeze([]);

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
  #replies = new NewcomerReplies();
  /** A lower incarnation's hello per peer id, ignored while the higher one is listed (a restart from a backup). */
  #lowerHellos = new Map<string, { hello: Hello; from: Endpoint; at: number }>();
  #transmits: Transmit[] = [];
  #events: RosterEvent[] = [];
  #warned = new Set<string>();
  #stopped = false;
  #signer: DiscoveryOptions["signer"];
  #admit: DiscoveryOptions["admit"];
  #wall: ((now: number) => number) | undefined;
  /** The latest time this machine was told (stamps hellos sent from setTargets). */
  #now = 0;
  #probes: Probes;
  /** Whether each peer hears us, not only we it (reachability.ts), for `lanchat doctor`. */
  readonly reach = new Reachability();
  #nextCheck = 0;
  readonly detector: FailureDetector | undefined;
  /** Suspects whose last check is under way: a removal of one is counted as found by the detector. */
  #checking = new Set<string>();

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
    this.#probes = new Probes(this.roster, this.self, (to, ping) => this.#send("unicast", to, ping, "ping"));
    if (options.failureDetector === true) {
      this.self.failureDetector = true;
      this.#probes.pings = DETECTOR_PINGS_PER_PROBE;
      this.detector = new FailureDetector(this.roster, this.self, {
        ping: (to, nonce) =>
          this.#send(
            "unicast",
            to,
            encodePacket({ kind: "ping", id: this.#selfId, incarnation: this.self.incarnation, nonce }),
            "ping",
          ),
        unicast: (to, packet) => this.#send("unicast", to, encodePacket(packet), packet.kind),
        suspect: (packet) => {
          const bytes = signed(encodePacket(packet), this.#signer);
          for (const t of this.#broadcastTargets) this.#send("broadcast", t, bytes, "suspect");
          for (const t of this.#staticPeers) this.#send("unicast", t, bytes, "suspect");
        },
        refute: () => this.#announce(),
        check: (peer, now) => {
          const probe = this.roster.check(peer, now);
          if (!probe) return;
          this.#checking.add(peer.id);
          this.#counters.probesSent += this.#probes.start([probe], now);
        },
        nonce: () => randomNonce(),
        random: () => this.#random(),
      });
    }
    this.#counters = {
      datagramsIn: 0,
      datagramsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
      received: Object.fromEntries(Object.keys(PacketType).map((k) => [k, 0])) as Record<Packet["kind"], number>,
      peersJoined: 0,
      peersRestarted: 0,
      peersLeft: { goodbye: 0, timeout: 0 },
      probesSent: 0,
      checksSent: 0,
      detector: this.detector?.counters ?? zeroDetectorCounters(),
      removedAfterSuspicion: 0,
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
    return scaledInterval(this.intervalMs, this.roster.size, this.announceBudget * (this.detector ? HELLO_SHARE : 1));
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
    this.detector?.start(now);
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
    if (!this.detector && (packet.kind === "suspect" || packet.kind === "preq" || packet.kind === "pack")) {
      // A version before the failure detector does not know these types.
      this.#counters.dropped["unknown-type"]++;
      return { ok: false, reason: "unknown-type", detail: `packet type ${packet.kind}` };
    }
    if (this.#admit && (packet.kind === "hello" || packet.kind === "goodbye" || packet.kind === "suspect")) {
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
        this.#replies.cancel(packet.id);
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
        this.#probes.answered(from.address, packet.id);
        this.roster.heard(packet.id, packet.incarnation, from.address, from.port, now, packet.nonce);
        this.detector?.pong(packet.id, packet.incarnation, packet.nonce, now);
        break;
      case "suspect":
        this.detector?.suspect(packet, now);
        break;
      case "preq":
        this.roster.heard(packet.id, packet.incarnation, from.address, from.port, now);
        this.detector?.preq(packet, from, now);
        break;
      case "pack":
        this.roster.heard(packet.id, packet.incarnation, from.address, from.port, now);
        this.detector?.pack(packet, now);
        break;
      case "msg":
      case "ack":
        // Any packet from a peer's unicast socket proves it alive there;
        // messages and acks are then handled by the messaging layer.
        this.roster.heard(packet.id, packet.incarnation, from.address, from.port, now);
        break;
    }
    // What a peer sends to our unicast socket in answer (a pong, an ack, a
    // message, a note): it hears us. Not a ping: a peer probing us when it
    // no longer hears us sends those too.
    if (
      packet.kind !== "goodbye" && packet.kind !== "ping" && packet.kind !== "suspect" && packet.kind !== "preq" &&
      this.roster.get(packet.id)
    ) {
      this.reach.answered(packet.id, now);
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
    const due = this.#replies.due(now);
    if (due.length > 0) {
      const reply = this.#helloBytes(true);
      for (const r of due) this.#send("unicast", r.to, reply, "hello");
    }
    const { probes, events } = this.roster.tick(now, late);
    this.#counters.probesSent += this.#probes.start(probes, now);
    this.#probes.repeat(now);
    for (const event of events) {
      this.#emit(event);
      // Removed for silence after it announced a lower incarnation (restarted from a backup): that hello joins it.
      const lower = event.type === "left" ? this.#lowerHellos.get(event.peer.id) : undefined;
      if (lower && this.#lowerHellos.delete(event.peer.id) && now - lower.at < 3 * this.announceIntervalMs) {
        this.#onHello(lower.hello, lower.from, now);
      }
    }
    this.detector?.tick(now, late);
    if (now >= this.#nextCheck) this.#check(now);
  }

  /**
   * Check pings to peers heard only by their hellos for a while (see
   * reachability.ts): a sweep at most once an announce interval, on a
   * wake-up that comes anyway (each announce is one), so no timer of its own.
   */
  #check(now: number): void {
    const interval = this.announceIntervalMs;
    this.#nextCheck = now + interval;
    // The failure detector pings every peer once a round (roster × its period) and a pong counts as an
    // answer: check pings go only to peers it has not reached in two rounds, so the traffic is not doubled.
    const round = this.detector ? 2 * this.roster.size * PROBE_PERIOD_MS : 0;
    for (const id of this.reach.due(this.roster.peers(), now, Math.max(CHECK_INTERVALS * interval, round))) {
      const to = this.roster.get(id)?.addresses[0];
      if (!to) continue;
      const nonce = randomNonce();
      const ping = encodePacket({ kind: "ping", id: this.self.id, incarnation: this.self.incarnation, nonce });
      this.#send("unicast", { address: to.address, port: to.port }, ping, "ping");
      this.#counters.checksSent++;
    }
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
    return this.#probes.awaited(address);
  }

  /** The next time {@link handleTimeout} must be called, if any. */
  pollTimeout(): number | undefined {
    if (this.#stopped) return undefined;
    let next = this.#nextAnnounce ?? Infinity;
    if (this.#replies.next < next) next = this.#replies.next;
    const roster = this.roster.nextDeadline();
    if (roster !== undefined && roster < next) next = roster;
    const ping = this.#probes.nextPing();
    if (ping < next) next = ping;
    const detector = this.detector?.nextDeadline() ?? Infinity;
    if (detector < next) next = detector;
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
    const bye = goodbyeBytes(this.self, this.#signer);
    for (const t of this.#broadcastTargets) this.#send("broadcast", t, bye, "goodbye");
    for (const t of this.#staticPeers) this.#send("unicast", t, bye, "goodbye");
    this.#stopped = true;
    this.#nextAnnounce = undefined;
    this.detector?.stop();
    this.#replies.clear();
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
      if (obs.peer && hello.incarnation < obs.peer.incarnation) {
        // Signed and fresh (admitted): kept in case the entry it contradicts is removed (see tick).
        if (this.#lowerHellos.size >= 64) this.#lowerHellos.delete(this.#lowerHellos.keys().next().value!);
        this.#lowerHellos.set(hello.id, { hello, from, at: now });
      }
      return;
    }
    if (obs.peer) {
      this.reach.hello(hello.id, from.address, now);
      // A hello that answers ours (sent to our unicast port): it hears us.
      if (hello.reply) this.reach.answered(hello.id, now);
    }
    if (obs.peer && hello.sentAt !== undefined && this.#wall) {
      obs.peer.clockOffset = hello.sentAt - Math.round(this.#wall(now));
    }
    if (obs.peer) {
      obs.peer.staticKey = hello.staticKey;
      // A joining or restarting peer's state comes with that event; a change later is its own.
      if (presenceOf(obs.peer, hello) && obs.outcome === "refreshed") {
        this.#events.push({ type: "presence", peer: obs.peer });
      }
    }
    if (obs.event) this.#emit(obs.event);
    if ((obs.outcome === "joined" || obs.outcome === "restarted") && !hello.reply) {
      const to = { address: from.address, port: hello.port };
      if (this.#replies.has(hello.id)) return;
      const delay = replyDelay(this.roster.size, this.#random());
      if (delay === 0) {
        this.#send("unicast", to, this.#helloBytes(true), "hello");
      } else {
        this.#replies.add(now + delay, hello.id, to);
      }
    }
  }

  /**
   * A peer's note, received over its end-to-end session: taken when it goes
   * with the state its hellos say (or one waiting for it). Returns why it
   * was not taken, if it was not.
   */
  takeNote(n: Note): string | undefined {
    const peer = this.roster.get(n.id);
    if (!peer || peer.incarnation !== n.incarnation) return "not from a peer in the roster";
    const taken = noteOf(peer, n);
    if (taken === true) this.#events.push({ type: "presence", peer });
    return taken === true ? undefined : taken;
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
    const sentAt = this.#wall ? Math.round(this.#wall(this.#now)) : undefined;
    return signed(encodePacket(helloOf(this.self, this.announceIntervalMs, reply, sentAt)), this.#signer);
  }

  #send(via: Via, to: Endpoint, bytes: Uint8Array, kind: Packet["kind"]): void {
    this.#counters.datagramsOut++;
    this.#counters.bytesOut += bytes.length;
    this.#transmits.push({ via, to, bytes, kind });
  }

  #emit(event: RosterEvent): void {
    if (event.type !== "left") this.#checking.delete(event.peer.id);
    if (event.type === "joined") this.#counters.peersJoined++;
    else if (event.type === "restarted") this.#counters.peersRestarted++;
    else if (event.type === "left") {
      this.#counters.peersLeft[event.reason]++;
      if (this.#checking.delete(event.peer.id) && event.reason === "timeout") this.#counters.removedAfterSuspicion++;
      this.reach.forget(event.peer.id);
    }
    this.#events.push(event);
  }
}
