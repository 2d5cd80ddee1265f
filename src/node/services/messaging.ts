/**
 * Reliable messages between lanchat peers, as a service: the messaging state
 * machine (outbox, fragments, acks, retries, de-duplication, order) on the
 * lanchat link. It learns who is reachable from the roster's events and
 * from hellos (a changed address), and what it sends (acks of stored
 * messages, events about them) waits for the group commit. When a commit
 * fails, it starts over from the database.
 *
 * @module
 */
import type { DaemonEvent } from "../../api/types.ts";
import type { Endpoint } from "../../protocol/discovery.ts";
import { type GroupCopy, Messaging, type OutgoingItem } from "../../protocol/messaging.ts";
import type { SealedInfo } from "../../protocol/sealed.ts";
import type { MessageRef, Store, StoredMessage } from "../../storage/store.ts";
import type { MetricsWriter } from "../metrics.ts";
import type { Outgoing, Service, ServiceContext } from "../service.ts";
import { NOTHING } from "../service.ts";
import type { LanchatService } from "./lanchat.ts";
import { PeerRoutes } from "./peer_route.ts";

/** A service that carries messages to some peers (lanchat's own, IP Messenger's). */
export interface Carrier {
  /** Whether it is the one that carries messages to `peer`. */
  carries(peer: string): boolean;
  /**
   * Stores a message for `to` and sends it when it can; durable once the
   * group commit that follows has returned. With `copy`: the copy, for
   * `to`, of a message written to a group.
   *
   * @throws {RangeError} for a text it cannot carry.
   * @throws {StoreError} when it cannot be stored: then nothing is sent.
   */
  send(to: string, text: string, now: number, copy?: GroupCopy, ref?: MessageRef): StoredMessage;
  /**
   * Stores several messages (a batch) in one transaction and sends them when
   * it can: each one's stored message or the error (RangeError, StoreError)
   * that kept it from being stored. Optional: without it, {@link send} each.
   */
  sendMany?(items: readonly OutgoingItem[], now: number): (StoredMessage | Error)[];
  /** Messages waiting for delivery. */
  outboxSize(): number;
  /** Tells `peer` its messages up to `messageId` were read, in that message's conversation (`group`'s or the direct one). */
  markRead?(peer: string, messageId: string, now: number, group?: string): void;
  /** Tells `peer` its sealed message was opened (IP Messenger's READMSG). */
  openedSealed?(peer: string, info: SealedInfo, now: number): void;
}

export class MessagingService implements Service, Carrier {
  readonly name = "messaging";
  readonly waitsForCommit = true;
  messaging: Messaging;
  #lanchat: LanchatService;
  #newMessaging: () => Messaging;
  #foreign: (peer: string) => boolean;
  #routes = new PeerRoutes();
  #ctx!: ServiceContext;

