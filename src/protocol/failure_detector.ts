/**
 * The failure detector (SWIM with a suspicion window, as memberlist does it),
 * sans-I/O and told the time. Announces still find peers and, on a quiet big
 * LAN, come only every 25 s; this finds a crashed peer within seconds at any
 * size for a few datagrams a second per host:
 *
 * - every {@link PROBE_PERIOD_MS} this node pings one peer, round-robin over
 *   a shuffled roster (each is pinged by someone about
 *   1000 / {@link PROBE_PERIOD_MS} times a second, whatever N);
 * - no pong within {@link DIRECT_TIMEOUT_MS}: a second ping, and
 *   {@link INDIRECT_PROBES} peers that run the detector are asked to ping it
 *   for us (`preq`, answered by `pack`: catches a one-way or lossy link);
 * - nothing from it within {@link PROBE_TIMEOUT_MS}: a signed `suspect`
 *   broadcast ({@link SUSPECT_SENDS} times, a second apart, for loss);
 * - every host that takes the suspicion waits {@link SUSPICION_MS} (it
 *   outlasts a 5 s SIGSTOP), then, unless it heard the suspect meanwhile,
 *   pings it itself (the roster's probe: 3 pings over its timeout) and
 *   removes it only if that fails too. A claim alone never removes a peer
 *   that answers; a peer of a previous version, which ignores the new packets,
 *   is judged by that ping like any other;
 * - the suspect, on a suspicion of its current incarnation, refutes it with
 *   its own signed hello, broadcast at once and {@link REFUTE_SENDS} − 1
 *   more times a second apart (a lost refutation is repeated, and the ping
 *   at the window's end still keeps it). Hellos are what every version
 *   takes, and only the node's own key signs them: a node refutes only for
 *   itself, and the incarnation is not bumped (a bump means a restart here).
 *
 * Hardened against what a hostile tester found (issue 29):
 * - local health (Lifeguard's idea): a node that got no answer to any of its
 *   pings (a pong or a `pack` from anyone) within {@link LOCAL_HEALTH_MS}
 *   doubts its own link and raises no suspicion: a host whose unicast
 *   inbound is firewalled no longer accuses one live peer after another. A
 *   node whose only peer died still got that peer's pongs a probe earlier,
 *   so it suspects it; after that, announce expiry is the fallback;
 * - a pong (or relayed pong) counts only from the incarnation probed: a
 *   process restarted with a lower incarnation does not keep the old entry;
 * - suspicions are taken only from a sender in the roster at its current
 *   incarnation, and one already taken (same sender, suspect, nonce) is not taken again
 *   (a byte-exact replay), for {@link REPLAY_WINDOW_MS};
 * - the second ping of a probe goes to every address of the peer (up to
 *   {@link MAX_PROBE_ADDRESSES}): an unsigned ping in its name can move a
 *   forged address to the front of its list, and must not make it look dead.
 *
 * @module
 */
import type { Peer, Roster } from "./roster.ts";
import type { Endpoint } from "./transmit.ts";
import type { PingAck, PingReq, Suspect } from "../wire/mod.ts";

/** How often this node pings one peer (ms): three probes a second, six datagrams received per host. */
export const PROBE_PERIOD_MS = 333;
/** No pong within this long (ms): a second ping and the indirect probes. */
export const DIRECT_TIMEOUT_MS = 300;
/** Nothing heard from the probed peer within this long (ms): suspected. */
export const PROBE_TIMEOUT_MS = 1000;
/** Peers asked to ping a silent peer for us. */
export const INDIRECT_PROBES = 3;
/** How long a suspicion stands before the suspect is pinged one last time (ms). */
export const SUSPICION_MS = 5500;
/**
 * A suspicion is broadcast this many times, {@link REPEAT_MS} apart: at 5 %
 * loss one host in 160,000 misses all four (with three, one in 8,000: about
 * one straggler per crash at N = 1000, which then waits for expiry).
 */
