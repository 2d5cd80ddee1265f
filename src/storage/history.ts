/**
 * History paging: pages of the `messages` table by cursor (forward from one,
 * or backward from the end or from one), by time (a time is a place in the
 * cursor order, through the `messages_entered` index), of one peer or one
 * group; every page a range of an index.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { ENTERED, SHOWN } from "./schema.ts";
import { type StoredMessage, toMessage } from "./stored_message.ts";

/** Largest page of history. */
export const MAX_PAGE = 10_000;

/** A page of history as {@link History.history} reads it. */
export interface HistoryQuery {
  peer?: string;
  /** Only the messages of this group (then `peer` is ignored). */
  group?: string;
  /** Only messages with a cursor below this. */
  before?: number;
  /** Only messages with a cursor above this; the page starts there. */
  after?: number;
  limit?: number;
  /** @deprecated the same as `after`. */
  sinceCursor?: number;
  /** Messages that entered history at or after this time (ms since the epoch): `after` the cursor before it. */
  sinceTime?: number;
}

/** The history room of the store. */
export class History {
  readonly #c: Connection;

  constructor(c: Connection) {
    this.#c = c;
  }

  /**
   * A page of history, oldest first, with or from `peer` if given: the
   * newest `limit` messages (default 100, at most 10,000), or those just
   * before cursor `before`, or those just after cursor `after` (both: the
   * first after `after`, up to `before`). Every page is a range of the
   * primary key or of the (peer, cursor) index: as fast at the oldest end of
   * a million messages as at the newest.
   */
  history(q: HistoryQuery = {}): StoredMessage[] {
    const { filter, args, forward, limit } = this.#page(q);
    this.#c.flush();
    // Forward from `after`; otherwise backward from the end (or `before`), then turned around.
    const sql = forward
      ? `SELECT * FROM messages ${filter} ORDER BY cursor ASC LIMIT ?`
      : `SELECT * FROM (SELECT * FROM messages ${filter} ORDER BY cursor DESC LIMIT ?) ORDER BY cursor ASC`;
    // The limit is bound, not written into the SQL: each statement is kept prepared, and one per limit would be
    // a cache that grows with every page size a client asks for.
    return (this.#c.q(sql).all(...args, limit) as Record<string, unknown>[]).map(toMessage);
  }

  /**
   * The cursors of the first and last message of the page {@link history}
   * would give for `q`, and how many it holds; undefined for an empty page.
   * Reads cursors only: a large page can then be read a slice at a time
   * (`after: first - 1, before: last + 1`), and it stays the same page
   * whatever is stored meanwhile (new messages get higher cursors).
   */
  historyRange(q: HistoryQuery = {}): { first: number; last: number; count: number } | undefined {
    const { filter, args, forward, limit } = this.#page(q);
    const row = this.#c.q(
      `SELECT min(cursor) AS first, max(cursor) AS last, count(*) AS n FROM
       (SELECT cursor FROM messages ${filter} ORDER BY cursor ${forward ? "ASC" : "DESC"} LIMIT ?)`,
    ).get(...args, limit) as { first: number | null; last: number | null; n: number };
    if (!row.n) return undefined;
    return { first: Number(row.first), last: Number(row.last), count: Number(row.n) };
  }

  /** The WHERE clause of a page of history, its arguments, its direction and its size. */
  #page(q: HistoryQuery): { filter: string; args: (string | number)[]; forward: boolean; limit: number } {
    // A group message's copies to each member are not history: the message written to the group is; nor are
    // edits and deletions: the message they changed is.
    const where: string[] = [SHOWN];
    const args: (string | number)[] = [];
    if (q.group) {
      where.push("grp = ?");
      args.push(q.group);
    } else if (q.peer) {
      // A conversation with a peer is what was said between the two: its messages in groups are the groups'.
      where.push("peer = ? AND grp IS NULL");
      args.push(q.peer);
    }
    let after = q.after ?? q.sinceCursor;
    if (q.sinceTime !== undefined) after = Math.max(after ?? 0, this.cursorAt(q.sinceTime) - 1);
    if (after !== undefined) {
      where.push("cursor > ?");
      args.push(after);
    }
    if (q.before !== undefined) {
      where.push("cursor < ?");
      args.push(q.before);
    }
    return {
      filter: "WHERE " + where.join(" AND "),
      args,
      forward: after !== undefined,
      limit: Math.max(1, Math.min(q.limit ?? 100, MAX_PAGE)),
    };
  }

  /**
   * The first cursor of the messages that entered history at or after
   * `time` (ms since the epoch: an incoming message when it was shown, an
   * outgoing one when it was sent), from the index on that time; one past
   * the last cursor when none did. Times follow cursors (both grow as
   * messages come), so a time is a place in the cursor order.
   */
  cursorAt(time: number): number {
    const row = this.#c.q(`SELECT cursor FROM messages WHERE ${ENTERED} >= ? ORDER BY ${ENTERED} LIMIT 1`).get(time) as
      | { cursor: number }
      | undefined;
    if (row) return Number(row.cursor);
    return this.lastCursor() + 1;
  }

  /** The highest cursor so far (0 for an empty history). */
  lastCursor(): number {
    const row = this.#c.q("SELECT max(cursor) AS c FROM messages").get() as { c: number | null };
    return Number(row.c ?? 0);
  }
}
