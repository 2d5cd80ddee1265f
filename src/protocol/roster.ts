/**
 * The peer table as a pure state machine. Time is always passed in (`now`,
 * monotonic milliseconds); nothing here reads a clock, opens a socket or
 * sets a timer, so a test can drive hours of peer life in microseconds.
 *
 * Life of a peer:
 * - a hello from an unknown id → **joined**;
 * - a hello from a known id → refreshed (same incarnation) or **restarted**
 *   (higher incarnation); a lower incarnation is a stale datagram and ignored;
 * - silent for {@link STALE_INTERVALS} of its advertised intervals → a probe
 *   is due (state `probing`); any packet from it makes it `alive` again;
 * - no answer within the probe timeout → **left** with reason `timeout`;
 *   the timeout counts only time this node's event loop was there to read
 *   the answer: the driver says how late each wake-up came
 *   ({@link Roster.tick}'s `late`), the deadline of every probe in flight
 *   moves by that much, and a check that came late itself never removes a
 *   peer but looks again shortly after (see {@link LATE_TOLERANCE_MS}, at
 *   most {@link MAX_PROBE_SLACK_FACTOR} timeouts in all);
 * - a goodbye → **left** with reason `goodbye`, at once.
 *
 * A peer that said goodbye leaves a tombstone for a while so that a late
 * datagram of the incarnation that said goodbye does not bring it back as a
 * ghost.
 *
 * @module
 */
import TinyQueue from "tinyqueue";
import type { Hello } from "../wire/mod.ts";
import { prefix64 } from "./prefix64.ts";

/**
 * A wake-up in the deadline queue: for `peer` (or the tombstone of `id`) at
 * `at`. Entries are never moved: one may be early (the peer was heard since),
 * and is then re-queued at the real deadline when it comes up, so a refresh
 * costs no queue operation at all. The entry holds the peer itself so that an
 * early one is re-queued without a lookup (with 1,000 peers that is most of
 * the wake-ups); a peer that left since is found out when it comes due.
 */
interface Wake {
  at: number;
  id: string;
  peer: Peer | undefined;
  /** The peer's {@link Peer.wakeGen} when queued: an older one was superseded by {@link Roster.check}. */
  gen?: number;
}

/**
 * Wake-ups bucketed by time: deadlines sit on a grid (see {@link coalesce}),
 * so many share a bucket; queuing one is an array push, and the ordered
 * queue holds only the distinct times.
 */
class WakeQueue {
  #buckets = new Map<number, Wake[]>();
  #times = new TinyQueue<number>();

  push(wake: Wake): void {
    const bucket = this.#buckets.get(wake.at);
    if (bucket) bucket.push(wake);
    else {
      this.#buckets.set(wake.at, [wake]);
      this.#times.push(wake.at);
    }
  }

  /** The earliest time with a wake-up queued. */
  peekTime(): number | undefined {
    return this.#times.peek();
  }

  /** Takes every wake-up of the earliest time. */
  popBucket(): Wake[] {
    const at = this.#times.pop()!;
    const bucket = this.#buckets.get(at)!;
    this.#buckets.delete(at);
    return bucket;
  }
}

/** A peer is probed after being silent for this many of its own intervals. */
export const STALE_INTERVALS = 3;
/** Default bound on the roster. */
export const DEFAULT_MAX_PEERS = 1024;
/** Most distinct node ids one source address may have in the roster (a flood of random ids from one host stops here). */
export const MAX_PEERS_PER_ADDRESS = 16;
/**
 * Share of the roster (of `maxPeers`) that peers first heard in one IPv6 /64
 * may hold: a host picks addresses in its /64 at will, so the per-address
 * cap alone does not stop one host filling the roster over IPv6.
 */
export const MAX_SHARE_PER_PREFIX64 = 1 / 4;
/**
 * Longest announce interval a peer is taken at until it has answered one of
 * our probes (a pong with the probe's random nonce): a peer that never
 * answers is probed and gone within 3 of these, whatever its hellos claim.
 */