export const SUSPECT_SENDS = 4;
/** A refutation (this node's hello) is broadcast this many times, {@link REPEAT_MS} apart. */
export const REFUTE_SENDS = 3;
export const REPEAT_MS = 1000;
/** Relays for others' indirect probes in flight at once (more are refused: a peer cannot make us a ping cannon). */
export const MAX_RELAYS = 32;
/** Suspicions held at once (a hostile flood of them stops here). */
export const MAX_SUSPICIONS = 256;
/** No answer to any of this node's pings within this long (ms): it doubts its own link and suspects no one. */
export const LOCAL_HEALTH_MS = 3000;
/** A suspicion (sender, nonce) taken is refused again for this long (ms): a replay is not taken. */
export const REPLAY_WINDOW_MS = 120_000;
/**
 * A peer whose suspicion ended refuted (its hello heard) is not suspected
 * again by this node for this long (ms): a host that hears broadcasts but
 * not pings (a firewalled unicast port) would else be suspected and refute
 * round after round. A crash in that time is found by the next suspicion.
 */
export const REFUTED_QUIET_MS = 20_000;
/** Addresses of a peer the second ping of a probe goes to. */
export const MAX_PROBE_ADDRESSES = 4;

/** What the detector counts (folded into discovery's counters). */
export interface DetectorCounters {
  /** Probe pings sent (direct, first and second). */
  probePings: number;
  /** `preq` sent, and relayed for others. */
  indirectAsked: number;
  indirectRelayed: number;
  /** Probes that failed while this node had no answer from anyone (its own link in doubt): no suspicion raised. */
  suspicionsWithheld: number;
  /** Suspicions refused: sender not in the roster (or another incarnation), or a replay. */
  suspicionsRefused: number;
  /** Suspicions this node raised (each broadcast up to SUSPECT_SENDS times), and took from others. */
  suspicionsRaised: number;
  suspicionsTaken: number;
  /** Suspicions of this node it refuted. */
  refutations: number;
  /** Suspicions that ended because the suspect was heard. */
  suspicionsRefuted: number;
  /** Suspects pinged at the end of the window (removed if that fails: see removedAfterSuspicion in discovery). */
  suspicionsChecked: number;
}

/** Every detector counter at zero. */
export function zeroDetectorCounters(): DetectorCounters {
  return {
    probePings: 0,
    indirectAsked: 0,
    indirectRelayed: 0,
    suspicionsWithheld: 0,
    suspicionsRefused: 0,
    suspicionsRaised: 0,
    suspicionsTaken: 0,
    refutations: 0,
    suspicionsRefuted: 0,
    suspicionsChecked: 0,
  };
}

/** The side effects the detector asks of discovery. */
export interface DetectorIo {
  /** Sends a ping with `nonce` to `to`. */
  ping(to: Endpoint, nonce: number): void;
  /** Sends a packet (unicast). */
  unicast(to: Endpoint, packet: PingReq | PingAck): void;
  /** Broadcasts a signed suspicion. */
  suspect(packet: Suspect): void;
  /** Broadcasts this node's hello (a refutation). */
  refute(): void;
  /** Starts the roster's own probe of `peer` (the last check of a suspect), unless one is under way. */
  check(peer: Peer, now: number): void;
  nonce(): number;
  random(): number;
}

interface Probe {
  peer: Peer;
  nonce: number;
  sentAt: number;
  to: Endpoint;
  indirect: boolean;
}

interface Suspicion {
  incarnation: number;
  since: number;
  /** Raised by this node: broadcasts left and when the next goes. */
  sends: number;
  nextSendAt: number;
  nonce: number;
}

interface Relay {
  requester: Endpoint;
  requesterNonce: number;
  target: string;
  targetIncarnation: number;
  until: number;
}

/** The failure detector of one node. */
export class FailureDetector {
  readonly counters: DetectorCounters = zeroDetectorCounters();
  #roster: Roster;
  #self: { id: string; incarnation: number };
  #io: DetectorIo;
  #order: string[] = [];
  #pos = 0;
  #nextProbeAt: number | undefined;
  #probes = new Map<number, Probe>();
  #suspicions = new Map<string, Suspicion>();
  #relays = new Map<number, Relay>();
  #refuteSends = 0;
  #nextRefuteAt = Infinity;
  /** When one of this node's pings was last answered (a pong or a pack): its local health. */
  #lastAnswerAt = -Infinity;
  /** `sender nonce` of suspicions taken → when (replays refused). */
  #seen = new Map<string, number>();
  /** Peer id → when a suspicion of it last ended refuted. */
  #refutedAt = new Map<string, number>();

