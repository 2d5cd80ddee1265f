/**
 * Replies, edits and deletions as the API makes them: which message a reply
 * may answer, which messages this node may edit or delete (its own, written
 * here, not failed, not a file offer or another machine line), and how an
 * edit or deletion goes out: a message of its own to the peer (or to each
 * member who got a group message), carried like any other, then the message
 * changed here and a `message-updated` event. The storage rules are in
 * storage/thread.ts, the wire's in wire/packets.ts (`MsgRef`).
 *
 * What a peer that cannot apply it sees: a lanchat peer of a previous
 * version and an IP Messenger user get an edit as a new message,
 * `(edited) new text`, and a deletion as one short line naming when the
 * message was sent (see {@link deletedLine}).
 *
 * @module
 */
import { HttpError } from "../api/request.ts";
import type { DaemonEvent } from "../api/types.ts";
import { withoutGroupLine } from "../protocol/groups.ts";
import { MACHINE_LINE } from "../protocol/machine_line.ts";
import { MAX_TEXT_BYTES } from "../wire/mod.ts";
import { EDITED_PREFIX, type Store, type StoredMessage, StoreError } from "../storage/store.ts";
import type { Conversations } from "./conversations.ts";
import type { Service, ServiceContext } from "./service.ts";
import { NOTHING } from "./service.ts";
import type { GroupsService } from "./services/groups.ts";

/** The line a peer that cannot delete a message gets instead (a previous version, IP Messenger). */
export function deletedLine(sentAt: number): string {
  const d = new Date(sentAt);
  const two = (n: number) => String(n).padStart(2, "0");
  const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  return `(deleted the message sent ${day} ${two(d.getHours())}:${two(d.getMinutes())})`;
}

/** Where a reply is written: to a peer, or to a group. */
export type ReplyPlace = { peer: string } | { group: string };

export class ThreadService implements Service {
  readonly name = "thread";
  #store: Store;
  #conversations: Conversations;
  #groups: GroupsService;
  #ctx!: ServiceContext;
  #events: DaemonEvent[] = [];

  constructor(o: { store: Store; conversations: Conversations; groups: GroupsService }) {
    this.#store = o.store;
    this.#conversations = o.conversations;
    this.#groups = o.groups;
  }

  start(ctx: ServiceContext): void {
    this.#ctx = ctx;
  }

  /**
   * The message a reply written to `place` answers, by id (or a unique
   * prefix of 8 hex digits or more): one of that conversation's.
   *
   * @throws {HttpError} 400 when it is not a message of that conversation.
   */
  replyTarget(replyTo: string, place: ReplyPlace): string {
    const m = /^[0-9a-f]{8,32}$/.test(replyTo) ? this.#store.messageByPrefix(replyTo) : undefined;
    const shown = m && m.copyOf === undefined && m.ref?.kind !== "edit" && m.ref?.kind !== "delete";
    const here = shown && ("group" in place ? m.group === place.group : m.peer === place.peer && !m.group);
    if (!here) {
      throw new HttpError(
        400,
        `Field "replyTo" must be the id of a message of this conversation; ${replyTo} is not one (or more than one starts so)`,
      );
    }
    return m.id;
  }

  /**
   * Replaces the text of a message of this node's, here and at its peer.
   * Resolves with it edited, once the edit is stored (committed).
   *
   * @throws {HttpError} 404 no such message; 403 not this node's to change; 409 deleted already; 400, 507 as sending.
   */
  async edit(id: string, text: string): Promise<StoredMessage> {
    const m = this.#own(id, "edit");
    // The prefix is for peers that cannot apply the edit; a text at the very limit goes without it.
    const fits = new TextEncoder().encode(EDITED_PREFIX + text).length <= MAX_TEXT_BYTES;
    const wire = fits ? EDITED_PREFIX + text : text;
    if (m.status === "group") {
      await this.#send(() => this.#groups.amend(m, "edit", wire));
      return this.#changed(m, "edit", this.#groups.lined(m.group!, m.id, text) ?? text);
    }
    await this.#send(() => this.#conversations.sendMessage(m.peer, wire, { kind: "edit", id: m.id }));
    return this.#changed(m, "edit", text);
  }

  /**
   * Deletes a message of this node's, here (its text is gone) and at its
   * peer. Resolves with it deleted, once stored (committed).
   *
   * @throws {HttpError} as {@link edit}.
   */
  async delete(id: string): Promise<StoredMessage> {
    const m = this.#own(id, "delete");
    const wire = deletedLine(m.sentAt);
    if (m.status === "group") await this.#send(() => this.#groups.amend(m, "delete", wire));
    else await this.#send(() => this.#conversations.sendMessage(m.peer, wire, { kind: "delete", id: m.id }));
    return this.#changed(m, "delete", "");
  }

  /** A message this node may edit or delete, by id or unique prefix. */
  #own(id: string, what: "edit" | "delete"): StoredMessage {
    const m = /^[0-9a-f]{8,32}$/.test(id) ? this.#store.messageByPrefix(id) : undefined;
    if (!m || m.copyOf !== undefined || m.ref?.kind === "edit" || m.ref?.kind === "delete") {
      throw new HttpError(404, `No message ${id} (or more than one starts so: give more of its id)`);
    }
    if (m.direction !== "out") {
      throw new HttpError(403, `Message ${m.id} was written by someone else: you can ${what} only your own`);
    }
    const status = m.status === "group" ? this.#conversations.groupStatus(m).status : m.status;
    if (status === "failed") {
      throw new HttpError(403, `Message ${m.id} never reached anyone (failed): send a new one instead`);
    }
    if (m.deletedAt !== undefined) throw new HttpError(409, `Message ${m.id} is deleted already`);
    if (withoutGroupLine(m.text).includes(MACHINE_LINE)) {
      throw new HttpError(
        403,
        `Message ${m.id} is not text you typed (a file offer, an automatic reply or a sealed message): it cannot be ${
          what === "edit" ? "edited" : "deleted"
        }`,
      );
    }
    return m;
  }

  /** Sends the edit or deletion; errors as HTTP. */
  async #send(send: () => Promise<unknown>): Promise<void> {
    try {
      await send();
    } catch (e) {
      if (e instanceof RangeError) throw new HttpError(400, e.message);
      if (e instanceof StoreError) throw new HttpError(507, `${e.message}; nothing was changed`);
      throw e;
    }
  }

  /** Changes the message here, and tells listeners. */
  async #changed(m: StoredMessage, kind: "edit" | "delete", text: string): Promise<StoredMessage> {
    let changed: StoredMessage;
    try {
      changed = this.#store.amendOwn(m.id, kind, text, this.#ctx.wall(this.#ctx.io.now()));
    } catch (e) {
      if (e instanceof StoreError) throw new HttpError(507, e.message);
      throw e;
    }
    this.#ctx.changed();
    await this.#ctx.durable();
    this.#events.push({ type: "message-updated", message: changed });
    this.#ctx.changed();
    return changed;
  }

  drainEvents(): readonly DaemonEvent[] {
    if (this.#events.length === 0) return NOTHING;
    const out = this.#events;
    this.#events = [];
    return out;
  }
}