  constructor(o: {
    lanchat: LanchatService;
    store: Store;
    self: { id: string; incarnation: number };
    wall: (now: number) => number;
    /** Peers another carrier (IP Messenger) owns: their outbox is not resumed here. */
    foreign: (peer: string) => boolean;
  }) {
    this.#lanchat = o.lanchat;
    this.#foreign = o.foreign;
    this.#newMessaging = () =>
      new Messaging({
        self: o.self,
        store: o.store,
        wall: o.wall,
        foreignPeer: o.foreign,
        encryptedWith: (peer) => o.lanchat.e2e?.encryptedWith(peer),
        // What a burst brings is stored in one transaction just before the group commit (beforeCommit).
        deferReleases: true,
      });
    this.messaging = this.#newMessaging();
    o.lanchat.route(
      ["msg", "ack", "read"],
      (packet, from, now) => {
        if (packet.kind === "ack") this.#routes.acked(packet.id, from);
        const dropped = packet.kind === "msg" || packet.kind === "ack" || packet.kind === "read"
          ? this.messaging.handlePacket(packet, from, now)
          : undefined;
        if (this.messaging.deferred) {
          if (this.#ctx?.commitSoon) this.#ctx.commitSoon();
          else this.messaging.flush(now);
        }
        return dropped;
      },
    );
    // Keep messaging's idea of where a peer is current (a changed address).
    o.lanchat.route(["hello"], (packet, _from, now) => {
      const peer = this.#lanchat.discovery.roster.get(packet.id);
      if (peer?.addresses[0]) this.messaging.peerUp(peer.id, peer.addresses[0], now);
      return undefined;
    });
  }

  start(ctx: ServiceContext): void {
    this.#ctx = ctx;
  }

  carries(peer: string): boolean {
    return !this.#foreign(peer);
  }

  send(to: string, text: string, now: number, copy?: GroupCopy, ref?: MessageRef): StoredMessage {
    return this.messaging.send(to, text, now, copy, ref);
  }

  sendMany(items: readonly OutgoingItem[], now: number): (StoredMessage | Error)[] {
    return this.messaging.sendMany(items, now);
  }

  outboxSize(): number {
    return this.messaging.pendingCount();
  }

  markRead(peer: string, messageId: string, now: number, group?: string): void {
    this.messaging.markRead(peer, messageId, now, group);
    this.#ctx.changed();
  }

  onEvent(event: DaemonEvent, now: number): void {
    if (event.type !== "joined" && event.type !== "restarted" && event.type !== "left") return;
    const p = event.peer;
    const first: Endpoint | undefined = p.addresses[0];
    if (event.type === "left") {
      this.messaging.peerDown(p.id);
      this.#routes.forget(p.id);
    } else if (first && event.type === "joined") this.messaging.peerUp(p.id, first, now);
    else if (first) this.messaging.peerRestarted(p.id, first, now);
  }

  handleTimeout(now: number): void {
    this.messaging.handleTimeout(now);
  }

  beforeCommit(now: number): void {
    this.messaging.flush(now);
  }

  pollTimeout(): number | undefined {
    return this.messaging.pollTimeout();
  }

  drainTransmits(): readonly Outgoing[] {
    const out = this.messaging.drainTransmits();
    if (out.length === 0) return NOTHING;
    const now = this.#ctx.io.now();
    // A message goes where the peer last acknowledged one, and to its other addresses in turn while none is.
    const roster = this.#lanchat.discovery.roster;
    const routed = out.map((t) => {
      if (t.kind !== "msg" || t.peer === undefined) return t;
      const to = this.#routes.pick(t.peer, roster.get(t.peer)?.addresses ?? []);
      return to ? { ...t, to: { address: to.address, port: to.port } } : t;
    });
    return this.#lanchat.outgoingAll(routed, now);
  }

  drainEvents(): readonly DaemonEvent[] {
    return this.messaging.drainEvents();
  }

  /** Nothing written since the last commit was stored: start over from the database, peers as the roster has them. */
  onCommitFailed(now: number): void {
    const counters = { ...this.messaging.counters, storeErrors: this.messaging.counters.storeErrors + 1 };
    this.messaging = this.#newMessaging();
    Object.assign(this.messaging.counters, counters);
    for (const p of this.#lanchat.discovery.roster.peers()) {
      if (p.addresses[0]) this.messaging.peerUp(p.id, p.addresses[0], now);
    }
  }

  status(): Record<string, unknown> {
    return { messaging: { ...this.messaging.counters } };
  }

  metrics(m: MetricsWriter): void {
    const mc = this.messaging.counters;
    const rows = [
      ["messagesSent", "lanchat_messages_sent_total", "Messages sent (first transmission)."],
      ["messagesDelivered", "lanchat_messages_delivered_total", "Messages acknowledged by their peer."],
      ["messagesReceived", "lanchat_messages_received_total", "Messages received and stored."],
      ["duplicates", "lanchat_message_duplicates_total", "Duplicate messages acknowledged and dropped."],
      ["fragmentsSent", "lanchat_fragments_sent_total", "Message fragments sent."],
      ["fragmentsRetransmitted", "lanchat_fragments_retransmitted_total", "Message fragments sent again."],
      ["acksSent", "lanchat_acks_sent_total", "Acks sent."],
      ["gapsSkipped", "lanchat_message_gaps_total", "Messages given up on by a sender, seen as gaps."],
      ["storeErrors", "lanchat_store_errors_total", "Failed database writes."],
      [
        "amendsRefused",
        "lanchat_message_amends_refused_total",
        "Edits and deletions refused: they named a message their sender did not send.",
      ],
      [
        "nulsReplaced",
        "lanchat_message_nuls_replaced_total",
        "Messages received (edits too) that held NUL characters, each replaced by U+FFFD before it was stored.",
      ],
    ] as const;
    for (const [key, name, help] of rows) m.single(name, "counter", help, mc[key]);
  }
}
