/**
 * Group conversations, as a service with no socket: it keeps the groups
 * this node is in (membership rules in protocol/groups.ts), writes a
 * group's messages (one message to the group in history, and a hidden copy
 * per member carried by that member's protocol: lanchat's messaging with the
 * group line, IP Messenger as a plain message with the group's name before
 * it), and learns groups and their changes from the group messages that
 * come in.
 *
 * @module
 */
import type { DaemonEvent, GroupJson, GroupLookup } from "../../api/types.ts";
import { logger } from "../../common/log.ts";
import {
  addMembers,
  cloneGroup,
  createGroup,
  currentMembers,
  decodeGroup,
  encodeGroup,
  type GroupChange,
  groupNameKey,
  GroupNameTakenError,
  type GroupState,
  isMember,
  leaveGroup,
  MAX_GROUP_MEMBERS,
  mergeGroup,
  parseGroupLine,
  plainGroupText,
  withGroupLine,
} from "../../protocol/groups.ts";
import { timeOrderedId } from "../../protocol/messaging.ts";
import { toHex } from "../../wire/packets.ts";
import type { Store, StoredMessage } from "../../storage/store.ts";
import type { Conversations } from "../conversations.ts";
import type { Directory } from "../directory.ts";
import type { Notices } from "../notices.ts";
import type { MetricsWriter } from "../metrics.ts";
import type { Service, ServiceContext } from "../service.ts";
import { NOTHING } from "../service.ts";

/** Most groups a node keeps: a peer that makes a new group per message cannot grow this without bound. */
export const MAX_GROUPS = 1000;

export class GroupsService implements Service {
  readonly name = "groups";
  #store: Store;
  #conversations: Conversations;
  #directory: Directory;
  #self: string;
  #groups = new Map<string, GroupState>();
  #events: DaemonEvent[] = [];
  #ctx!: ServiceContext;
  #log = logger("daemon");
  #randomId: () => string;
  /** Group messages whose group was not taken: the sender is not in it, or this node knows too many groups. */
  #refused = 0;
  #notices: Notices;

  constructor(o: {
    store: Store;
    conversations: Conversations;
    directory: Directory;
    notices: Notices;
    self: string;
    /** A new group id (32 hex digits); random unless a test says otherwise. */
    randomId?: () => string;
  }) {
    this.#store = o.store;
    this.#conversations = o.conversations;
    this.#directory = o.directory;
    this.#notices = o.notices;
    this.#self = o.self;
    this.#randomId = o.randomId ?? (() => toHex(crypto.getRandomValues(new Uint8Array(16))));
    for (const r of this.#store.groups()) {
      let g: GroupState | undefined;
      try {
        g = decodeGroup(JSON.parse(r.json));
      } catch { /* reported below */ }
      if (g) this.#groups.set(g.id, g);
      else this.#log.warn("Cannot read saved group {id}: not a group's JSON", { id: r.id });
    }
  }

  start(ctx: ServiceContext): void {
    this.#ctx = ctx;
  }

