/**
 * End-to-end encryption in the lanchat link (docs/e2e.md, "Wiring"): the
 * table of sessions with every peer (security/e2e_sessions.ts) and the
 * rules around it. Which unicast datagram goes through a session, which
 * goes clear (a peer of a version before end-to-end encryption, whose hello
 * carries no `nk`) and which is refused (such a peer with
 * `--require-encryption`, or a peer not in the roster); a clear message,
 * ack, read receipt or note from a peer that speaks end-to-end is refused
 * (`unencrypted`), so no one strips the encryption by forging clear packets.
 * The link (lanchat.ts) calls it on the way out and in; it holds no socket.
 *
 * @module
 */
import { logger } from "../../common/log.ts";
import type { Endpoint, Transmit } from "../../protocol/discovery.ts";
import type { Roster, RosterEvent } from "../../protocol/roster.ts";
import { type E2eDropReason, E2eSessions, type Received } from "../../security/e2e_sessions.ts";
import { MAX_INNER, parseStaticKeyText, type StaticIdentity, staticKeyText } from "../../security/e2e_wire.ts";
import { isBundle, packBundles } from "../../wire/bundle.ts";
import type { Pins } from "../../security/pins.ts";
import { type DropReason, type Packet, toHex } from "../../wire/mod.ts";
import type { MetricsWriter } from "../metrics.ts";
import type { Notices } from "../notices.ts";

/** How a unicast datagram to a peer goes. */
export type Route = "e2e" | "clear" | "refused";

/** Packet kinds that never travel clear to or from a peer that speaks end-to-end. */
const PRIVATE_KINDS = new Set<Packet["kind"]>(["msg", "ack", "read", "note"]);

/** Ids remembered as speaking end-to-end after they leave the roster (their clear packets stay refused). */
const MAX_REMEMBERED = 8192;

/** The e2e table's drop reasons as the link's drop counters name them. */
export function dropReasonOf(r: E2eDropReason): DropReason {
  return r;
}

export interface E2eLinkOptions {
  identity: StaticIdentity;
  incarnation: number;
  roster: Roster;
  pins: Pins;
  /** Refuse peers of a version without end-to-end encryption (`--require-encryption`). */
  requireEncryption: boolean;
  notices: Notices;
  /** Random 32-bit numbers for the table (tests); default crypto. */
  random32?: () => number;
}

/** An e2e datagram taken in: a packet to handle as if it came clear, or an answer to send back. */
export type Taken =
  /** The packets a data packet carried (more than one: a bundle), each with its share of the datagram's bytes. */
  | { kind: "packets"; packets: Packet[]; size: number }
  | { kind: "control"; reply?: Uint8Array }
  | { kind: "drop"; reason: DropReason; detail: string };

/** Datagrams to one peer waiting for the next drain, under the static key they were sent to. */
interface Pending {
  key: Uint8Array;
  datagrams: Uint8Array[];
  now: number;
}

export class E2eLink {
  readonly sessions: E2eSessions;
  /** This node's static key as its hellos carry it (`nk`). */
  readonly staticKey: string;
  readonly requireEncryption: boolean;
  readonly counters = {
    /** Datagrams sealed in a session and sent (handshakes and keepalives apart). */
    sealed: 0,
    /** Packets that came through a session. */
    opened: 0,
    /** Handshake messages and keepalives taken. */
    control: 0,
    /** Datagrams to a peer of a previous version, sent clear. */
    clearSent: 0,
    /** Datagrams not sent: the peer is refused (`--require-encryption`) or not in the roster. */
    notSent: 0,
    handshakesFailed: 0,
    /** Data packets sent and received that carried a bundle of several datagrams (wire/bundle.ts). */
    bundlesSealed: 0,
    bundlesOpened: 0,
  };
  #o: E2eLinkOptions;
  #endpoints = new Map<string, Endpoint>();
  #speaksE2e = new Set<string>();
  /** The incarnation each peer had when it left the roster: one back with a higher one restarted meanwhile. */
  #leftAs = new Map<string, number>();
  #keys = new Map<string, Uint8Array>();
  /** Datagrams given to {@link send} and not yet sealed, by peer, in order. */
  #pending = new Map<string, Pending>();
  #log = logger("daemon");

  constructor(o: E2eLinkOptions) {
    this.#o = o;
    this.requireEncryption = o.requireEncryption;
    this.staticKey = staticKeyText(o.identity.dh.publicKey);
    this.sessions = new E2eSessions({
      identity: o.identity,
      incarnation: o.incarnation,
      // A session only with a node known from a signed hello that carried
      // its static key, under the key pinned for its id.
      authorize: (id, edPublic) => {
        const peer = o.roster.get(id);
        const pin = o.pins.get(id);
        return !!peer?.staticKey && (!pin || pin.key === toHex(edPublic));
      },
      random32: o.random32,
    });
  }

