/**
 * Replies, edits and deletions in the `messages` table. An edit or a
 * deletion is a message of its own (`ref_kind` 'edit' or 'delete', `ref_id`
 * the message it changes), carried, ordered, acknowledged and kept like any
 * other but hidden from history and search; the message it changes gets its
 * new text (or "" once deleted) and `edited_at` / `deleted_at`.
 *
 * A sender changes its own message at once ({@link Thread.amendOwn}). A
 * receiver applies an edit or deletion when it is stored
 * ({@link Thread.received}, in the transaction that stores it), and only to a
 * message that the same peer sent it: one that names someone else's message
 * (this node's own, or another peer's) is refused and counted. One that names
 * a message not here (yet: held for order, late, or never received) waits,
 * and is applied when that message comes (by the same rule). A deletion is
 * final; of several edits, the latest by its sender's clock wins.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { AMEND, PENDING, SHOWN } from "./schema.ts";
import type { SearchIndex } from "./search.ts";
import { type StoredMessage, toMessage } from "./stored_message.ts";

/** What storing incoming messages did to the thread: messages changed, and edits or deletions refused. */
export interface ThreadChanges {
  updated: StoredMessage[];
  refused: number;
}

/** Marks the start of an edit as it travels, for receivers that cannot apply it (they show it as a message). */
export const EDITED_PREFIX = "(edited) ";

/** The thread room of the store. */
export class Thread {
  readonly #c: Connection;
  readonly #search: SearchIndex;

  constructor(c: Connection, search: SearchIndex) {
    this.#c = c;
    this.#search = search;
  }

  /** A message of history (not an edit, a deletion or a group copy) by id. */
  shown(id: string): StoredMessage | undefined {
    this.#c.flush();
    const row = this.#c.q(`SELECT * FROM messages WHERE id = ? AND ${SHOWN}`).get(id) as
      | Record<string, unknown>
      | undefined;
    return row ? toMessage(row) : undefined;
  }

  /** A member's copy of a group message here, by the id of the message as written to the group. */
  byGroupMessage(group: string, id: string): StoredMessage | undefined {
    this.#c.flush();
    const row = this.#c.q("SELECT * FROM messages WHERE group_msg = ? AND grp = ? ORDER BY cursor LIMIT 1").get(
      id,
      group,
    ) as Record<string, unknown> | undefined;
    return row ? toMessage(row) : undefined;
  }

  /**
   * Changes a message of this node's at `at`: its text becomes `text` (an
   * edit) or "" (a deletion). While it still waits in the outbox its text as
   * sent is kept aside (its fragments must stay the same bytes). Returns it
   * changed.
   */
  amendOwn(id: string, kind: "edit" | "delete", text: string, at: number): StoredMessage {
    this.#c.flush();
    return this.#c.transaction(`${kind} the message`, () => this.#amendOwn(id, kind, text, at));
  }

  #amendOwn(id: string, kind: "edit" | "delete", text: string, at: number): StoredMessage {
    const row = this.#c.q("SELECT * FROM messages WHERE id = ?").get(id) as Record<string, unknown> | undefined;
    if (!row) throw new RangeError(`No message ${id}`);
    const m = toMessage(row);
    const pending = this.#c.q(`SELECT 1 FROM messages WHERE id = ? AND ${PENDING}`).get(id) !== undefined;
    if (pending && m.wireText === undefined) this.#c.q("UPDATE messages SET wire_text = text WHERE id = ?").run(id);
    if (kind === "delete") {
      // What the copies of a group message delivered carried goes too; those still on their way keep it.
      this.#c.q(`UPDATE messages SET text = '' WHERE copy_of = ? AND NOT (${PENDING})`).run(id);
    }
    return this.#change(m, kind, kind === "delete" ? "" : text, at);
  }

  /**
   * Applies what incoming messages from `peer`, just stored, do to the
   * thread: each edit or deletion to its message, if here; each message to
   * the edits and deletions of it that came before it. Call inside the
   * transaction that stores them.
   */
  received(peer: string, stored: StoredMessage[]): ThreadChanges {
    const out: ThreadChanges = { updated: [], refused: 0 };
    for (const m of stored) {
      if (m.ref?.kind === "edit" || m.ref?.kind === "delete") {
        const target = this.#c.q(`SELECT * FROM messages WHERE id = ? AND ${SHOWN}`).get(m.ref.id) as
          | Record<string, unknown>
          | undefined;
        // Not here (yet): it waits for the message, which applies it when it comes.
        if (target) this.#apply(toMessage(target), m, peer, out);
        continue;
      }
      // In the order they were sent (the index gives them in the order they came).
      const waiting = (this.#c.q(`SELECT * FROM messages WHERE ref_id = ? AND ${AMEND} ORDER BY cursor`)
        .all(m.id) as Record<string, unknown>[]).map(toMessage).sort((a, b) => a.sentAt - b.sentAt);
      let target = m;
      for (const w of waiting) target = this.#apply(target, w, peer, out) ?? target;
    }
    return out;
  }

  /** Applies `amend` (from `peer`) to `target` if it is that peer's; returns the target changed, if it was. */
  #apply(target: StoredMessage, amend: StoredMessage, peer: string, out: ThreadChanges): StoredMessage | undefined {
    if (amend.peer !== peer || target.direction !== "in" || target.peer !== amend.peer) {
      out.refused++;
      this.#c.q("UPDATE messages SET error = ? WHERE id = ?").run(
        "Refused: it edits or deletes a message its sender did not send",
        amend.id,
      );
      return undefined;
    }
    // A deletion is final; an edit older than the one shown is too late.
    if (target.deletedAt !== undefined) return undefined;
    if (amend.ref!.kind === "edit" && target.editedAt !== undefined && amend.sentAt < target.editedAt) return undefined;
    const text = amend.ref!.kind === "delete" ? "" : newText(target.text, amend.text);
    const changed = this.#change(target, amend.ref!.kind as "edit" | "delete", text, amend.sentAt);
    out.updated = out.updated.filter((u) => u.id !== changed.id);
    out.updated.push(changed);
    return changed;
  }

  #change(m: StoredMessage, kind: "edit" | "delete", text: string, at: number): StoredMessage {
    this.#search.reindex(m.cursor, m.text, text);
    if (kind === "delete") {
      this.#c.q("UPDATE messages SET text = '', deleted_at = ? WHERE id = ?").run(at, m.id);
      return { ...m, text: "", deletedAt: at };
    }
    this.#c.q("UPDATE messages SET text = ?, edited_at = ? WHERE id = ?").run(text, at, m.id);
    return { ...m, text, editedAt: at };
  }
}

/**
 * Starts the lines lanchat writes into a text for machines (protocol/machine_line.ts's MACHINE_LINE; the
 * storage layer cannot import it).
 */
const MACHINE_LINES = "\n\u0001lanchat-";

/**
 * A message's text as an edit makes it: the edit's words, and the machine
 * lines the message had (its group line, a file offer's). An edit's own
 * machine lines are dropped: it changes what a person wrote, not which
 * group a message is in or what it offered (a hostile peer's edit cannot
 * either).
 */
export function newText(was: string, edit: string): string {
  const cut = (t: string) => {
    const at = t.indexOf(MACHINE_LINES);
    return at < 0 ? [t, ""] : [t.slice(0, at), t.slice(at)];
  };
  return withoutEditedPrefix(cut(edit)[0]!) + cut(was)[1]!;
}

/** An edit's text without the prefix it travels with. */
export function withoutEditedPrefix(text: string): string {
  return text.startsWith(EDITED_PREFIX) ? text.slice(EDITED_PREFIX.length) : text;
}
