/**
 * End-to-end sessions with every peer: the table the daemon puts between its
 * services and the unicast socket. Sans-I/O, as the protocol modules: fed
 * datagrams and the time, it gives back datagrams to send, events and its
 * next deadline. A send with no session queues the datagram and starts a
 * Noise IK handshake to the static key of the peer's signed hello; lost
 * handshake messages are covered by new initiations (e2e_timers.ts); an
 * initiation whose stamp is not above the last is a replay, one from a
 * higher incarnation drops the old sessions at once (the peer restarted);
 * sessions expire 3 minutes after their handshake, and a peer with nothing
 * left leaves the table (at most `maxPeers`). docs/e2e.md has the design.
 *
 * @module
 */
import TinyQueue from "tinyqueue";
import { decodePacket, type Packet } from "../wire/mod.ts";
import { isBundle, unpackBundle } from "../wire/bundle.ts";
import type { IkInitiator } from "./noise.ts";
import { type E2ePacket, MAX_INNER, parseE2e, type StaticIdentity } from "./e2e_wire.ts";
import * as hs from "./e2e_handshake.ts";
import { type Drop, drop } from "./e2e_handshake.ts";
import { Keypairs, REJECT_AFTER_TIME_MS, REKEY_ON_RECEIVE_MS, TransportSession } from "./session.ts";
import * as timers from "./e2e_timers.ts";

/** Datagrams held per peer while its handshake runs. */
export const QUEUE_LIMIT = 128;

export type { E2eDropReason } from "./e2e_handshake.ts";

export type Received =
  /** The packets of a data packet: one datagram, or the members of a bundle (wire/bundle.ts) in order. */
  | { kind: "data"; peerId: string; inner: Uint8Array; packets: Packet[] }
  | { kind: "keepalive"; peerId: string }
  /** A handshake message taken; `reply` goes back to the address the datagram came from. */
  | { kind: "handshake"; peerId: string; reply?: Uint8Array }
  | Drop;

export type E2eEvent =
  | { kind: "established"; peerId: string; initiator: boolean }
  | { kind: "handshake-failed"; peerId: string; dropped: number };

/** A peer as the caller knows it: its id and the X25519 static key its signed hello carries. */
export interface PeerKey {
  id: string;
  staticKey: Uint8Array;
}

export interface E2eOptions {
  identity: StaticIdentity;
  /** This daemon's incarnation (stored, bumped on every start). */
  incarnation: number;
  /** May node `id`, holding Ed25519 key `edPublic`, open a session? The pinned key decides. */
  authorize(id: string, edPublic: Uint8Array): boolean;
  /** Default 2,048. */
  maxPeers?: number;
  /** Last initiation stamps remembered (nodes); default 8,192. */
  maxStamps?: number;
  /** Random 32-bit numbers (indices, jitter); default crypto.getRandomValues. */
  random32?: () => number;
}

interface Pending {
  initiator: IkInitiator;
  localIndex: number;
  startedAt: number;
  retryAt: number;
  attempts: number;
}

