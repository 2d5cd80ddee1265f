/**
 * Messages (the `messages`, `held` and `sequences` tables): storing an
 * outgoing message with the next sequence number for its peer, the outbox of
 * those not yet delivered, incoming messages held back until the ones before
 * them arrive and then released into the inbox in order, lookups by id, and
 * the node's incarnation number. Every message stored is indexed for search
 * in the same write (search.ts).
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { isCorruption } from "./integrity.ts";
import { PENDING } from "./schema.ts";
import type { SearchIndex } from "./search.ts";
import { type MessageRef, refOf, type StoredMessage, toMessage } from "./stored_message.ts";

/** An incoming message persisted but held back until the messages before it arrive. */
export interface HeldMessage {
  id: string;
  peer: string;
  seq: number;
  text: string;
  sentAt: number;
  receivedAt: number;
  /** The message it answers, edits or deletes. */
  ref?: MessageRef;
}

/** An incoming message going into the inbox, as {@link Messages.release} takes it. */
export type Release = HeldMessage & {
  /** The group it belongs to, if any. */
  group?: string;
  /** Of a group message: its id as written to the group (see {@link StoredMessage.groupMessage}). */
  groupMessage?: string;
  /** How many earlier messages of the sender are missing before it. */
  gapBefore: number;
  /** It arrived after later messages were shown. */
  late: boolean;
  /** False when it was never held, so there is nothing to delete from `held`. */
  wasHeld?: boolean;
};

/** A message to send, as {@link Messages.insertOutgoing} stores it. */
export type OutgoingRow = {
  id: string;
  peer: string;
  text: string;
  sentAt: number;
  status?: "queued" | "sent" | "group";
  /** Of a group message, or of a copy of one: the group's id. */
  group?: string;
  /** A copy, for one member, of the group message with this id: kept out of history and search. */
  copyOf?: string;
  /** Whether it goes end-to-end encrypted, when known (see {@link StoredMessage.encrypted}). */
  encrypted?: boolean;
  /** The message it answers, edits or deletes (an edit or deletion is kept out of history and search). */
  ref?: MessageRef;
};

/** The messages room of the store. */
export class Messages {
  readonly #c: Connection;
  readonly #search: SearchIndex;

  constructor(c: Connection, search: SearchIndex) {
    this.#c = c;
    this.#search = search;
  }

  /**
   * Stores a message to send, assigning it the next sequence number for its
   * peer; committed before it returns (the caller may then say "accepted").
   */
  insertOutgoing(m: OutgoingRow): StoredMessage {
    return this.#c.transaction("store the message", () => this.#insertOut(m));
  }