  /** Every group this node knows, as the API shows them, by name (then id: the same order after a restart). */
  list(): GroupJson[] {
    return [...this.#groups.values()].map((g) => this.json(g))
      .sort((a, b) => a.name.localeCompare(b.name) || (a.id < b.id ? -1 : 1));
  }

  /** A group's name, for a group id (undefined for an unknown one). */
  groupName(id: string): string | undefined {
    return this.#groups.get(id)?.name;
  }

  /**
   * A group by what a user typed: its id, an id prefix (4 digits or more),
   * its name, or its name in any case, or a name that reads the same
   * ({@link groupNameKey}: width, invisible characters); a leading `@` is
   * ignored. By name, a group this node is in comes before one it left.
   * `id:HEX` is an id prefix only (what the CLI suggests: no name takes
   * it); a bare id prefix that is also a group's name is ambiguous.
   */
  lookup(query: string): GroupLookup {
    const q = query.startsWith("@") ? query.slice(1) : query;
    const all = [...this.#groups.values()];
    const byId = this.#groups.get(q);
    if (byId) return { ok: true, group: this.json(byId) };
    const answer = (found: GroupState[]): GroupLookup =>
      found.length === 1
        ? { ok: true, group: this.json(found[0]!) }
        : { ok: false, reason: found.length ? "ambiguous" : "unknown", candidates: found.map((g) => this.json(g)) };
    // `@id:HEX` is an id prefix and nothing else: no group name can take it (the CLI suggests this form).
    const explicit = /^id:([0-9a-f]{4,31})$/.exec(q.toLowerCase());
    if (explicit) return answer(all.filter((g) => g.id.startsWith(explicit[1]!)));
    // A bare id prefix that a group's name also is: ambiguous, both listed, never the name.
    const prefixed = /^[0-9a-f]{4,31}$/.test(q) ? all.filter((g) => g.id.startsWith(q)) : [];
    const mine = all.filter((g) => isMember(g, this.#self));
    const key = groupNameKey(q);
    const tries = [
      mine.filter((g) => g.name === q),
      mine.filter((g) => g.name.toLowerCase() === q.toLowerCase()),
      mine.filter((g) => groupNameKey(g.name) === key),
      all.filter((g) => g.name === q),
      all.filter((g) => g.name.toLowerCase() === q.toLowerCase()),
      all.filter((g) => groupNameKey(g.name) === key),
      prefixed,
    ];
    for (let found of tries) {
      if (found.length > 0 && prefixed.some((g) => !found.includes(g))) found = [...new Set([...found, ...prefixed])];
      if (found.length === 1) return { ok: true, group: this.json(found[0]!) };
      if (found.length > 1) return { ok: false, reason: "ambiguous", candidates: found.map((g) => this.json(g)) };
    }
    return { ok: false, reason: "unknown", candidates: [] };
  }

  /** A group as the API shows it. */
  json(g: GroupState): GroupJson {
    const members = currentMembers(g).map((id) => ({
      id,
      name: id === this.#self ? "(you)" : this.#directory.peerName(id),
      ...(id === this.#self ? { self: true as const } : { online: this.#directory.isOnline(id) }),
    }));
    return { id: g.id, name: g.name, members, ...(isMember(g, this.#self) ? {} : { left: true }) };
  }

  /**
   * Creates a group of this node and `members` and tells them.
   *
   * @throws {RangeError} for a bad name, no other member, or too many.
   * @throws {GroupNameTakenError} when this node is in a group of that name
   *   already (one it left does not count), unless `sameName` says to make
   *   a second one.
   */
  async create(
    name: string,
    members: string[],
    options: { sameName?: boolean } = {},
  ): Promise<{ group: GroupJson; message: StoredMessage }> {
    if (!options.sameName) {
      const key = groupNameKey(name);
      const taken = [...this.#groups.values()].find((g) => isMember(g, this.#self) && groupNameKey(g.name) === key);
      if (taken) throw new GroupNameTakenError(taken.id, taken.name);
    }
    const others = [...new Set(members)].filter((m) => m !== this.#self);
    if (others.length === 0) throw new RangeError("A group needs at least one member besides you");
    if (others.length + 1 > MAX_GROUP_MEMBERS) {
      throw new RangeError(`A group has at most ${MAX_GROUP_MEMBERS} members; that would be ${others.length + 1}`);
    }
    const g = createGroup(this.#randomId(), name, this.#self, others);
    const names = others.map((m) => this.#directory.peerName(m)).join(", ");
    const message = await this.#write(g, `created the group “${name}” with ${names}`, {
      op: "create",
      by: this.#self,
      members: others,
    });
    return { group: this.json(g), message };
  }

  /**
   * Adds `members` to a group this node is in, and tells every member.
   *
   * @throws {RangeError} when this node is not a member, none is new, or the group would be too large.
   */
  async add(id: string, members: string[]): Promise<{ group: GroupJson; message: StoredMessage }> {
    const g = this.#mine(id);
    const fresh = [...new Set(members)].filter((m) => !isMember(g, m));
    if (fresh.length === 0) throw new RangeError(`Everyone named is already a member of “${g.name}”`);
    const size = currentMembers(g).length + fresh.length;
    if (size > MAX_GROUP_MEMBERS) {
      throw new RangeError(`A group has at most ${MAX_GROUP_MEMBERS} members; that would be ${size}`);
    }
    const next = cloneGroup(g);
    addMembers(next, this.#self, fresh);
    const names = fresh.map((m) => this.#directory.peerName(m)).join(", ");
    const message = await this.#write(next, `added ${names}`, { op: "add", by: this.#self, members: fresh });
    return { group: this.json(next), message };
  }

  /**
   * Leaves a group and tells its other members; its history stays.
   *
   * @throws {RangeError} when this node is not a member.
   */
  async leave(id: string): Promise<{ group: GroupJson; message: StoredMessage }> {
    const next = cloneGroup(this.#mine(id));
    // The members to tell are those before leaving: #write sends to the members of the new state, and this
    // node is no longer one of them, the others still are.
    leaveGroup(next, this.#self);
    const message = await this.#write(next, "left the group", { op: "leave", by: this.#self });
    return { group: this.json(next), message };
  }

  /**
   * Writes a message to a group this node is in: stored once, sent to each
   * other member. Resolves once stored (committed).
   *
   * @throws {RangeError} when this node is not a member or the text is too long.
   */
  send(id: string, text: string, replyTo?: string): Promise<StoredMessage> {
    return this.#write(this.#mine(id), text, undefined, replyTo);
  }

  /**
   * Edits or deletes a message this node wrote to a group: each member
   * whose copy went out gets an edit or deletion of that copy (IP Messenger
   * users it as a plain line). Resolves once they are stored, committed; the
   * group message itself is changed by the caller.
   */
  async amend(primary: StoredMessage, kind: "edit" | "delete", text: string): Promise<void> {
    const g = this.#groups.get(primary.group!);
    const copies = this.#store.copies(primary.id).filter((c) => c.status !== "failed");
    const name = g?.name ?? this.groupName(primary.group!) ?? primary.group!;
    const results = await this.#conversations.sendMessages(copies.map((c) => ({
      to: c.peer,
      text: this.#directory.get(c.peer)?.protocol === "ipmsg" || !g
        ? plainGroupText(name, text)
        : withGroupLine(text, { group: g, message: primary.id }),
      ref: { kind, id: c.id },
    })));
    for (const [i, r] of results.entries()) {
      if (!(r instanceof Error)) continue;
      this.#log.warn("Cannot tell {name} in “{group}” of the {kind}: {error}", {
        name: this.#directory.peerName(copies[i]!.peer),
        group: name,
        kind: kind === "edit" ? "edit" : "deletion",
        error: r.message,
      });
    }
  }

  /** A new text of message `id` written to a group (an edit) with its group line; undefined for a group not known. */
  lined(group: string, id: string, text: string): string | undefined {
    const g = this.#groups.get(group);
    return g && withGroupLine(text, { group: g, message: id });
  }

  #mine(id: string): GroupState {
    const g = this.#groups.get(id);
    if (!g) throw new RangeError(`No group ${id}`);
    if (!isMember(g, this.#self)) throw new RangeError(`You left “${g.name}”: someone in it must add you again`);
    return g;
  }

  /**
   * Stores the message written to the group (peer: the group's id; status
   * `group`), a copy for each other member, and the group as it now is,
   * under one commit.
   */
  async #write(g: GroupState, text: string, change?: GroupChange, replyTo?: string): Promise<StoredMessage> {
    const to = currentMembers(g).filter((m) => m !== this.#self);
    // A leave goes to those who stay; every other message to the members but this node.
    if (to.length === 0 && change?.op !== "leave") {
      throw new RangeError(`No one else is in “${g.name}”: add someone first`);
    }
    const now = this.#ctx.io.now();
    const sentAt = this.#ctx.wall(now);
    const id = timeOrderedId(sentAt);
    // The line names the message as written to the group: each member's copy has an id of its own.
    const lined = withGroupLine(text, { group: g, change, message: id });
    const primary = this.#store.insertOutgoing({
      id,
      peer: g.id,
      text: lined,
      sentAt,
      status: "group",
      group: g.id,
      ...(replyTo ? { ref: { kind: "reply" as const, id: replyTo } } : {}),
    });
    this.#groups.set(g.id, g);
    this.#save(g);
    // A reply names the answered message for every member: by its id as written to the group.
    const answered = replyTo ? this.#store.message(replyTo) : undefined;
    const wide = answered && (answered.status === "group" ? answered.id : answered.groupMessage ?? answered.id);
    const results = await this.#conversations.sendMessages(to.map((m) => ({
      to: m,
      text: this.#directory.get(m)?.protocol === "ipmsg" ? plainGroupText(g.name, text) : lined,
      copy: { group: g.id, copyOf: primary.id },
      ...(wide ? { ref: { kind: "reply" as const, id: wide } } : {}),
    })));
    for (const [i, r] of results.entries()) {
      if (r instanceof Error) {
        this.#log.warn("Cannot send to {name} in “{group}”: {error}", {
          name: this.#directory.peerName(to[i]!),
          group: g.name,
          error: r.message,
        });
      }
    }
    if (change) this.#events.push({ type: "group", group: this.json(g) });
    // Like any message written here: listeners (inbox --follow, other pages) learn of it now.
    const status = this.#conversations.groupStatus(primary).status;
    this.#events.push({ type: status === "queued" ? "queued" : "sent", message: primary });
    this.#ctx.changed();
    return primary;
  }

  #save(g: GroupState): void {
    this.#store.saveGroup(g.id, JSON.stringify(encodeGroup(g)), this.#ctx.wall(this.#ctx.io.now()));
  }