export const MAX_UNVERIFIED_INTERVAL_MS = 60_000;
/** Default time to wait for a pong before declaring a probed peer gone. */
export const DEFAULT_PROBE_TIMEOUT_MS = 500;
/**
 * A wake-up later than this (ms) means this node's event loop was busy or
 * starved (a flood, a CPU hog): answers may sit unread in the socket buffer
 * or have been dropped there. Below it is timer jitter.
 */
export const LATE_TOLERANCE_MS = 5;
/** After a late check, a probe that is due is looked at again this much later (answers queued meanwhile are read first). */
export const LATE_RECHECK_MS = 20;
/** A probe's deadline moves for lateness by at most this many probe timeouts in all: a dead peer still leaves. */
export const MAX_PROBE_SLACK_FACTOR = 4;

/** One address a peer was heard on, with the port to reach it there. */
export interface PeerAddress {
  address: string;
  port: number;
  lastSeen: number;
}

export type PeerState = "alive" | "probing";

/** A peer as the roster knows it. Times are monotonic ms as passed in. */
export interface Peer {
  id: string;
  name: string;
  hostname: string;
  incarnation: number;
  version: string;
  httpPort: number;
  /** The peer's announce interval in ms. */
  interval: number;
  firstSeen: number;
  lastSeen: number;
  state: PeerState;
  /** Addresses it was heard on, most recently heard first. */
  addresses: PeerAddress[];
  /** When the current probe was sent, if probing. */
  probeSentAt?: number;
  /** When the current probe times out: its timeout after it was sent, plus the slack. */
  probeDeadline?: number;
  /** How far the current probe's deadline was moved because this node's loop was late. */
  probeSlack?: number;
  /** Nonce of the current probe, if probing. */
  probeNonce?: number;
  /**
   * How far ahead of this host's clock the peer's clock is, in ms (negative:
   * behind), from the send time in its last hello; undefined for versions
   * that do not send it. On a LAN the transit time is well under a
   * millisecond, so this is the clocks' difference.
   */
  clockOffset?: number;
  /** What its last hello said: online (absent), away or busy, and a note. */
  presence?: "away" | "busy";
  note?: string;
  /**
   * A peer that speaks end-to-end sends its note apart from its hello (see
   * wire `Note`): a state its hello says that waits here for that note, or
   * for its next hello if the note was lost.
   */
  pendingPresence?: "away" | "busy";
  /** A note that came before the hello announcing its state (they travel on different sockets): taken with that hello. */
  noteAhead?: { presence: "away" | "busy"; note?: string };
  /** Its X25519 static key (`nk`, base64url) from its signed hello; absent for a version before end-to-end encryption. */
  staticKey?: string;
  /** It answered our probe (a pong with its nonce): its advertised interval is trusted beyond {@link MAX_UNVERIFIED_INTERVAL_MS}. */
  verified?: boolean;
  /** Its hellos say it runs the failure detector (`fd`): it relays indirect probes and refutes suspicions. */
  failureDetector?: boolean;
  /** Bumped when {@link Roster.check} queues a wake-up of its own: older wake-ups of the peer are dropped. */
  wakeGen?: number;
}

export type LeaveReason = "goodbye" | "timeout";

/** What a roster input changed. */
export type RosterEvent =
  | { type: "joined"; peer: Peer }
  | { type: "restarted"; peer: Peer; previousIncarnation: number }
  | { type: "left"; peer: Peer; reason: LeaveReason }
  /** Its hellos now say another state or note (away, busy, back online). */
  | { type: "presence"; peer: Peer };

/** The result of observing a hello. */
export interface Observation {
  /** joined / restarted / refreshed; ignored for a stale incarnation; full when the roster (or the address's share) is full. */
  outcome: "joined" | "restarted" | "refreshed" | "ignored" | "full";
  peer?: Peer;
  event?: RosterEvent;
}

/** A probe the caller must send: a ping with this nonce to each address. */
export interface ProbeRequest {
  peer: Peer;
  nonce: number;
  addresses: PeerAddress[];
}

/** What {@link Roster.tick} asks of the caller. */
export interface TickResult {
  probes: ProbeRequest[];
  events: RosterEvent[];
}

