/**
 * IP Messenger, FeiQ and iptux users, as a service (`--ipmsg`): the IP
 * Messenger state machine on UDP 2425, behind the same per-source limits as
 * lanchat's sockets, storing what its users send in the same history and
 * carrying messages to them. Loaded only with `--ipmsg` (its GBK codec costs
 * every daemon ~1.3 MB otherwise).
 *
 * @module
 */
import type { DaemonEvent } from "../../api/types.ts";
import { logger } from "../../common/log.ts";
import type { Endpoint } from "../../protocol/discovery.ts";
import {
  Ipmsg,
  type IpmsgOptions,
  type IpmsgReceipt,
  MESSAGE_BURST,
  MESSAGE_RATE_PER_S,
} from "../../protocol/ipmsg.ts";
import { type GroupCopy, timeOrderedId } from "../../protocol/messaging.ts";
import { parseSealed, type SealedInfo, sealedText } from "../../protocol/sealed.ts";
import type { SourceLimits } from "../../security/admission.ts";
import { RateLimiter } from "../../security/rate_limit.ts";
import type { MessageRef, Store, StoredMessage } from "../../storage/store.ts";
import { IPMSG, peekIpmsgMode } from "../../wire/ipmsg_command.ts";
import type { Notices } from "../notices.ts";
import type { Outgoing, Service, ServiceContext } from "../service.ts";
import { NOTHING } from "../service.ts";
import type { Targets } from "../targets.ts";
import type { OnlinePeer } from "./lanchat.ts";
import type { Carrier } from "./messaging.ts";

export const IPMSG_SOCKET = "ipmsg";

/** IP Messenger modes limited like hellos: entries, absence and exit. */
const ENTRY_MODES = new Set<number>([IPMSG.BR_ENTRY, IPMSG.ANSENTRY, IPMSG.BR_ABSENCE, IPMSG.BR_EXIT]);

export class IpmsgService implements Service, Carrier {
  readonly name = "ipmsg";
  readonly sockets = [IPMSG_SOCKET] as const;
  /** Its transmits wait for the group commit: a message is sent once it is stored. */
  readonly waitsForCommit = true;
  readonly ipmsg: Ipmsg;
  #store: Store;
  #limits: SourceLimits;
  #notices: Notices;
  #known: (peer: string) => boolean;
  #ctx!: ServiceContext;
  #events: DaemonEvent[] = [];
  /** Sends of messages stored in the open group transaction, done once it commits. */
  #afterCommit: ((now: number) => void)[] = [];
  /** Messages stored since the last commit: their RECVMSGs are withdrawn if it fails. */
  #uncommitted: IpmsgReceipt[] = [];
  #log = logger("daemon");

  constructor(o: {
    ipmsg: Omit<IpmsgOptions, "allowMessage">;
    store: Store;
    limits: SourceLimits;
    notices: Notices;
    targets: Targets;
    /** Peers seen before as IP Messenger users (messages to them wait here while they are away). */
    knownIpmsg: (peer: string) => boolean;
  }) {
    this.#store = o.store;
    this.#limits = o.limits;
    this.#notices = o.notices;
    this.#known = o.knownIpmsg;
    // At most MESSAGE_BURST messages stored from one address, then MESSAGE_RATE_PER_S a second.
    const budget = new RateLimiter({ rate: MESSAGE_RATE_PER_S, burst: MESSAGE_BURST });
    this.ipmsg = new Ipmsg({ ...o.ipmsg, allowMessage: (address, now) => budget.allow(address, now) });
    // IPv4 broadcasts only: IP Messenger has no IPv6 (its socket is 0.0.0.0), lanchat's multicast group is its own.
    o.targets.onRefresh((t) =>
      this.ipmsg.setBroadcasts(t.broadcast.map((b) => b.address).filter((a) => !a.includes(":")))
    );
  }