  onEvent(event: DaemonEvent): void {
    if (event.type === "message") {
      this.#received(event.message);
      return;
    }
    if (event.type !== "delivered" && event.type !== "failed" && event.type !== "read") return;
    const copyOf = event.message.copyOf;
    if (!copyOf) return;
    const primary = this.#store.message(copyOf);
    if (!primary) return;
    if (event.type === "read") {
      this.#events.push({ type: "read", message: primary });
      return;
    }
    // Delivered (or failed) once no copy is waiting; progress until then, as "sent".
    const status = this.#conversations.groupStatus(primary).status;
    if (status === "delivered") this.#events.push({ type: "delivered", message: primary, rttMs: 0 });
    else if (status === "failed") this.#events.push({ type: "failed", message: primary, error: "no member got it" });
    else this.#events.push({ type: "sent", message: primary });
  }

  /** A message came: if it belongs to a group, learn the group (a new one, or changes to one). */
  #received(m: StoredMessage): void {
    if (m.direction !== "in" || !m.group) return;
    const line = parseGroupLine(m.text);
    if (!line) return;
    const had = this.#groups.get(line.group.id);
    // Only a member changes a group: the sender must be one, in this node's view or in the one it sent.
    const senderIn = isMember(line.group, m.peer) || (had !== undefined && isMember(had, m.peer));
    if (!senderIn || (!had && this.#groups.size >= MAX_GROUPS)) {
      this.#refuse(m.peer, senderIn ? `this node knows ${MAX_GROUPS} groups already` : "its sender is not a member");
      return;
    }
    let changed: boolean;
    if (had) {
      changed = mergeGroup(had, line.group);
    } else {
      const fresh: GroupState = { id: line.group.id, name: line.group.name, members: new Map() };
      mergeGroup(fresh, line.group);
      this.#groups.set(fresh.id, fresh);
      changed = true;
    }
    if (!changed) return;
    const g = this.#groups.get(line.group.id)!;
    try {
      this.#save(g);
    } catch (e) {
      // Kept in memory; saved again with the group's next change. The messages themselves are stored.
      this.#log.warn("Cannot save group “{group}”: {error}", { group: g.name, error: (e as Error).message });
    }
    this.#events.push({ type: "group", group: this.json(g) });
  }