/**
 * When a peer heard at `lastSeen` with announce interval `interval` becomes
 * stale and must be probed.
 */
export function staleAt(lastSeen: number, interval: number): number {
  return lastSeen + STALE_INTERVALS * interval;
}

/** Staleness is checked on a grid of this fraction of a peer's interval. */
export const DEADLINE_GRID_FRACTION = 8;

/**
 * Rounds a staleness deadline up to the grid of 1/8 of the interval, so that
 * peers going stale at nearly the same time are checked in one wake-up: with
 * 1,000 peers a daemon wakes a few times a second at most, not once per peer.
 * A silent peer is probed at most an eighth of an interval late.
 */
export function coalesce(at: number, interval: number): number {
  const grid = Math.max(1, interval / DEADLINE_GRID_FRACTION);
  return Math.ceil(at / grid) * grid;
}

export interface RosterOptions {
  /** This node's id: packets claiming it are never added. */
  selfId: string;
  /** How long to wait for a pong. Default {@link DEFAULT_PROBE_TIMEOUT_MS}. */
  probeTimeoutMs?: number;
  /** Most peers. Default {@link DEFAULT_MAX_PEERS}. */
  maxPeers?: number;
  /**
   * Peers of another protocol (IP Messenger) counted against the same
   * bounds: {@link maxPeers} in all, {@link MAX_PEERS_PER_ADDRESS} per address.
   */
  others?: { count(): number; countAt(address: string): number };
  /**
   * Probe nonces (32 bits). Random by default, so that a host that does not
   * see the ping cannot forge its pong (the daemon lets a pong that answers
   * its own ping through a flood that spends its sender's rate limit).
   */
  nonce?: () => number;
}

