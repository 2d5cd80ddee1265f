/**
 * Conversations: what the API does with messages, whichever protocol
 * carries them. Sending picks the carrier of each peer (IP Messenger for
 * its users, lanchat's messaging for the rest) and answers once the group
 * commit has made the message durable; waiting for delivery, history, and a
 * stored message as JSON. A service with no socket: it listens to the bus
 * for deliveries, and logs messages coming and going.
 *
 * @module
 */
import type { DaemonEvent, MessageJson } from "../api/types.ts";
import { logger } from "../common/log.ts";
import { FILES_MARK, noteSummary, parseNote } from "../protocol/files.ts";
import { isAutoReply, withoutAutoMark } from "../protocol/auto_reply.ts";
import { DAMAGED } from "../storage/integrity.ts";
import {
  type HistoryQuery,
  type MessageRef,
  type SearchResult,
  type Store,
  type StoredMessage,
  StoreError,
} from "../storage/store.ts";
import type { Directory } from "./directory.ts";
import type { Outgoing, Service, ServiceContext } from "./service.ts";
import { NOTHING } from "./service.ts";
import type { Carrier } from "./services/messaging.ts";
import type { GroupCopy } from "../protocol/messaging.ts";
import { GROUP_MARK, parseGroupLine, withoutGroupLine } from "../protocol/groups.ts";
import { parseSealed, SEALED_MARK, sealedText } from "../protocol/sealed.ts";

export class Conversations implements Service {
  readonly name = "conversations";
  #store: Store;
  #directory: Directory;
  /** In order of preference: the first that carries a peer sends to it. */
  #carriers: Carrier[];
  #ctx!: ServiceContext;
  /** Callers of {@link waitDelivered}, by message id. */
  #waiting = new Map<string, Set<(m: StoredMessage) => void>>();
  #log = logger("daemon");

  /** Whether read receipts are sent (`--no-read-receipts` turns them off). */
  #receipts: boolean;

  constructor(store: Store, directory: Directory, carriers: Carrier[], options: { readReceipts?: boolean } = {}) {
    this.#receipts = options.readReceipts ?? true;
    this.#store = store;
    this.#directory = directory;
    this.#carriers = carriers;
  }

  start(ctx: ServiceContext): void {
    this.#ctx = ctx;
  }

  /** Messages waiting for delivery, every carrier's. */
  outboxSize(): number {
    return this.#carriers.reduce((n, c) => n + c.outboxSize(), 0);
  }

  /**
   * Stores and sends a message. Resolves once it is stored (committed), with
   * status queued or sent; delivery is reported by a "delivered" event.
   *
   * @throws {RangeError} for a text too long or a message to this node.
   * @throws {StoreError} when it cannot be stored: then nothing is sent.
   */
  async sendMessage(to: string, text: string, ref?: MessageRef): Promise<StoredMessage> {
    const [result] = await this.sendMessages([{ to, text, ...(ref ? { ref } : {}) }]);
    if (result instanceof Error) throw result;
    return result!;
  }

  /**
   * Stores and sends messages under one commit. Resolves once they are
   * stored, with each one's stored message or the error (RangeError,
   * StoreError) that kept it from being stored; rejects with a StoreError
   * when the commit fails (then none of them is stored or sent).
   */
  async sendMessages(
    items: { to: string; text: string; copy?: GroupCopy; ref?: MessageRef }[],
  ): Promise<(StoredMessage | Error)[]> {
    const now = this.#ctx.io.now();
    const results: (StoredMessage | Error)[] = new Array(items.length);
    // Each carrier that can store a batch in one transaction gets its items at once (in order).
    const batches = new Map<Carrier, number[]>();
    items.forEach(({ to, text, copy, ref }, at) => {
      try {
        const carrier = this.#carriers.find((c) => c.carries(to));
        if (!carrier) {
          throw new RangeError(
            this.#directory.get(to)?.protocol === "ipmsg"
              ? `${this.#directory.peerName(to)} is an IP Messenger user: start the daemon with --ipmsg to write to it`
              : `No protocol carries messages to ${to}`,
          );
        }
        if (carrier.sendMany) {
          const batch = batches.get(carrier) ?? [];
          batches.set(carrier, batch);
          batch.push(at);
        } else results[at] = carrier.send(to, text, now, copy, ref);
      } catch (e) {
        if (!(e instanceof RangeError || e instanceof StoreError)) throw e;
        results[at] = e;
      }
    });
    for (const [carrier, ats] of batches) {
      carrier.sendMany!(ats.map((at) => items[at]!), now).forEach((r, i) => results[ats[i]!] = r);
    }
    this.#ctx.changed();
    await this.#ctx.durable();
    return results;
  }