  /**
   * Stores several messages to send (a posted batch) in one transaction (one
   * savepoint, and one sequence update per peer: in a profile of the daemon
   * the savepoint per message cost about as much as the insert itself),
   * numbered in the order given: all of them, or none (then it throws a
   * StoreError).
   */
  insertOutgoingMany(ms: readonly OutgoingRow[]): StoredMessage[] {
    if (ms.length === 0) return [];
    return this.#c.transaction("store the messages", () => {
      const perPeer = new Map<string, number>();
      for (const m of ms) perPeer.set(m.peer, (perPeer.get(m.peer) ?? 0) + 1);
      const next = new Map([...perPeer].map(([peer, n]) => [peer, this.#bumpSeq(peer, "out", n)]));
      return ms.map((m) => {
        const seq = next.get(m.peer)!;
        next.set(m.peer, seq + 1);
        return this.#insertOut(m, seq);
      });
    });
  }

  #insertOut(m: OutgoingRow, seq = this.#bumpSeq(m.peer, "out")): StoredMessage {
    const status = m.status ?? "queued";
    // run() and lastInsertRowid: RETURNING goes through a temporary table (2.5× slower here).
    const { lastInsertRowid } = this.#c.q(
      `INSERT INTO messages (id, peer, direction, seq, text, sent_at, status, grp, copy_of, encrypted, ref_kind, ref_id)
       VALUES (?, ?, 'out', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      m.id,
      m.peer,
      seq,
      m.text,
      m.sentAt,
      status,
      m.group ?? null,
      m.copyOf ?? null,
      bit(m.encrypted),
      m.ref?.kind ?? null,
      m.ref?.id ?? null,
    );
    if (m.copyOf === undefined && !isAmend(m.ref)) this.#search.index(Number(lastInsertRowid), m.text);
    return {
      cursor: Number(lastInsertRowid),
      id: m.id,
      peer: m.peer,
      direction: "out",
      seq,
      text: m.text,
      sentAt: m.sentAt,
      status,
      gapBefore: 0,
      late: false,
      ...(m.group !== undefined ? { group: m.group } : {}),
      ...(m.copyOf !== undefined ? { copyOf: m.copyOf } : {}),
      ...(m.ref !== undefined ? { ref: m.ref } : {}),
    };
  }

  /** The copies of a group message, one per member it was sent to. */
  copies(id: string): StoredMessage[] {
    this.#c.flush();
    return (this.#c.q("SELECT * FROM messages WHERE copy_of = ? ORDER BY cursor").all(id) as Record<string, unknown>[])
      .map(toMessage);
  }

  /** A stored message by its id or a unique prefix of it (8 hex digits or more); undefined when none or several. */
  messageByPrefix(prefix: string): StoredMessage | undefined {
    if (prefix.length === 32) return this.message(prefix);
    this.#c.flush();
    const rows = this.#c.q("SELECT * FROM messages WHERE id >= ? AND id < ? ORDER BY id LIMIT 2").all(
      prefix,
      `${prefix}g`,
    ) as Record<string, unknown>[];
    return rows.length === 1 ? toMessage(rows[0]!) : undefined;
  }

  /**
   * Outgoing messages not yet delivered (to `peer`, or to anyone), in
   * sequence order per peer. All of them: the daemon reads its outbox in
   * windows ({@link outboxPage}); this is for tests and small outboxes.
   */
  outbox(peer?: string): StoredMessage[] {
    this.#c.flush();
    const rows = peer === undefined
      ? this.#c.q(`SELECT * FROM messages WHERE ${PENDING} ORDER BY peer, seq`).all()
      : this.#c.q(`SELECT * FROM messages WHERE ${PENDING} AND peer = ? ORDER BY peer, seq`).all(peer);
    return (rows as Record<string, unknown>[]).map(toMessage);
  }

  /** How many outgoing messages wait for delivery, per peer (one pass over the pending index). */
  outboxCounts(): Map<string, number> {
    this.#c.flush();
    const rows = this.#c.q(`SELECT peer, count(*) AS n FROM messages WHERE ${PENDING} GROUP BY peer`).all() as {
      peer: string;
      n: number;
    }[];
    return new Map(rows.map((r) => [String(r.peer), Number(r.n)]));
  }

  /** The next `limit` outgoing messages waiting for `peer` after sequence number `afterSeq`, in order. */
  outboxPage(peer: string, afterSeq: number, limit: number): StoredMessage[] {
    this.#c.flush();
    return (this.#c.q(`SELECT * FROM messages WHERE ${PENDING} AND peer = ? AND seq > ? ORDER BY seq LIMIT ?`)
      .all(peer, afterSeq, limit) as Record<string, unknown>[]).map(toMessage);
  }

  /** True when a message with this id is stored, visible or held. */
  hasMessage(id: string): boolean {
    return this.#c.q("SELECT 1 FROM messages WHERE id = ? UNION ALL SELECT 1 FROM held WHERE id = ?").get(id, id) !==
      undefined;
  }

  /** A stored (visible) message by id. */
  message(id: string): StoredMessage | undefined {
    this.#c.flush();
    const row = this.#c.q("SELECT * FROM messages WHERE id = ?").get(id) as Record<string, unknown> | undefined;
    return row ? toMessage(row) : undefined;
  }

  /**
   * Stores an incoming message that needs no ordering (IP Messenger has no
   * sequence numbers) straight into the inbox, numbering it per peer.
   */
  receiveUnordered(m: { id: string; peer: string; text: string; sentAt: number; receivedAt: number }): StoredMessage {
    return this.#c.transaction("store the message", () => {
      const seq = this.#bumpSeq(m.peer, "in");
      const message = toMessage(
        this.#c.q(
          `INSERT INTO messages (id, peer, direction, seq, text, sent_at, received_at, delivered_at, status)
           VALUES (?, ?, 'in', ?, ?, ?, ?, ?, 'received') RETURNING *`,
        ).get(m.id, m.peer, seq, m.text, m.sentAt, m.receivedAt, m.receivedAt) as Record<string, unknown>,
      );
      this.#search.index(message.cursor, message.text);
      return message;
    });
  }

  /** The next sequence number expected from a peer (1 when none was seen). */
  expectedSeq(peer: string): number {
    const row = this.#c.q("SELECT next FROM sequences WHERE peer = ? AND direction = 'in'").get(peer) as
      | { next: number }
      | undefined;
    return row ? Number(row.next) : 1;
  }

  /** Stores an incoming message held back until the messages before it arrive. */
  hold(m: HeldMessage): void {
    this.#c.transaction("store the message", () => {
      this.#c.q(
        "INSERT INTO held (id, peer, seq, text, sent_at, received_at, ref_kind, ref_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ).run(m.id, m.peer, m.seq, m.text, m.sentAt, m.receivedAt, m.ref?.kind ?? null, m.ref?.id ?? null);
    });
  }

  /** Incoming messages held back, in sequence order per peer. */
  heldMessages(): HeldMessage[] {
    return (this.#c.q("SELECT * FROM held ORDER BY peer, seq").all() as Record<string, unknown>[]).map((r) => ({
      id: String(r.id),
      peer: String(r.peer),
      seq: Number(r.seq),
      text: String(r.text),
      sentAt: Number(r.sent_at),
      receivedAt: Number(r.received_at),
      ...(refOf(r) ? { ref: refOf(r) } : {}),
    }));
  }

  /**
   * Puts incoming messages in the inbox, in the order given, in one
   * transaction: each is removed from the held ones unless `wasHeld` is false, and the
   * peer's expected sequence number becomes `nextExpected`.
   */
  release(
    peer: string,
    messages: Release[],
    nextExpected: number,
    now: number,
    encrypted?: boolean,
    /** Run in the same transaction with what was stored (replies, edits and deletions applied: thread.ts). */
    after?: (stored: StoredMessage[]) => void,
  ): StoredMessage[] {
    return this.#c.transaction("store the message", () => {
      const out: StoredMessage[] = [];
      for (const m of messages) {
        if (m.wasHeld !== false) this.#c.q("DELETE FROM held WHERE id = ?").run(m.id);
        const { lastInsertRowid } = this.#c.q(
          `INSERT INTO messages (id, peer, direction, seq, text, sent_at, received_at, delivered_at, status, gap_before, late, grp, encrypted, ref_kind, ref_id, group_msg)
           VALUES (?, ?, 'in', ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          m.id,
          m.peer,
          m.seq,
          m.text,
          m.sentAt,
          m.receivedAt,
          now,
          m.gapBefore,
          m.late ? 1 : 0,
          m.group ?? null,
          bit(encrypted),
          m.ref?.kind ?? null,
          m.ref?.id ?? null,
          m.groupMessage ?? null,
        );
        if (!isAmend(m.ref)) this.#search.index(Number(lastInsertRowid), m.text);
        out.push({
          cursor: Number(lastInsertRowid),
          id: m.id,
          peer: m.peer,
          direction: "in",
          seq: m.seq,
          text: m.text,
          sentAt: m.sentAt,
          receivedAt: m.receivedAt,
          deliveredAt: now,
          status: "received",
          gapBefore: m.gapBefore,
          late: m.late,
          ...(m.group !== undefined ? { group: m.group } : {}),
          ...(encrypted !== undefined ? { encrypted } : {}),
          ...(m.ref !== undefined ? { ref: m.ref } : {}),
          ...(m.groupMessage !== undefined ? { groupMessage: m.groupMessage } : {}),
        });
      }
      after?.(out);
      this.#c.q(
        `INSERT INTO sequences (peer, direction, next) VALUES (?, 'in', ?)
         ON CONFLICT (peer, direction) DO UPDATE SET next = MAX(next, excluded.next)`,
      ).run(peer, nextExpected);
      return out;
    });
  }

  /** Takes the next `n` sequence numbers for `peer`: returns the first. */
  #bumpSeq(peer: string, direction: "in" | "out", n = 1): number {
    const row = this.#c.q(
      `INSERT INTO sequences (peer, direction, next) VALUES (?, ?, 1 + ?)
       ON CONFLICT (peer, direction) DO UPDATE SET next = next + excluded.next - 1 RETURNING next`,
    ).get(peer, direction, n) as { next: number };
    return Number(row.next) - n;
  }

  /** Bumps and returns the incarnation number: 1 on the first start, then 2, 3, … */
  nextIncarnation(): number {
    try {
      const row = this.#c.db.prepare(
        `INSERT INTO meta (key, value) VALUES ('incarnation', '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
         RETURNING value`,
      ).get() as { value: string | number };
      return Number(row.value);
    } catch (e) {
      if (!isCorruption(e)) throw e;
      throw new Error(
        `Cannot start: the database ${this.#c.path} is damaged (${(e as Error).message}); ${this.#c.damageAdvice()}`,
        { cause: e },
      );
    }
  }
}

/** Whether a reference makes its message an edit or a deletion (not history itself). */
export function isAmend(ref: MessageRef | undefined): boolean {
  return ref?.kind === "edit" || ref?.kind === "delete";
}

/** A boolean as SQLite stores it, NULL when not known. */
function bit(b: boolean | undefined): number | null {
  return b === undefined ? null : b ? 1 : 0;
}
