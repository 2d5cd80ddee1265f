/**
 * A message as stored: {@link StoredMessage}, the shape every room that
 * reads the `messages` table returns (messages.ts, history.ts, search.ts,
 * read_marks.ts), and {@link toMessage}, which makes one of a row.
 *
 * @module
 */

/** A message as stored and shown in history. */
export interface StoredMessage {
  /** Position in history: increases with every message made visible. */
  cursor: number;
  id: string;
  /** The other side's node id. */
  peer: string;
  direction: "in" | "out";
  seq: number;
  text: string;
  /** When the sender sent it (ms since the epoch). */
  sentAt: number;
  /** In: when it reached this node. Out: undefined. */
  receivedAt?: number;
  /** Out: when the peer acknowledged it. In: when it was put in the inbox. */
  deliveredAt?: number;
  /** When it was read: an incoming one by a person here, an outgoing one by its peer (a read receipt). */
  readAt?: number;
  /**
   * Out: queued, sent, delivered or failed. In: received. `group`: a message
   * written to a group, whose copies to each member (`copyOf` it) carry it.
   */
  status: "queued" | "sent" | "delivered" | "failed" | "received" | "group";
  /** The group it belongs to (see protocol/groups.ts). */
  group?: string;
  /** Out: the group message this is the copy of, for one member (hidden from history). */
  copyOf?: string;
  rttMs?: number;
  /** In: how many earlier messages of this sender were missing when this one was shown (a gap marker). */
  gapBefore: number;
  /** In: true when it arrived after later messages were already shown. */
  late: boolean;
  error?: string;
  /** True: it went end-to-end encrypted; false: in the clear (a previous version's peer); absent: not known. */
  encrypted?: boolean;
  /** The message this one answers (`reply`), or changes (`edit`, `delete`: then it is not history itself). */
  ref?: MessageRef;
  /** When its sender last edited it (ms since the epoch, by the sender's clock). */
  editedAt?: number;
  /** When its sender deleted it (its text is then ""). */
  deletedAt?: number;
  /** Out, edited or deleted while still in the outbox: the text as it goes on the wire. */
  wireText?: string;
  /** In, a member's copy of a group message: the id of the message as written to the group. */
  groupMessage?: string;
}

/** What a message says about another one (the wire's MsgRef). */
export interface MessageRef {
  kind: "reply" | "edit" | "delete";
  id: string;
}

/** The reference of a row's ref_kind and ref_id columns, if any. */
export function refOf(r: Record<string, unknown>): MessageRef | undefined {
  const kind = r.ref_kind;
  if ((kind !== "reply" && kind !== "edit" && kind !== "delete") || typeof r.ref_id !== "string") return undefined;
  return { kind, id: r.ref_id };
}

/** A row of the `messages` table as a {@link StoredMessage}. */
export function toMessage(r: Record<string, unknown>): StoredMessage {
  const m: StoredMessage = {
    cursor: Number(r.cursor),
    id: String(r.id),
    peer: String(r.peer),
    direction: r.direction as "in" | "out",
    seq: Number(r.seq),
    text: String(r.text),
    sentAt: Number(r.sent_at),
    status: r.status as StoredMessage["status"],
    gapBefore: Number(r.gap_before),
    late: Number(r.late) === 1,
  };
  if (r.received_at !== null) m.receivedAt = Number(r.received_at);
  if (r.delivered_at !== null) m.deliveredAt = Number(r.delivered_at);
  if (r.rtt_ms !== null) m.rttMs = Number(r.rtt_ms);
  if (r.read_at !== null && r.read_at !== undefined) m.readAt = Number(r.read_at);
  if (r.error !== null) m.error = String(r.error);
  if (r.grp !== null && r.grp !== undefined) m.group = String(r.grp);
  if (r.copy_of !== null && r.copy_of !== undefined) m.copyOf = String(r.copy_of);
  if (r.encrypted !== null && r.encrypted !== undefined) m.encrypted = Number(r.encrypted) === 1;
  const ref = refOf(r);
  if (ref) m.ref = ref;
  if (r.edited_at !== null && r.edited_at !== undefined) m.editedAt = Number(r.edited_at);
  if (r.deleted_at !== null && r.deleted_at !== undefined) m.deletedAt = Number(r.deleted_at);
  if (r.wire_text !== null && r.wire_text !== undefined) m.wireText = String(r.wire_text);
  if (r.group_msg !== null && r.group_msg !== undefined) m.groupMessage = String(r.group_msg);
  return m;
}