  /**
   * Sends an IP Messenger user a sealed message: its client shows it closed
   * until opened, and says when it was (the message becomes read).
   *
   * @throws {RangeError} for a lanchat peer (they send a read receipt for every message) or as sendMessage.
   */
  sendSealed(to: string, text: string): Promise<StoredMessage> {
    const carrier = this.#carriers.find((c) => c.carries(to));
    if (carrier && !carrier.openedSealed) {
      return Promise.reject(
        new RangeError(
          `Sealed messages are IP Messenger's; ${
            this.#directory.peerName(to)
          } uses lanchat, which tells you when each message is read: send it without --sealed`,
        ),
      );
    }
    return this.sendMessage(to, sealedText(text));
  }

  /** Resolves with the delivered (or refused) message, or undefined after `timeoutMs`. */
  waitDelivered(id: string, timeoutMs: number): Promise<StoredMessage | undefined> {
    const stored = this.#store.message(id);
    const already = stored && this.#asItStands(stored);
    if (already?.status === "delivered" || already?.status === "failed") return Promise.resolve(already);
    return new Promise((resolve) => {
      const set = this.#waiting.get(id) ?? new Set();
      this.#waiting.set(id, set);
      const done = (m: StoredMessage | undefined) => {
        clearTimeout(timer);
        set.delete(settle);
        if (set.size === 0) this.#waiting.delete(id);
        resolve(m);
      };
      const settle = (m: StoredMessage) => done(m);
      set.add(settle);
      const timer = setTimeout(() => done(undefined), timeoutMs);
    });
  }

  onEvent(event: DaemonEvent): void {
    if (event.type === "store-error") {
      // A damaged database is logged once, with what to do (services/storage.ts), not at every refused message.
      if (!event.error.includes(DAMAGED)) this.#log.error("Storage error: {error}", { error: event.error });
      return;
    }
    if (event.type !== "message" && event.type !== "delivered" && event.type !== "failed") return;
    const m = event.message;
    const name = this.#directory.peerName(m.peer);
    if (event.type === "message") {
      // Debug, like deliveries: at thousands a second, a line each would be the daemon's main cost.
      this.#log.debug("Message from {name}: {bytes} bytes", { name, peer: m.peer, id: m.id, bytes: m.text.length });
      return;
    }
    if (event.type === "delivered") {
      this.#log.debug("Delivered {id} to {name} in {rttMs} ms", { id: m.id, name, rttMs: event.rttMs });
    } else {
      this.#log.warn("Message {id} to {name} failed: {error}", { id: m.id, name, error: event.error });
    }
    const settled = this.#asItStands(m);
    for (const settle of this.#waiting.get(m.id) ?? []) settle(settled);
  }

  /**
   * Marks what came from `peer` in one conversation (`group`'s, or the
   * direct one) read, up to `upTo` (a cursor; default: all), and tells the
   * peer with a read receipt unless receipts are off. Returns how many
   * messages were newly marked.
   */
  markRead(peer: string, upTo?: number, group?: string): number {
    const now = this.#ctx.io.now();
    const r = this.#store.markReadIn(
      peer,
      upTo ?? this.#store.lastCursor(),
      this.#ctx.wall(now),
      `\n${SEALED_MARK}`,
      group,
    );
    if (!r) return 0;
    if (this.#receipts && r.marked > 0) {
      this.#carriers.find((c) => c.carries(peer))?.markRead?.(peer, r.lastId, now, group);
    }
    this.#ctx.changed();
    return r.marked;
  }