  constructor(roster: Roster, self: { id: string; incarnation: number }, io: DetectorIo) {
    this.#roster = roster;
    this.#self = self;
    this.#io = io;
  }

  /** Peers suspected now (id → since when), for diagnostics and tests. */
  suspected(): ReadonlyMap<string, { since: number }> {
    return this.#suspicions;
  }

  /** Starts probing at `now` (the first probe one period later, with jitter so nodes do not probe in step). */
  start(now: number): void {
    this.#nextProbeAt = now + Math.round(PROBE_PERIOD_MS * (0.5 + this.#io.random()));
    // Healthy until shown otherwise: the first probes may raise suspicions.
    this.#lastAnswerAt = now;
  }

  /** Stops everything (shutdown). */
  stop(): void {
    this.#nextProbeAt = undefined;
    this.#probes.clear();
    this.#suspicions.clear();
    this.#relays.clear();
    this.#seen.clear();
    this.#refutedAt.clear();
    this.#refuteSends = 0;
    this.#nextRefuteAt = Infinity;
  }

  /**
   * A pong from `id` at `incarnation` with `nonce`: answers one of our
   * probes, or a ping we relay. A pong from another incarnation (a process
   * restarted since) does not answer for the entry probed.
   */
  pong(id: string, incarnation: number, nonce: number, now: number): void {
    const probe = this.#probes.get(nonce);
    if (probe && probe.peer.id === id && probe.peer.incarnation === incarnation) {
      this.#probes.delete(nonce);
      this.#lastAnswerAt = now;
    }
    const relay = this.#relays.get(nonce);
    if (relay && relay.target === id && relay.targetIncarnation === incarnation) {
      this.#lastAnswerAt = now;
      this.#relays.delete(nonce);
      this.#io.unicast(relay.requester, {
        kind: "pack",
        id: this.#self.id,
        incarnation: this.#self.incarnation,
        target: id,
        nonce: relay.requesterNonce,
      });
      this.counters.indirectRelayed++;
    }
  }

  /** A relayed answer: the peer answered the ping we asked for. */
  pack(p: PingAck, now: number): void {
    const probe = this.#probes.get(p.nonce);
    if (probe && probe.peer.id === p.target) {
      this.#probes.delete(p.nonce);
      this.#lastAnswerAt = now;
    }
  }

  /**
   * Someone asks us to ping `target`. Only for a requester in our roster,
   * a target in it at the address named, and {@link MAX_RELAYS} at once.
   */
  preq(p: PingReq, from: Endpoint, now: number): void {
    for (const [n, r] of this.#relays) if (r.until <= now) this.#relays.delete(n);
    if (this.#relays.size >= MAX_RELAYS || !this.#roster.get(p.id)) return;
    const target = this.#roster.get(p.target);
    const at = target?.addresses.find((a) => a.address === p.address && a.port === p.port);
    if (!at) return;
    const nonce = this.#io.nonce();
    this.#relays.set(nonce, {
      requester: from,
      requesterNonce: p.nonce,
      target: p.target,
      targetIncarnation: target!.incarnation,
      until: now + PROBE_TIMEOUT_MS,
    });
    this.#io.ping({ address: at.address, port: at.port }, nonce);
  }

  /**
   * A suspicion broadcast by another node (already authenticated by the
   * driver). Taken only from a sender in the roster at its current
   * incarnation, and not twice with the same nonce (a replay).
   */
  suspect(p: Suspect, now: number): void {
    if (this.#roster.get(p.id)?.incarnation !== p.incarnation || !this.#fresh(p, now)) {
      this.counters.suspicionsRefused++;
      return;
    }
    if (p.suspect === this.#self.id) {
      // Only for the incarnation running now; at most one refutation round at a time.
      if (p.suspectIncarnation !== this.#self.incarnation || this.#refuteSends > 0) return;
      this.counters.refutations++;
      this.#refuteSends = REFUTE_SENDS - 1;
      this.#nextRefuteAt = now + REPEAT_MS;
      this.#io.refute();
      return;
    }
    const peer = this.#roster.get(p.suspect);
    if (!peer || peer.incarnation !== p.suspectIncarnation || this.#suspicions.has(peer.id)) return;
    if (this.#suspicions.size >= MAX_SUSPICIONS) return;
    this.counters.suspicionsTaken++;
    this.#suspicions.set(peer.id, {
      incarnation: peer.incarnation,
      since: now,
      sends: 0,
      nextSendAt: Infinity,
      nonce: 0,
    });
  }

  /** False for a suspicion (sender, suspect, incarnations, nonce) taken within {@link REPLAY_WINDOW_MS}; else records it. */
  #fresh(p: Suspect, now: number): boolean {
    const key = `${p.id} ${p.incarnation} ${p.suspect} ${p.suspectIncarnation} ${p.nonce >>> 0}`;
    const at = this.#seen.get(key);
    if (at !== undefined && now - at < REPLAY_WINDOW_MS) return false;
    if (this.#seen.size >= 4 * MAX_SUSPICIONS) {
      for (const [k, t] of this.#seen) if (now - t >= REPLAY_WINDOW_MS) this.#seen.delete(k);
      // Still full of fresh ones (a flood): forget the oldest.
      while (this.#seen.size >= 4 * MAX_SUSPICIONS) this.#seen.delete(this.#seen.keys().next().value!);
    }
    this.#seen.delete(key);
    this.#seen.set(key, now);
    return true;
  }

  /**
   * Does what is due at `now`. `late` is how late the wake-up came: time this
   * node's loop was away does not count against a probe.
   */
  tick(now: number, late: number): void {
    if (late > 5) { for (const p of this.#probes.values()) p.sentAt += late; }
    for (const [nonce, p] of this.#probes) this.#advance(nonce, p, now);
    for (const [id, s] of this.#suspicions) this.#settle(id, s, now);
    if (this.#refuteSends > 0 && now >= this.#nextRefuteAt) {
      this.#refuteSends--;
      this.#nextRefuteAt = this.#refuteSends > 0 ? now + REPEAT_MS : Infinity;
      this.#io.refute();
    }
    if (this.#nextProbeAt !== undefined && now >= this.#nextProbeAt) {
      this.#nextProbeAt = Math.max(now, this.#nextProbeAt + PROBE_PERIOD_MS);
      this.#probeNext(now);
    }
  }

  /** The next time {@link tick} has something to do (Infinity if none). */
  nextDeadline(): number {
    let next = this.#nextProbeAt ?? Infinity;
    if (this.#nextRefuteAt < next) next = this.#nextRefuteAt;
    for (const p of this.#probes.values()) {
      const at = p.sentAt + (p.indirect ? PROBE_TIMEOUT_MS : DIRECT_TIMEOUT_MS);
      if (at < next) next = at;
    }
    for (const s of this.#suspicions.values()) {
      const at = Math.min(s.since + SUSPICION_MS, s.nextSendAt);
      if (at < next) next = at;
    }
    return next;
  }

  #probeNext(now: number): void {
    const roster = this.#roster;
    for (let tries = 0; tries <= this.#order.length; tries++) {
      if (this.#pos >= this.#order.length) this.#reshuffle();
      const id = this.#order[this.#pos++];
      if (id === undefined) return;
      const peer = roster.get(id);
      if (!peer || peer.state !== "alive" || this.#suspicions.has(id)) continue;
      const to = peer.addresses[0];
      if (!to) continue;
      const nonce = this.#io.nonce();
      const probe: Probe = { peer, nonce, sentAt: now, to: { address: to.address, port: to.port }, indirect: false };
      this.#probes.set(nonce, probe);
      this.#io.ping(probe.to, nonce);
      this.counters.probePings++;
      return;
    }
  }

  #reshuffle(): void {
    const ids = this.#roster.peers().map((p) => p.id);
    for (let i = ids.length - 1; i > 0; i--) {
      const j = Math.floor(this.#io.random() * (i + 1));
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    this.#order = ids;
    this.#pos = 0;
  }

  #advance(nonce: number, p: Probe, now: number): void {
    const peer = this.#roster.get(p.peer.id);
    // Gone, restarted, or heard since the ping went (a hello counts: it is alive).
    if (peer !== p.peer || peer.lastSeen >= p.sentAt + 1) {
      this.#probes.delete(nonce);
      return;
    }
    if (!p.indirect && now >= p.sentAt + DIRECT_TIMEOUT_MS) {
      p.indirect = true;
      this.#io.ping(p.to, nonce);
      this.counters.probePings++;
      // Its other addresses too: the first may be one an unsigned packet put there.
      for (const a of peer.addresses.slice(0, MAX_PROBE_ADDRESSES)) {
        if (a.address === p.to.address && a.port === p.to.port) continue;
        this.#io.ping({ address: a.address, port: a.port }, nonce);
        this.counters.probePings++;
      }
      // No one answered us lately: asking helpers would only spend their pings and pongs on our own deafness.
      const helpers = now - this.#lastAnswerAt > LOCAL_HEALTH_MS ? [] : this.#helpers(peer);
      for (const helper of helpers) {
        const at = helper.addresses[0]!;
        this.#io.unicast({ address: at.address, port: at.port }, {
          kind: "preq",
          id: this.#self.id,
          incarnation: this.#self.incarnation,
          target: peer.id,
          address: p.to.address,
          port: p.to.port,
          nonce,
        });
        this.counters.indirectAsked++;
      }
      return;
    }
    if (p.indirect && now >= p.sentAt + PROBE_TIMEOUT_MS) {
      this.#probes.delete(nonce);
      if (this.#suspicions.has(peer.id) || peer.state !== "alive") return;
      const refuted = this.#refutedAt.get(peer.id);
      if (now - this.#lastAnswerAt > LOCAL_HEALTH_MS || (refuted !== undefined && now - refuted < REFUTED_QUIET_MS)) {
        // No one answers us: our own link is in doubt, not this peer. Or it refuted a suspicion lately.
        this.counters.suspicionsWithheld++;
        return;
      }
      this.counters.suspicionsRaised++;
      const s: Suspicion = {
        incarnation: peer.incarnation,
        since: now,
        sends: SUSPECT_SENDS,
        nextSendAt: now,
        nonce: this.#io.nonce(),
      };
      this.#suspicions.set(peer.id, s);
      this.#settle(peer.id, s, now);
    }
  }

  /** Up to {@link INDIRECT_PROBES} random peers that run the detector, alive, with an address, not `target`. */
  #helpers(target: Peer): Peer[] {
    const out: Peer[] = [];
    const n = this.#order.length;
    if (n === 0) return out;
    const start = Math.floor(this.#io.random() * n);
    for (let k = 0; k < n && out.length < INDIRECT_PROBES; k++) {
      const peer = this.#roster.get(this.#order[(start + k) % n]!);
      if (peer && peer !== target && peer.failureDetector && peer.state === "alive" && peer.addresses[0]) {
        out.push(peer);
      }
    }
    return out;
  }

  /** A suspicion's broadcasts, and its end: refuted if the suspect was heard, else the last check. */
  #settle(id: string, s: Suspicion, now: number): void {
    const peer = this.#roster.get(id);
    if (!peer || peer.incarnation !== s.incarnation) {
      this.#suspicions.delete(id);
      return;
    }
    if (peer.lastSeen > s.since) {
      this.counters.suspicionsRefuted++;
      if (this.#refutedAt.size >= 4 * MAX_SUSPICIONS) {
        for (const [k, t] of this.#refutedAt) if (now - t >= REFUTED_QUIET_MS) this.#refutedAt.delete(k);
      }
      if (this.#refutedAt.size < 4 * MAX_SUSPICIONS) this.#refutedAt.set(id, now);
      this.#suspicions.delete(id);
      return;
    }
    if (s.sends > 0 && now >= s.nextSendAt) {
      s.sends--;
      s.nextSendAt = s.sends > 0 ? now + REPEAT_MS : Infinity;
      this.#io.suspect({
        kind: "suspect",
        id: this.#self.id,
        incarnation: this.#self.incarnation,
        suspect: id,
        suspectIncarnation: s.incarnation,
        nonce: s.nonce,
      });
    }
    if (now >= s.since + SUSPICION_MS) {
      this.#suspicions.delete(id);
      this.counters.suspicionsChecked++;
      this.#io.check(peer, now);
    }
  }
}