  /** How a unicast datagram to `id` goes now. */
  route(id: string): Route {
    const peer = this.#o.roster.get(id);
    if (!peer) return "refused";
    if (peer.staticKey) return "e2e";
    return this.requireEncryption ? "refused" : "clear";
  }

  /** Whether traffic with `id` is encrypted end to end (undefined: not a lanchat peer in the roster). */
  encryptedWith(id: string): boolean | undefined {
    const peer = this.#o.roster.get(id);
    return peer ? !!peer.staticKey : undefined;
  }

  /** The static X25519 key `id`'s current signed hello carries (`nk`); undefined for a previous version or a stranger. */
  staticKeyOf(id: string): Uint8Array | undefined {
    return this.#keyOf(this.#o.roster.get(id)?.staticKey);
  }

  /**
   * Sends a unicast datagram through `peer`'s session (now, or once its
   * handshake completes); what goes out is in {@link drain}.
   */
  send(t: Transmit & { peer: string }, now: number): void {
    const key = this.#keyOf(this.#o.roster.get(t.peer)?.staticKey);
    if (!key) return;
    this.#heardAt(t.peer, t.to.address, t.to.port);
    const waiting = this.#pending.get(t.peer);
    if (waiting && waiting.key === key) waiting.datagrams.push(t.bytes);
    else {
      if (waiting) this.#seal(t.peer, waiting, now);
      this.#pending.set(t.peer, { key, datagrams: [t.bytes], now });
    }
  }

  /**
   * What the table has to send (data, handshakes, retries, keepalives), with
   * where each goes. The datagrams given to {@link send} since the last drain
   * go first into the sessions, several to one peer packed into bundles
   * (wire/bundle.ts): a burst of messages, or of acks, is sealed, opened and
   * sent once per bundle rather than once per datagram.
   */
  drain(): { to: Endpoint; bytes: Uint8Array; data: boolean }[] {
    for (const [id, waiting] of this.#pending) this.#seal(id, waiting, waiting.now);
    this.#pending.clear();
    const out = [];
    for (const t of this.sessions.drainTransmits()) {
      const to = this.#endpoints.get(t.peerId) ?? this.#o.roster.get(t.peerId)?.addresses[0];
      if (!to) continue;
      const data = t.bytes[5] === 3;
      if (data && t.bytes.length > 34) this.counters.sealed++;
      out.push({ to: { address: to.address, port: to.port }, bytes: t.bytes, data });
    }
    return out;
  }

  /** Takes an e2e datagram from `from`. Never throws. */
  receive(bytes: Uint8Array, from: Endpoint, now: number): Taken {
    const r: Received = this.sessions.receive(bytes, now);
    if (r.kind === "drop") return { kind: "drop", reason: dropReasonOf(r.reason), detail: r.detail };
    this.#heardAt(r.peerId, from.address, this.#portOf(r.peerId, from));
    if (r.kind === "data") {
      this.counters.opened++;
      if (r.packets.length > 1) this.counters.bundlesOpened++;
      return { kind: "packets", packets: r.packets, size: bytes.length };
    }
    this.counters.control++;
    return { kind: "control", reply: r.kind === "handshake" ? r.reply : undefined };
  }

  /** Why a clear packet must be refused (`unencrypted`), or undefined when it may be taken. */
  refusesClear(packet: Packet): string | undefined {
    if (!PRIVATE_KINDS.has(packet.kind)) return undefined;
    // Its current hello decides (a node that went back to a previous version signs hellos without nk);
    // out of the roster, what it last said.
    const peer = this.#o.roster.get(packet.id);
    if (peer ? peer.staticKey : this.#speaksE2e.has(packet.id)) {
      return `a clear ${packet.kind} from ${packet.id}, which speaks end-to-end`;
    }
    if (this.requireEncryption) return `a clear ${packet.kind} from ${packet.id} (--require-encryption)`;
    return undefined;
  }

  /** The roster's events: restarts drop sessions at once; a peer without `nk` is warned about once. */
  onRosterEvent(e: RosterEvent, now: number): void {
    const p = e.peer;
    if (p.staticKey) {
      if (this.#speaksE2e.size >= MAX_REMEMBERED) this.#speaksE2e.clear();
      this.#speaksE2e.add(p.id);
    } else {
      this.#speaksE2e.delete(p.id);
    }
    if (e.type === "left") {
      this.#endpoints.delete(p.id);
      if (this.#leftAs.size >= MAX_REMEMBERED) this.#leftAs.clear();
      this.#leftAs.set(p.id, p.incarnation);
    }
    // Back after a goodbye or a timeout with a higher incarnation: it restarted while out of the roster, and lost the
    // sessions we still hold with it; drop them now rather than speak under them until the no-reply rule notices.
    const restartedAway = e.type === "joined" && (this.#leftAs.get(p.id) ?? p.incarnation) < p.incarnation;
    if (e.type === "joined") this.#leftAs.delete(p.id);
    if (e.type === "restarted" || restartedAway) this.sessions.peerRestarted(p.id, now);
    if ((e.type === "joined" || e.type === "restarted") && !p.staticKey) {
      this.#o.notices.once(
        `unencrypted:${p.id}`,
        this.requireEncryption
          ? "{name} ({id}) runs a lanchat version without end-to-end encryption: refused (--require-encryption)"
          : "{name} ({id}) runs a lanchat version without end-to-end encryption: messages with it travel in the clear",
        { name: p.name, id: p.id },
      );
    }
  }

  /** The table's events, to the log. */
  drainEvents(): void {
    for (const e of this.sessions.drainEvents()) {
      const name = this.#o.roster.get(e.peerId)?.name ?? e.peerId;
      if (e.kind === "established") {
        this.#log.debug("End-to-end session with {name} ({id}), this side {side}", {
          name,
          id: e.peerId,
          side: e.initiator ? "initiator" : "responder",
        });
      } else {
        this.counters.handshakesFailed++;
        this.#log.warn(
          "No end-to-end session with {name} ({id}): the handshake went unanswered; {n} datagrams dropped",
          {
            name,
            id: e.peerId,
            n: e.dropped,
          },
        );
      }
    }
  }