  /**
   * Opens a sealed message (by id or a unique id prefix): it is read, and
   * its sender is told (IP Messenger's READMSG) the first time.
   *
   * @throws {RangeError} when there is no such message or it is not a sealed one received.
   */
  openSealed(idOrPrefix: string): StoredMessage {
    const m = this.#store.messageByPrefix(idOrPrefix);
    if (!m) throw new RangeError(`No message ${idOrPrefix} (or more than one starts so: give more of its id)`);
    const sealed = m.direction === "in" ? parseSealed(m.text) : undefined;
    if (!sealed) throw new RangeError(`Message ${m.id} is not a sealed message you received`);
    if (m.readAt !== undefined) return m;
    const now = this.#ctx.io.now();
    const at = this.#ctx.wall(now);
    this.#store.markReadOne(m.id, at);
    if (sealed.info) this.#carriers.find((c) => c.carries(m.peer))?.openedSealed?.(m.peer, sealed.info, now);
    this.#ctx.changed();
    return { ...m, readAt: at };
  }

  /** A page of history, oldest first (see {@link Store.history}). */
  history(q: HistoryQuery): StoredMessage[] {
    return this.#store.history(q);
  }

  /** The first and last cursor of a page of history (see {@link Store.historyRange}). */
  historyRange(q: HistoryQuery): { first: number; last: number; count: number } | undefined {
    return this.#store.historyRange(q);
  }

  /** The first cursor of what entered history at or after `time`. */
  cursorAt(time: number): number {
    return this.#store.cursorAt(time);
  }

  /** Messages containing a text, newest first (see {@link Store.search}). */
  search(q: { text: string; peer?: string; group?: string; before?: number; limit?: number }): SearchResult {
    return this.#store.search(q);
  }

  /** The names of groups, once the group service is there (it is built on this). */
  groupName: (id: string) => string | undefined = () => undefined;

  /**
   * A message written to a group with the status its copies add up to:
   * queued or sent while any copy waits, then delivered (failed when every
   * copy failed); delivered and read at the latest of its copies' times,
   * read once every copy delivered is.
   */
  groupStatus(m: StoredMessage): StoredMessage & { copies: StoredMessage[] } {
    const copies = this.#store.copies(m.id);
    const waiting = copies.filter((c) => c.status === "queued" || c.status === "sent");
    const delivered = copies.filter((c) => c.status === "delivered");
    const out: StoredMessage & { copies: StoredMessage[] } = { ...m, copies };
    if (waiting.length > 0) out.status = waiting.some((c) => c.status === "sent") ? "sent" : "queued";
    else out.status = delivered.length === 0 && copies.length > 0 ? "failed" : "delivered";
    if (out.status === "delivered" && delivered.length > 0) {
      out.deliveredAt = Math.max(...delivered.map((c) => c.deliveredAt ?? 0));
      if (delivered.every((c) => c.readAt !== undefined)) out.readAt = Math.max(...delivered.map((c) => c.readAt!));
    }
    return out;
  }