  start(ctx: ServiceContext, now: number): void {
    this.#ctx = ctx;
    this.ipmsg.start(now);
    // Messages to IP Messenger peers left from the last run go out when those peers appear.
    for (const peer of this.#store.outboxCounts().keys()) {
      if (!this.#known(peer)) continue;
      for (const m of this.#store.outbox(peer)) this.ipmsg.send(m.id, m.peer, m.text, now);
    }
  }

  onDatagram(_socket: string, bytes: Uint8Array, from: Endpoint, now: number): void {
    // The same per-source limits as lanchat's sockets, before any decoding:
    // everything, and entries (like hellos) much lower.
    const mode = peekIpmsgMode(bytes);
    const entry = mode !== undefined && ENTRY_MODES.has(mode);
    const l = this.#limits;
    if (!l.ipmsg.allow(from.address, now) || (entry && !l.discovery.allow(from.address, now))) {
      this.ipmsg.counters.received++;
      this.ipmsg.counters.dropped["rate-limit"]++;
      return this.#notices.flood(from.address, "IP Messenger datagrams", "over its rate limit");
    }
    this.ipmsg.handleDatagram(bytes, from, now);
  }

  carries(peer: string): boolean {
    return this.ipmsg.get(peer) !== undefined || this.#known(peer);
  }

  /**
   * Stores and sends a message; a text longer than one IP Messenger packet
   * (8 KiB) goes as several messages, cut at a line or a space where it can
   * be (IP Messenger has no fragments). Returns the last of them.
   */
  send(to: string, text: string, now: number, copy?: GroupCopy, ref?: MessageRef): StoredMessage {
    // A sealed text is cut without its line, and each part sealed. IP Messenger has no replies, edits or
    // deletions: the text goes as it is (an edit's "(edited) …", a deletion's line), the reference stays here.
    const sealed = parseSealed(text);
    let last: StoredMessage | undefined;
    for (const part of this.#parts(to, sealed?.text ?? text)) {
      last = this.#sendOne(to, sealed ? sealedText(part) : part, now, undefined, copy, ref);
    }
    return last!;
  }

  openedSealed(peer: string, info: SealedInfo, now: number): void {
    this.ipmsg.openedSealed(peer, info.packetNo, info.readCheck, now);
    this.#ctx.changed();
  }

  /** The text cut into parts that each fit one packet for this peer. */
  #parts(to: string, text: string): string[] {
    const parts: string[] = [];
    let rest = [...text];
    while (rest.length > 0) {
      if (this.ipmsg.fits(to, rest.join(""))) {
        parts.push(rest.join(""));
        break;
      }
      // The longest prefix that fits (code points, never half a character), then back to a line or a space.
      let lo = 1;
      let hi = rest.length;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (this.ipmsg.fits(to, rest.slice(0, mid).join(""))) lo = mid;
        else hi = mid - 1;
      }
      let cut = lo;
      const line = rest.slice(0, lo).lastIndexOf("\n");
      const space = rest.slice(0, lo).lastIndexOf(" ");
      if (line > lo / 2) cut = line + 1;
      else if (space > lo / 2) cut = space + 1;
      parts.push(rest.slice(0, cut).join(""));
      rest = rest.slice(cut);
    }
    return parts;
  }

