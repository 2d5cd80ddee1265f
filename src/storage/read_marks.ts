/**
 * Read marks: when a message was read, an incoming one by a person here, an
 * outgoing one by its peer (from a read receipt). Each conversation is
 * marked on its own: the direct one with a peer, and each group shared with
 * it (reading one never marks another). How far each was visited is a
 * setting (settings.ts), so each call visits only the messages after the
 * last one's.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import type { Settings } from "./settings.ts";
import { type StoredMessage, toMessage } from "./stored_message.ts";

/** The read-marks room of the store. */
export class ReadMarks {
  readonly #c: Connection;
  readonly #settings: Settings;

  constructor(c: Connection, settings: Settings) {
    this.#c = c;
    this.#settings = settings;
  }

  /**
   * Marks incoming messages from `peer` in one conversation (`group`'s, or
   * the direct one when undefined) up to `upTo` (a cursor) read at `at`.
   * Returns the newest incoming message of it up to there (what a read
   * receipt names) and how many were newly marked; only messages after the
   * last call's are visited.
   */
  markReadIn(
    peer: string,
    upTo: number,
    at: number,
    /** Messages whose text contains this stay unread (sealed ones: only opening them reads them). */
    unlessContaining: string,
    group?: string,
  ): { lastId: string; marked: number } | undefined {
    return this.#c.transaction("mark messages read", () => {
      const grp = group ?? null;
      const last = this.#c.q(
        "SELECT id, cursor FROM messages WHERE peer = ? AND grp IS ? AND cursor <= ? AND direction = 'in' ORDER BY cursor DESC LIMIT 1",
      ).get(peer, grp, upTo) as { id: string; cursor: number } | undefined;
      if (!last) return undefined;
      const key = readKey("in", peer, group);
      const from = Number(this.#settings.setting(key) ?? 0);
      if (last.cursor <= from) return { lastId: last.id, marked: 0 };
      const r = this.#c.q(
        `UPDATE messages SET read_at = ? WHERE peer = ? AND grp IS ? AND cursor > ? AND cursor <= ? AND direction = 'in'
         AND read_at IS NULL AND instr(text, ?) = 0`,
      ).run(at, peer, grp, from, last.cursor, unlessContaining);
      this.#settings.saveSetting(key, String(last.cursor));
      return { lastId: last.id, marked: Number(r.changes) };
    });
  }

  /**
   * Marks outgoing messages to `peer` read, up to and including message
   * `upToId` (from its read receipt), in that message's conversation only
   * (the direct one, or its group's); returns those newly marked.
   */
  markReadOut(peer: string, upToId: string, at: number): StoredMessage[] {
    return this.#c.transaction("mark messages read by the peer", () => {
      const upTo = this.#c.q("SELECT cursor, grp FROM messages WHERE id = ? AND peer = ? AND direction = 'out'").get(
        upToId,
        peer,
      ) as { cursor: number; grp: string | null } | undefined;
      // A receipt names a message of ours (ids are the sender's, kept by the receiver), so the conversation it
      // was read in: every one of that conversation up to it is read, none of another (a receipt from a lanchat
      // before conversations were told apart names the newest message read of any: its conversation is taken).
      if (!upTo) return [];
      const { cursor, grp } = upTo;
      const key = readKey("out", peer, grp ?? undefined);
      const from = Number(this.#settings.setting(key) ?? 0);
      if (cursor <= from) return [];
      const where =
        "peer = ? AND grp IS ? AND cursor > ? AND cursor <= ? AND direction = 'out' AND read_at IS NULL AND status != 'failed'";
      const rows = this.#c.q(`SELECT * FROM messages WHERE ${where}`).all(peer, grp, from, cursor) as Record<
        string,
        unknown
      >[];
      this.#c.q(`UPDATE messages SET read_at = ? WHERE ${where}`).run(at, peer, grp, from, cursor);
      this.#settings.saveSetting(key, String(cursor));
      // Read is past delivered, whatever the status written behind says yet.
      return rows.map((r) => ({ ...toMessage(r), status: "delivered" as const, readAt: at }));
    });
  }

  /** Marks one message read (a sealed message opened, or one of ours its reader opened); false if it was already. */
  markReadOne(id: string, at: number): boolean {
    return this.#c.transaction(
      "mark the message read",
      () =>
        Number(this.#c.q("UPDATE messages SET read_at = ? WHERE id = ? AND read_at IS NULL").run(at, id).changes) > 0,
    );
  }
}

/** The setting saying how far a conversation's read marks were visited: `read-in:PEER`, `read-out:PEER:GROUP`. */
function readKey(way: "in" | "out", peer: string, group: string | undefined): string {
  return group === undefined ? `read-${way}:${peer}` : `read-${way}:${peer}:${group}`;
}