interface PeerState {
  id: string;
  staticKey?: Uint8Array;
  keys: Keypairs;
  handshake?: Pending;
  queue: Uint8Array[];
  /** Data sent since the last packet received from it. */
  unansweredSince?: number;
  /** Data received since the last packet sent to it. */
  owesKeepaliveSince?: number;
  lastInitiationTaken: number;
  lastUsed: number;
  scheduledAt?: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class E2eSessions {
  readonly counters = { initiationsSent: 0, handshakesCompleted: 0, queueDropped: 0, evicted: 0 };
  #o: E2eOptions;
  #random32: () => number;
  #maxPeers: number;
  #sequence = 0;
  #peers = new Map<string, PeerState>();
  #index = new Map<number, { peer: PeerState; session?: TransportSession }>();
  #stamps: hs.StampBook;
  #timers = new TinyQueue<{ at: number; id: string }>([], (a, b) => a.at - b.at);
  #transmits: { peerId: string; bytes: Uint8Array }[] = [];
  #events: E2eEvent[] = [];

  constructor(options: E2eOptions) {
    this.#o = options;
    this.#random32 = options.random32 ?? (() => crypto.getRandomValues(new Uint32Array(1))[0]!);
    this.#maxPeers = options.maxPeers ?? 2048;
    this.#stamps = new hs.StampBook(options.maxStamps ?? 8192);
  }

  /** Sends `inner` (an LNCH datagram) to `peer`, now or once a handshake completes. */
  send(peer: PeerKey, inner: Uint8Array, now: number): void {
    if (inner.length > MAX_INNER) throw new RangeError(`An e2e datagram carries at most ${MAX_INNER} bytes`);
    const p = this.#peer(peer.id, now);
    if (p.staticKey && !sameBytes(p.staticKey, peer.staticKey) && p.handshake) {
      // A new static key in the peer's signed hello: a handshake to the old one would never be answered.
      this.#index.delete(p.handshake.localIndex);
      p.handshake = undefined;
    }
    p.staticKey = peer.staticKey;
    const s = p.keys.current;
    if (s?.usable(now)) {
      this.#emit(p, s.seal(inner), now, true);
      if (s.wantsRekey(now) && !p.handshake) this.#initiate(p, now);
    } else {
      if (p.queue.length >= QUEUE_LIMIT) {
        p.queue.shift();
        this.counters.queueDropped++;
      }
      p.queue.push(inner);
      if (timers.dueAt(this.#clock(p, now), now).initiate) this.#initiate(p, now);
    }
    this.#schedule(p, now);
  }

  /** Takes an e2e datagram (see e2e_wire.ts `isE2e`). Never throws. */
  receive(bytes: Uint8Array, now: number): Received {
    const parsed = parseE2e(bytes);
    if (typeof parsed === "string") return drop("malformed", parsed);
    if (parsed.type === "initiation") return this.#takeInitiation(bytes, now);
    if (parsed.type === "response") return this.#takeResponse(bytes, parsed.receiverIndex, now);
    return this.#takeData(parsed, now);
  }

  /** The peer restarted (a hello with a higher incarnation): its sessions are dead; the queue stays. */
  peerRestarted(id: string, now: number): void {
    const p = this.#peers.get(id);
    if (!p) return;
    this.#dropSessions(p, false);
    if (p.queue.length && p.staticKey && !p.handshake) this.#initiate(p, now);
    this.#schedule(p, now);
  }

  /** Forgets a peer entirely (its pin was dropped): sessions, queue and last stamp. */
  forget(id: string): void {
    const p = this.#peers.get(id);
    if (p) this.#remove(p);
    this.#stamps.forget(id);
  }

  handleTimeout(now: number): void {
    const due: PeerState[] = [];
    while (this.#timers.length && this.#timers.peek()!.at <= now) {
      const { at, id } = this.#timers.pop()!;
      const p = this.#peers.get(id);
      if (!p || p.scheduledAt !== at) continue; // superseded by an earlier deadline, or the peer left
      p.scheduledAt = undefined;
      due.push(p);
    }
    for (const p of due) if (this.#peers.get(p.id) === p) this.#tick(p, now);
  }

  pollTimeout(): number | undefined {
    return this.#timers.peek()?.at;
  }

  drainTransmits(): { peerId: string; bytes: Uint8Array }[] {
    return this.#transmits.splice(0);
  }

  drainEvents(): E2eEvent[] {
    return this.#events.splice(0);
  }

  /** True when a datagram to `id` would go out at once (a confirmed session). */
  hasSession(id: string, now: number): boolean {
    return this.#peers.get(id)?.keys.current?.usable(now) ?? false;
  }

  status(): { peers: number; sessions: number; handshakes: number; queued: number } {
    const all = [...this.#peers.values()];
    return {
      peers: all.length,
      sessions: all.reduce((n, p) => n + p.keys.all().length, 0),
      handshakes: all.filter((p) => p.handshake).length,
      queued: all.reduce((n, p) => n + p.queue.length, 0),
    };
  }

  #takeInitiation(bytes: Uint8Array, now: number): Received {
    const taken = hs.consumeInitiation(this.#o.identity, bytes);
    if (taken.kind === "drop") return taken;
    const { id, stamp } = taken;
    if (!this.#o.authorize(id, taken.edPublic)) return drop("refused", `node ${id} is not accepted by its pin`);
    const verdict = this.#stamps.judge(id, stamp);
    if (verdict === "replay") {
      return drop("replay", `initiation stamp ${stamp.incarnation}.${stamp.sequence} is not after the last taken`);
    }
    const p = this.#peer(id, now);
    if (now - p.lastInitiationTaken < timers.MIN_INITIATION_INTERVAL_MS) {
      return drop("rate-limit", "initiations too often");
    }
    p.lastInitiationTaken = now;
    p.lastUsed = now;
    this.#stamps.record(id, stamp);
    // A higher incarnation: the peer restarted and lost the keys of its old sessions.
    if (verdict === "restart") this.#dropSessions(p, false);
    p.staticKey = taken.staticKey;
    const localIndex = this.#newIndex();
    const { bytes: reply, keys } = hs.createResponse(taken, localIndex);
    const session = new TransportSession(keys, localIndex, taken.senderIndex, false, now);
    p.keys.answeredAsResponder(session);
    this.#index.set(localIndex, { peer: p, session });
    this.#schedule(p, now);
    return { kind: "handshake", peerId: id, reply };
  }

  #takeResponse(bytes: Uint8Array, receiverIndex: number, now: number): Received {
    const p = this.#index.get(receiverIndex)?.peer;
    const h = p?.handshake;
    if (!p || !h || h.localIndex !== receiverIndex) return drop("unknown-session", "no handshake for it");
    const done = hs.consumeResponse(this.#o.identity, h.initiator, bytes);
    if (done.kind === "drop" && done.reason === "auth") return done; // a forgery: the genuine one may follow
    p.handshake = undefined;
    if (done.kind === "drop") {
      this.#index.delete(h.localIndex);
      return done;
    }
    const session = new TransportSession(done.keys, h.localIndex, done.remoteIndex, true, now);
    this.#index.set(h.localIndex, { peer: p, session });
    p.keys.completedAsInitiator(session);
    this.counters.handshakesCompleted++;
    this.#events.push({ kind: "established", peerId: p.id, initiator: true });
    if (!this.#flush(p, now)) this.#emit(p, session.seal(new Uint8Array(0)), now, false);
    this.#schedule(p, now);
    return { kind: "handshake", peerId: p.id };
  }

  #takeData(parsed: Extract<E2ePacket, { type: "data" }>, now: number): Received {
    const entry = this.#index.get(parsed.receiverIndex);
    const s = entry?.session;
    if (!entry || !s) return drop("unknown-session", `no session ${parsed.receiverIndex}`);
    if (now - s.createdAt >= REJECT_AFTER_TIME_MS) return drop("unknown-session", "session expired");
    const inner = s.open(parsed);
    if (inner === "auth") return drop("auth", "data packet does not authenticate");
    if (inner === "replay") return drop("replay", `counter ${parsed.counter} already taken or too old`);
    const p = entry.peer;
    p.lastUsed = now;
    p.unansweredSince = undefined;
    if (p.keys.receivedWith(s)) {
      this.counters.handshakesCompleted++;
      this.#events.push({ kind: "established", peerId: p.id, initiator: false });
      this.#flush(p, now);
    }
    // Only the current session's age matters: a late packet under the previous one asks for nothing.
    const current = p.keys.current;
    if (current?.initiator && now - current.createdAt >= REKEY_ON_RECEIVE_MS && !p.handshake) this.#initiate(p, now);
    if (inner.length) p.owesKeepaliveSince ??= now;
    this.#schedule(p, now);
    if (inner.length === 0) return { kind: "keepalive", peerId: p.id };
    const members = isBundle(inner) ? unpackBundle(inner) : [inner];
    if (typeof members === "string") return drop("malformed", `bundle: ${members}`);
    // All or nothing: one bad member (malformed, or under another id) and the whole data packet is refused.
    const packets: Packet[] = [];
    for (const m of members) {
      const decoded = decodePacket(m);
      if (!decoded.ok) return drop("malformed", `inner datagram: ${decoded.reason}`);
      if (decoded.value.id !== p.id) {
        return drop("impersonation", `a packet for ${decoded.value.id} inside ${p.id}'s session`);
      }
      packets.push(decoded.value);
    }
    return { kind: "data", peerId: p.id, inner, packets };
  }

  #initiate(p: PeerState, now: number): void {
    if (!p.staticKey) return;
    const first = p.handshake;
    if (first) this.#index.delete(first.localIndex);
    const localIndex = this.#newIndex();
    const stamp = { incarnation: this.#o.incarnation, sequence: this.#sequence++ };
    const { initiator, bytes } = hs.createInitiation(this.#o.identity, p.staticKey, localIndex, stamp);
    const attempts = (first?.attempts ?? 0) + 1;
    p.handshake = {
      initiator,
      localIndex,
      startedAt: first?.startedAt ?? now,
      retryAt: now + timers.retryDelay(attempts) + (this.#random32() % timers.RETRY_JITTER_MS),
      attempts,
    };
    this.#index.set(localIndex, { peer: p });
    this.counters.initiationsSent++;
    this.#transmits.push({ peerId: p.id, bytes });
  }

  /** Does what is due for `p` at `now`; leaves nothing due at `now` (handleTimeout relies on it). */
  #tick(p: PeerState, now: number): void {
    p.keys.expire(now);
    const due = timers.dueAt(this.#clock(p, now), now);
    if (due.giveUp) {
      this.#index.delete(p.handshake!.localIndex);
      p.handshake = undefined;
      this.counters.queueDropped += p.queue.length;
      this.#events.push({ kind: "handshake-failed", peerId: p.id, dropped: p.queue.length });
      p.queue = [];
      p.unansweredSince = undefined;
    }
    if (due.retry || due.initiate) {
      p.unansweredSince = undefined;
      this.#initiate(p, now);
    }
    if (due.keepalive) {
      const s = p.keys.current;
      if (s?.usable(now)) this.#emit(p, s.seal(new Uint8Array(0)), now, false);
      p.owesKeepaliveSince = undefined;
    }
    if (!p.keys.all().length && !p.handshake && !p.queue.length) this.#remove(p);
    else this.#schedule(p, now);
  }

  #clock(p: PeerState, now: number): timers.PeerClock {
    return {
      handshake: p.handshake,
      queued: p.queue.length,
      sending: p.keys.current?.usable(now) ?? false,
      nextCreatedAt: p.keys.next?.createdAt,
      unansweredSince: p.unansweredSince,
      owesKeepaliveSince: p.owesKeepaliveSince,
      sessionsCreatedAt: p.keys.all().map((s) => s.createdAt),
    };
  }

  #schedule(p: PeerState, now: number): void {
    const at = timers.nextDeadline(this.#clock(p, now));
    if (at === undefined || (p.scheduledAt !== undefined && p.scheduledAt <= at)) return;
    p.scheduledAt = at;
    this.#timers.push({ at, id: p.id });
  }

  /** Sends what waited for a session; false when nothing did. */
  #flush(p: PeerState, now: number): boolean {
    const s = p.keys.current;
    if (!s || !p.queue.length) return false;
    for (const inner of p.queue.splice(0)) this.#emit(p, s.seal(inner), now, true);
    return true;
  }

  #emit(p: PeerState, bytes: Uint8Array, now: number, data: boolean): void {
    this.#transmits.push({ peerId: p.id, bytes });
    p.lastUsed = now;
    p.owesKeepaliveSince = undefined;
    if (data) p.unansweredSince ??= now;
  }

  #peer(id: string, now: number): PeerState {
    let p = this.#peers.get(id);
    if (!p) {
      if (this.#peers.size >= this.#maxPeers) {
        let oldest: PeerState | undefined;
        for (const q of this.#peers.values()) if (!oldest || q.lastUsed < oldest.lastUsed) oldest = q;
        this.#remove(oldest!);
        this.counters.evicted++;
      }
      p = { id, keys: new Keypairs(this.#discard), queue: [], lastInitiationTaken: -Infinity, lastUsed: now };
      this.#peers.set(id, p);
    }
    return p;
  }

  /** Drops a peer's sessions (and its handshake when `all`: its static key changed). */
  #dropSessions(p: PeerState, all: boolean): void {
    p.keys.clear();
    p.unansweredSince = p.owesKeepaliveSince = undefined;
    if (all && p.handshake) {
      this.#index.delete(p.handshake.localIndex);
      p.handshake = undefined;
    }
  }

  #remove(p: PeerState): void {
    this.#dropSessions(p, true);
    this.#peers.delete(p.id);
  }

  #discard = (s: TransportSession): void => {
    this.#index.delete(s.localIndex);
    s.wipe();
  };

  #newIndex(): number {
    let i = this.#random32() >>> 0;
    while (this.#index.has(i)) i = this.#random32() >>> 0;
    return i;
  }
}