  /** A stored message as it stands: one written here to a group with its copies' status added up, and the copies. */
  #asItStands(m: StoredMessage): StoredMessage & { copies?: StoredMessage[] } {
    return m.status === "group" ? this.groupStatus(m) : m;
  }

  /** A stored message as the API shows it (`quoting`: with the message it answers, if known). */
  messageJson(stored: StoredMessage, quoting = true): MessageJson {
    const m = this.#asItStands(stored);
    const iso = (t: number | undefined) => t === undefined ? undefined : new Date(t).toISOString();
    const out: MessageJson = {
      id: m.id,
      cursor: m.cursor,
      direction: m.direction,
      peer: { id: m.peer, name: this.#directory.peerName(m.peer) },
      seq: m.seq,
      text: m.text,
      status: m.status,
      sentAt: iso(m.sentAt)!,
    };
    if (m.receivedAt !== undefined) out.receivedAt = iso(m.receivedAt);
    if (m.deliveredAt !== undefined) out.deliveredAt = iso(m.deliveredAt);
    if (m.rttMs !== undefined) out.rttMs = Math.round(m.rttMs * 1000) / 1000;
    if (m.gapBefore) out.gapBefore = m.gapBefore;
    if (m.late) out.late = true;
    if (m.error) out.error = m.error;
    if (m.readAt !== undefined) out.readAt = iso(m.readAt);
    const encrypted = m.copies ? allOf(m.copies.map((c) => c.encrypted)) : m.encrypted;
    if (encrypted !== undefined) out.encrypted = encrypted;
    else if (this.#directory.get(m.peer)?.protocol === "ipmsg") out.encrypted = false;
    if (isAutoReply(m.text)) {
      out.text = withoutAutoMark(m.text);
      out.autoReply = true;
    }
    const note = m.text.includes(FILES_MARK) ? parseNote(m.text) : undefined;
    if (note) {
      out.text = noteSummary(note);
      out.files = note;
    }
    if (m.group) this.#groupJson(m, out, m.copies);
    const sealed = m.text.includes(SEALED_MARK) ? parseSealed(out.text) : undefined;
    if (sealed) {
      const opened = m.readAt !== undefined;
      out.sealed = { opened };
      // A sealed message received is read by opening it (POST /messages/open), not by listing it.
      out.text = m.direction === "in" && !opened ? "" : sealed.text;
    }
    if (m.ref?.kind === "reply") {
      out.replyTo = m.ref.id;
      const quote = quoting ? this.#quote(m) : undefined;
      if (quote) out.quote = quote;
    }
    if (m.editedAt !== undefined) out.editedAt = m.editedAt;
    if (m.deletedAt !== undefined) {
      out.deletedAt = m.deletedAt;
      out.text = "";
    }
    return out;
  }

  /**
   * The message a reply answers, as the reply shows it: found by its id, or
   * in a group by the id of the message as written to it (each member's copy
   * has its own); undefined when it is not here, or not of the reply's conversation
   * (a peer naming a message of another one learns nothing by it, and
   * cannot dress up its words as an answer to it).
   */
  #quote(reply: StoredMessage): MessageJson["quote"] {
    const id = reply.ref!.id;
    // In a group a reply names the message as written to the group: here, that member's copy received.
    let m = this.#store.message(id) ?? (reply.group ? this.#store.byGroupMessage(reply.group, id) : undefined);
    if (m?.copyOf !== undefined) m = this.#store.message(m.copyOf);
    if (!m || m.ref?.kind === "edit" || m.ref?.kind === "delete") return undefined;
    const sameConversation = reply.group !== undefined
      ? m.group === reply.group
      : m.group === undefined && m.peer === reply.peer;
    if (!sameConversation) return undefined;
    const shown = this.messageJson(m, false);
    const chars = [...shown.text];
    return {
      id: m.id,
      text: chars.length > QUOTE_CHARS ? chars.slice(0, QUOTE_CHARS - 1).join("") + "…" : shown.text,
      direction: m.direction,
      ...(m.deletedAt !== undefined ? { deleted: true as const } : {}),
    };
  }

  /** A group message's parts of its JSON: the text without its group line, the group, each member's copy. */
  #groupJson(m: StoredMessage, out: MessageJson, copies: StoredMessage[] | undefined): void {
    const line = m.text.includes(GROUP_MARK) ? parseGroupLine(m.text) : undefined;
    const name = this.groupName(m.group!) ?? line?.group.name ?? m.group!.slice(0, 12);
    out.text = withoutGroupLine(out.text);
    out.group = { id: m.group!, name, ...(line?.change ? { change: line.change.op } : {}) };
    if (copies) {
      // Written here to the group: the group stands where the peer would.
      out.peer = { id: m.group!, name };
      out.recipients = copies.map((c) => ({
        id: c.peer,
        name: this.#directory.peerName(c.peer),
        status: c.status,
        ...(c.readAt !== undefined ? { readAt: new Date(c.readAt).toISOString() } : {}),
      }));
    }
  }

  handleTimeout(): void {}

  pollTimeout(): undefined {
    return undefined;
  }

  drainTransmits(): readonly Outgoing[] {
    return NOTHING;
  }

  drainEvents(): readonly DaemonEvent[] {
    return NOTHING;
  }
}

/** Longest text of a quoted message, in characters. */
export const QUOTE_CHARS = 200;

/** A group message's mark from its copies': false when one went clear, true when all went encrypted, else not known. */
function allOf(marks: (boolean | undefined)[]): boolean | undefined {
  if (marks.includes(false)) return false;
  return marks.length > 0 && marks.every((b) => b === true) ? true : undefined;
}