  /** Stores one message and sends it once the commit has made it durable (with `files`: attached to it). */
  #sendOne(
    to: string,
    text: string,
    now: number,
    files?: { packetNo: string; attach: string },
    copy?: GroupCopy,
    ref?: MessageRef,
  ): StoredMessage {
    const online = this.ipmsg.get(to) !== undefined;
    const message = this.#store.insertOutgoing({
      id: timeOrderedId(this.#ctx.wall(now)),
      peer: to,
      text,
      sentAt: this.#ctx.wall(now),
      status: online ? "sent" : "queued",
      ...copy,
      ...(ref ? { ref } : {}),
    });
    // Sent once it is stored: after the commit (and not at all if that fails).
    this.#afterCommit.push((at) => {
      this.ipmsg.send(message.id, to, text, at, files);
      this.#events.push({ type: online ? "sent" : "queued", message });
    });
    return message;
  }

  /**
   * Stores a message that offers files (an attachment part, see
   * wire/ipmsg_files.ts) and sends it when it can; its packet number is what
   * the user's requests for the files will name.
   */
  sendFiles(to: string, text: string, attach: string, now: number): { message: StoredMessage; packetNo: number } {
    const packetNo = this.ipmsg.packetNumber();
    const message = this.#sendOne(to, text, now, { packetNo, attach });
    this.#ctx.changed();
    return { message, packetNo: Number(packetNo) };
  }

  onCommitted(now: number): void {
    this.#uncommitted = [];
    const sends = this.#afterCommit;
    this.#afterCommit = [];
    for (const send of sends) send(now);
  }

  onCommitFailed(): void {
    this.#afterCommit = [];
    for (const r of this.#uncommitted) this.ipmsg.unstored(r);
    this.#uncommitted = [];
  }

  outboxSize(): number {
    return this.ipmsg.pending().length;
  }

  handleTimeout(now: number): void {
    this.ipmsg.handleTimeout(now);
  }

  pollTimeout(): number | undefined {
    return this.ipmsg.pollTimeout();
  }

  drainTransmits(): readonly Outgoing[] {
    const out = this.ipmsg.drainTransmits();
    if (out.length === 0) return NOTHING;
    return out.map((t) => ({ socket: IPMSG_SOCKET, to: t.to, bytes: t.bytes, kind: "ipmsg" }));
  }

  drainEvents(): readonly DaemonEvent[] {
    const now = this.#ctx.io.now();
    for (const event of this.ipmsg.drainEvents()) {
      switch (event.type) {
        case "joined":
        case "updated": {
          const p = event.peer;
          if (event.type === "joined") {
            this.#log.info("IP Messenger peer joined: {name} ({user}@{host}, {client}) at {address}", {
              name: p.nickname,
              user: p.user,
              host: p.host,
              client: p.version,
              address: p.address,
              id: p.id,
            });
          }
          this.#events.push({ type: event.type === "joined" ? "ipmsg-joined" : "ipmsg-updated", peer: p });
          break;
        }
        case "left":
          this.#log.info("IP Messenger peer left: {name} ({id}), reason {reason}", {
            name: event.peer.nickname,
            id: event.peer.id,
            reason: event.reason,
          });
          this.#events.push({ type: "ipmsg-left", peer: event.peer, reason: event.reason });
          break;
        case "refused":
          if (event.reason === "roster-full") {
            this.#notices.flood(
              event.address,
              "IP Messenger entries",
              "the roster is full (--max-peers, 16 per address)",
            );
          } else {
            this.#notices.flood(event.address, "IP Messenger messages", "more than 120 a minute from one address");
          }
          break;
        case "message":
          // A sender with no entry (or no room in the roster) is remembered by its message.
          this.#events.push({ type: "ipmsg-updated", peer: event.peer });
          try {
            const message = this.#store.receiveUnordered({
              id: timeOrderedId(event.sentAt),
              peer: event.peer.id,
              text: event.text,
              sentAt: event.sentAt,
              receivedAt: this.#ctx.wall(now),
            });
            this.#uncommitted.push(event.receipt);
            this.#events.push({ type: "message", message });
            if (event.files) {
              this.#events.push({
                type: "ipmsg-files",
                peer: event.peer,
                packetNo: event.files.packetNo,
                files: event.files.list,
                messageId: message.id,
              });
            }
          } catch (e) {
            // Not kept, so not acknowledged: its RECVMSG (held until the
            // commit) is withdrawn and the sender's retransmission is new.
            this.ipmsg.unstored(event.receipt);
            this.#events.push({ type: "store-error", error: (e as Error).message });
          }
          break;
        case "released":
          this.#events.push({ type: "ipmsg-released", peerId: event.peerId, packetNo: event.packetNo });
          break;
        case "read": {
          // A sealed message of ours was opened by its reader.
          try {
            this.#store.markReadOne(event.messageId, this.#ctx.wall(now));
            const message = this.#store.message(event.messageId);
            if (message) this.#events.push({ type: "read", message });
          } catch (e) {
            this.#events.push({ type: "store-error", error: (e as Error).message });
          }
          break;
        }
        case "delivered": {
          this.#store.markDelivered(event.messageId, this.#ctx.wall(now), event.rttMs);
          const message = this.#store.message(event.messageId);
          if (message) this.#events.push({ type: "delivered", message, rttMs: event.rttMs });
          break;
        }
      }
    }
    const out = this.#events;
    this.#events = [];
    return out;
  }

  shutdown(): void {
    this.ipmsg.shutdown();
  }

  nameOf(id: string): string | undefined {
    return this.ipmsg.get(id)?.nickname;
  }

  /** Its users online, for peer lookup. */
  onlinePeers(): OnlinePeer[] {
    return this.ipmsg.peers().map((p) => ({
      id: p.id,
      name: p.nickname,
      hostname: p.host,
      endpoints: [`${p.address}:${p.port}`],
      protocol: "ipmsg" as const,
      user: p.user,
    }));
  }

  status(): Record<string, unknown> {
    return { ipmsg: { port: this.ipmsg.port, peers: this.ipmsg.size, ...this.ipmsg.counters } };
  }
}