  /** Forgets a peer (its pin was dropped): sessions, queue and last stamp. */
  forget(id: string): void {
    this.sessions.forget(id);
    this.#pending.delete(id);
    this.#speaksE2e.delete(id);
    this.#endpoints.delete(id);
  }

  status(): Record<string, unknown> {
    return {
      protocol: "Noise_IK_25519_ChaChaPoly_SHA256",
      staticKey: this.staticKey,
      requireEncryption: this.requireEncryption,
      ...this.sessions.status(),
      counters: { ...this.sessions.counters, ...this.counters },
    };
  }

  metrics(m: MetricsWriter): void {
    const s = this.sessions.status();
    const c = { ...this.sessions.counters, ...this.counters };
    m.single("lanchat_e2e_sessions", "gauge", "End-to-end sessions (key slots) held.", s.sessions);
    m.single("lanchat_e2e_peers", "gauge", "Peers in the end-to-end table.", s.peers);
    m.single("lanchat_e2e_initiations_sent_total", "counter", "Handshake initiations sent.", c.initiationsSent);
    m.single("lanchat_e2e_handshakes_total", "counter", "End-to-end handshakes completed.", c.handshakesCompleted);
    m.single("lanchat_e2e_handshakes_failed_total", "counter", "Handshakes given up.", c.handshakesFailed);
    m.single("lanchat_e2e_sealed_total", "counter", "Datagrams sent end-to-end encrypted.", c.sealed);
    m.single("lanchat_e2e_opened_total", "counter", "Datagrams received end-to-end encrypted.", c.opened);
    m.single("lanchat_e2e_clear_sent_total", "counter", "Datagrams sent clear to previous versions.", c.clearSent);
    m.single("lanchat_e2e_not_sent_total", "counter", "Unicast datagrams not sent (peer refused).", c.notSent);
    m.single(
      "lanchat_e2e_queue_dropped_total",
      "counter",
      "Datagrams dropped waiting for a handshake.",
      c.queueDropped,
    );
  }

  #seal(id: string, waiting: Pending, now: number): void {
    for (const inner of packBundles(waiting.datagrams, MAX_INNER)) {
      if (isBundle(inner)) this.counters.bundlesSealed++;
      this.sessions.send({ id, staticKey: waiting.key }, inner, now);
    }
  }

  /** A static key's bytes from its text (hellos carry the canonical text), parsed once. */
  #keyOf(text: string | undefined): Uint8Array | undefined {
    if (text === undefined) return undefined;
    let key = this.#keys.get(text);
    if (!key) {
      key = parseStaticKeyText(text);
      if (!key) return undefined;
      if (this.#keys.size >= MAX_REMEMBERED) this.#keys.clear();
      this.#keys.set(text, key);
    }
    return key;
  }

  /** Where a peer's datagrams go: where it was last heard or written to (kept, not reallocated, while it stays). */
  #heardAt(id: string, address: string, port: number): void {
    const e = this.#endpoints.get(id);
    if (e?.address !== address || e.port !== port) this.#endpoints.set(id, { address, port });
  }

  /** A peer's unicast port: the one its hello gives when the datagram came from that address. */
  #portOf(id: string, from: Endpoint): number {
    const a = this.#o.roster.get(id)?.addresses.find((x) => x.address === from.address);
    return a?.port ?? from.port;
  }
}