/** 32 random bits. */
export function randomNonce(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/** The peer table. See the module documentation for the life cycle. */
export class Roster {
  readonly selfId: string;
  readonly probeTimeoutMs: number;
  readonly maxPeers: number;
  /** Most peers first heard in one IPv6 /64: {@link MAX_SHARE_PER_PREFIX64} of {@link maxPeers}, at least {@link MAX_PEERS_PER_ADDRESS}. */
  readonly maxPerPrefix64: number;
  #peers = new Map<string, Peer>();
  /** address → ids first heard there. */
  #byAddress = new Map<string, Set<string>>();
  /** IPv6 /64 → ids first heard in it. */
  #byPrefix = new Map<string, Set<string>>();
  /** id → [incarnation that left, until when the tombstone holds]. */
  #tombstones = new Map<string, { incarnation: number; until: number }>();
  #nonce: () => number;
  #wakes = new WakeQueue();
  /** The earliest wake-up queued (Infinity if none), read on every poll without touching the queue. */
  #earliest = Infinity;
  /** Bumped on every change, so callers can cache serialized views. */
  #version = 0;
  #others: RosterOptions["others"];
  /** Peers being probed now (few, if any): the ones whose deadline a late wake-up moves. */
  #probing = new Set<Peer>();

  constructor(options: RosterOptions) {
    this.selfId = options.selfId;
    this.probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.maxPeers = options.maxPeers ?? DEFAULT_MAX_PEERS;
    this.maxPerPrefix64 = Math.max(MAX_PEERS_PER_ADDRESS, Math.floor(this.maxPeers * MAX_SHARE_PER_PREFIX64));
    this.#others = options.others;
    this.#nonce = options.nonce ?? randomNonce;
  }

  /** Peers first heard at `address` now. */
  countAt(address: string): number {
    return this.#byAddress.get(address)?.size ?? 0;
  }

  /** Number of peers. */
  get size(): number {
    return this.#peers.size;
  }

  /** A counter bumped on every change of membership, state or address. */
  get version(): number {
    return this.#version;
  }

  /** A peer by id. */
  get(id: string): Peer | undefined {
    return this.#peers.get(id);
  }

  /** All peers, in no particular order. */
  peers(): Peer[] {
    return [...this.#peers.values()];
  }

  /**
   * Records a hello heard from `address`. The peer's unicast port comes from
   * the hello, not from the datagram's source port (broadcasts are sent from
   * the shared discovery port).
   */
  observe(hello: Hello, address: string, now: number, minInterval = 0): Observation {
    if (hello.id === this.selfId) return { outcome: "ignored" };
    // A newcomer on a big LAN announces its short start-up interval before it
    // knows how big the LAN is; the caller's floor keeps it from being
    // probed by every host before its next (longer) announce.
    const known = this.#peers.get(hello.id);
    const advertised = known?.verified ? hello.interval : Math.min(hello.interval, MAX_UNVERIFIED_INTERVAL_MS);
    const interval = Math.max(advertised, minInterval);
    const tomb = this.#tombstones.get(hello.id);
    if (tomb) {
      if (tomb.until > now && hello.incarnation <= tomb.incarnation) {
        return { outcome: "ignored" };
      }
      this.#tombstones.delete(hello.id);
    }
    if (!known) {
      // Bounded: a full roster takes no newcomer (peers in it are never
      // evicted for one); nor does an address that already has its share.
      const fromHere = this.#byAddress.get(address);
      const prefix = prefix64(address);
      const inPrefix = prefix === undefined ? undefined : this.#byPrefix.get(prefix);
      const others = this.#others;
      if (
        this.#peers.size + (others?.count() ?? 0) >= this.maxPeers ||
        (fromHere?.size ?? 0) + (others?.countAt(address) ?? 0) >= MAX_PEERS_PER_ADDRESS ||
        (inPrefix?.size ?? 0) >= this.maxPerPrefix64
      ) {
        return { outcome: "full" };
      }
      const peer: Peer = {
        id: hello.id,
        name: hello.name,
        hostname: hello.hostname,
        incarnation: hello.incarnation,
        version: hello.version,
        httpPort: hello.httpPort,
        interval,
        firstSeen: now,
        lastSeen: now,
        state: "alive",
        addresses: [{ address, port: hello.port, lastSeen: now }],
        ...(hello.failureDetector ? { failureDetector: true } : {}),
      };
      this.#peers.set(peer.id, peer);
      if (fromHere) fromHere.add(peer.id);
      else this.#byAddress.set(address, new Set([peer.id]));
      if (inPrefix) inPrefix.add(peer.id);
      else if (prefix !== undefined) this.#byPrefix.set(prefix, new Set([peer.id]));
      this.#queue({ at: this.#due(peer), id: peer.id, peer });
      this.#version++;
      const event: RosterEvent = { type: "joined", peer };
      return { outcome: "joined", peer, event };
    }
    if (hello.incarnation < known.incarnation) return { outcome: "ignored", peer: known };
    const restarted = hello.incarnation > known.incarnation;
    // A shorter interval brings the deadline forward: queue a wake-up for it.
    const sooner = interval < known.interval;
    const previousIncarnation = known.incarnation;
    // The common case, a refresh that changes nothing, writes only times.
    if (
      restarted || known.name !== hello.name || known.hostname !== hello.hostname ||
      known.version !== hello.version || known.httpPort !== hello.httpPort || known.interval !== interval
    ) {
      this.#version++;
      known.incarnation = hello.incarnation;
      known.name = hello.name;
      known.hostname = hello.hostname;
      known.version = hello.version;
      known.httpPort = hello.httpPort;
      known.interval = interval;
    }
    if (restarted) {
      // A restarted node may have new ports; old addresses are stale.
      known.addresses = [];
      known.firstSeen = now;
    }
    known.failureDetector = hello.failureDetector === true;
    this.#touch(known, address, hello.port, now);
    if (sooner) this.#queue({ at: this.#due(known), id: known.id, peer: known, gen: known.wakeGen });
    if (restarted) {
      const event: RosterEvent = { type: "restarted", peer: known, previousIncarnation };
      return { outcome: "restarted", peer: known, event };
    }
    return { outcome: "refreshed", peer: known };
  }

  /**
   * Records any other proof of life (a pong, a ping, later a message) from a
   * known peer at `address`:`port`. Unknown ids and stale incarnations are
   * ignored. Returns the peer when it was known.
   */
  heard(id: string, incarnation: number, address: string, port: number, now: number, nonce?: number): Peer | undefined {
    const peer = this.#peers.get(id);
    if (!peer || incarnation !== peer.incarnation) return undefined;
    // Only a pong carrying our probe's random nonce shows the peer answers (a ping or a message can be sent unasked).
    if (nonce !== undefined && peer.probeNonce !== undefined && nonce >>> 0 === peer.probeNonce) peer.verified = true;
    this.#touch(peer, address, port, now);
    return peer;
  }

  /**
   * Probes `peer` now, whatever its deadline (the failure detector's last
   * check of a suspect): the same probe a silent peer gets, removed with
   * reason `timeout` if it does not answer. Undefined when it is not in the
   * roster or a probe is under way.
   */
  check(peer: Peer, now: number): ProbeRequest | undefined {
    if (this.#peers.get(peer.id) !== peer || peer.state !== "alive" || peer.addresses.length === 0) return undefined;
    const probe = this.#startProbe(peer, now);
    peer.wakeGen = (peer.wakeGen ?? 0) + 1;
    this.#queue({ at: this.#due(peer), id: peer.id, peer, gen: peer.wakeGen });
    return probe;
  }

  /** Removes a peer that said goodbye. Returns the "left" event, if it was known. */
  goodbye(id: string, incarnation: number, now: number): RosterEvent | undefined {
    const peer = this.#peers.get(id);
    if (!peer || incarnation < peer.incarnation) return undefined;
    return this.#remove(peer, "goodbye", now);
  }

  /**
   * Advances the roster to `now`: peers gone stale get a probe (returned for
   * the caller to send), probes past their timeout remove their peer,
   * addresses not heard for 3 intervals are dropped, old tombstones pruned.
   *
   * `late` is how long after the time it asked for (see
   * {@link nextDeadline}) the caller's wake-up came. Past
   * {@link LATE_TOLERANCE_MS} that time was not this node's: every probe in
   * flight gets it added to its deadline, and a probe due now is not ended
   * by this late check but looked at again {@link LATE_RECHECK_MS} later,
   * once what arrived meanwhile has been read (both within the bound of
   * {@link MAX_PROBE_SLACK_FACTOR} timeouts a probe).
   */
  tick(now: number, late = 0): TickResult {
    const probes: ProbeRequest[] = [];
    const events: RosterEvent[] = [];
    const wasLate = late > LATE_TOLERANCE_MS;
    if (wasLate) { for (const peer of this.#probing) this.#widen(peer, late); }
    // Only peers whose wake-up has come are looked at: O(due · log n), not O(n).
    while ((this.#wakes.peekTime() ?? Infinity) <= now) {
      for (const wake of this.#wakes.popBucket()) this.#wake(wake, now, wasLate, probes, events);
    }
    this.#earliest = this.#wakes.peekTime() ?? Infinity;
    return { probes, events };
  }

  #queue(wake: Wake): void {
    this.#wakes.push(wake);
    if (wake.at < this.#earliest) this.#earliest = wake.at;
  }

  /** Moves a probe's deadline `by` ms later, within its bound; false when the bound is reached. */
  #widen(peer: Peer, by: number): boolean {
    const room = MAX_PROBE_SLACK_FACTOR * this.probeTimeoutMs - peer.probeSlack!;
    if (room <= 0 || by <= 0) return false;
    const add = Math.min(by, room);
    peer.probeDeadline! += add;
    peer.probeSlack! += add;
    return true;
  }

  #wake(wake: Wake, now: number, wasLate: boolean, probes: ProbeRequest[], events: RosterEvent[]): void {
    const peer = wake.peer;
    if (!peer) {
      const tomb = this.#tombstones.get(wake.id);
      if (tomb && tomb.until <= now) this.#tombstones.delete(wake.id);
      return;
    }
    if ((wake.gen ?? 0) !== (peer.wakeGen ?? 0)) return; // superseded by a check's own wake-up
    const due = this.#due(peer);
    if (due > now) {
      // Heard since this wake-up was queued (or left since, and then it comes
      // due within 3 intervals): come back at the real deadline, the same
      // entry moved (a roster of 1,000 does this ~17 times a second).
      wake.at = due;
      this.#wakes.push(wake);
      return;
    }
    if (this.#peers.get(wake.id) !== peer) return; // left (and maybe rejoined) since: a stale wake-up
    if (peer.state === "probing") {
      // This check came late: what the peer sent meanwhile may be unread yet.
      if (wasLate && this.#widen(peer, now + LATE_RECHECK_MS - peer.probeDeadline!)) {
        wake.at = this.#due(peer);
        this.#wakes.push(wake);
        return;
      }
      events.push(this.#remove(peer, "timeout", now));
      return;
    }
    if (now >= staleAt(peer.lastSeen, peer.interval)) {
      probes.push(this.#startProbe(peer, now));
    } else {
      // A peer alive on one address forgets addresses it left (changed IP).
      const before = peer.addresses.length;
      peer.addresses = peer.addresses.filter((a) => now < staleAt(a.lastSeen, peer.interval));
      if (peer.addresses.length !== before) this.#version++;
    }
    this.#wakes.push({ at: this.#due(peer), id: peer.id, peer, gen: peer.wakeGen });
  }

  #startProbe(peer: Peer, now: number): ProbeRequest {
    peer.state = "probing";
    peer.probeSentAt = now;
    peer.probeDeadline = now + this.probeTimeoutMs;
    peer.probeSlack = 0;
    this.#probing.add(peer);
    peer.probeNonce = this.#nonce() >>> 0;
    this.#version++;
    return { peer, nonce: peer.probeNonce, addresses: [...peer.addresses] };
  }

  /** The earliest time at which {@link tick} may have something to do, if any (O(1)). */
  nextDeadline(): number | undefined {
    return this.#earliest === Infinity ? undefined : this.#earliest;
  }

  /**
   * When a peer next needs attention: its probe's timeout while probing,
   * else when its oldest address goes stale.
   */
  #due(peer: Peer): number {
    if (peer.state === "probing") return peer.probeDeadline!;
    let oldest = Infinity;
    for (const a of peer.addresses) if (a.lastSeen < oldest) oldest = a.lastSeen;
    return coalesce(staleAt(oldest === Infinity ? peer.lastSeen : oldest, peer.interval), peer.interval);
  }

  #touch(peer: Peer, address: string, port: number, now: number): void {
    peer.lastSeen = now;
    if (peer.state !== "alive") {
      this.#version++;
      peer.state = "alive";
      delete peer.probeSentAt;
      delete peer.probeNonce;
      delete peer.probeDeadline;
      delete peer.probeSlack;
      this.#probing.delete(peer);
    }
    const first = peer.addresses[0];
    if (first?.address === address && first.port === port) {
      // The common case, a refresh from where it was heard last: no allocation.
      first.lastSeen = now;
      return;
    }
    const i = peer.addresses.findIndex((a) => a.address === address);
    if (i >= 0) {
      const a = peer.addresses[i]!;
      if (a.port !== port) this.#version++;
      peer.addresses.splice(i, 1);
      peer.addresses.unshift({ address, port, lastSeen: now });
    } else {
      peer.addresses.unshift({ address, port, lastSeen: now });
      this.#version++;
    }
  }

  #remove(peer: Peer, reason: LeaveReason, now: number): RosterEvent {
    this.#peers.delete(peer.id);
    this.#probing.delete(peer);
    for (const [address, ids] of this.#byAddress) {
      if (ids.delete(peer.id) && ids.size === 0) this.#byAddress.delete(address);
    }
    for (const [prefix, ids] of this.#byPrefix) {
      if (ids.delete(peer.id) && ids.size === 0) this.#byPrefix.delete(prefix);
    }
    // Only a goodbye leaves a tombstone: a peer that timed out (a cut cable)
    // must be able to rejoin with the same incarnation the moment it is heard.
    if (reason === "goodbye") {
      const until = now + STALE_INTERVALS * peer.interval;
      this.#tombstones.set(peer.id, { incarnation: peer.incarnation, until });
      this.#queue({ at: until, id: peer.id, peer: undefined });
    }
    this.#version++;
    return { type: "left", peer, reason };
  }
}