  /**
   * Marks what the members wrote to a group read, up to `upTo` (a cursor;
   * default: all). A read receipt names the newest message of this group
   * read from its sender, so what that member wrote to the group before it
   * is read too (nothing of another conversation).
   */
  markRead(id: string, upTo?: number): number {
    const g = this.#groups.get(id);
    if (!g) throw new RangeError(`No group ${id}`);
    let n = 0;
    for (const member of g.members.keys()) {
      if (member !== this.#self) n += this.#conversations.markRead(member, upTo, id);
    }
    return n;
  }

  /** A group message whose group is not taken (the message itself is kept): counted, logged as a flood is (a line per sender and reason a minute). */
  #refuse(peer: string, why: string): void {
    this.#refused++;
    this.#notices.flood(this.#directory.peerName(peer), "group changes", why);
  }

  drainEvents(): readonly DaemonEvent[] {
    if (this.#events.length === 0) return NOTHING;
    const out = this.#events;
    this.#events = [];
    return out;
  }

  metrics(m: MetricsWriter): void {
    m.single("lanchat_groups", "gauge", "Groups this node is in.", this.#memberOf());
    m.single(
      "lanchat_group_messages_refused_total",
      "counter",
      "Group messages that changed no group (sender not a member, or too many groups).",
      this.#refused,
    );
  }

  #memberOf(): number {
    let n = 0;
    for (const g of this.#groups.values()) if (isMember(g, this.#self)) n++;
    return n;
  }

  status(): Record<string, unknown> {
    return {
      groups: this.#memberOf(),
      groupMessagesRefused: this.#refused,
    };
  }
}
