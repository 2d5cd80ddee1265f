/**
 * Group conversations as stored (the `groups` table): each group's members
 * and name as JSON, as the group service saves them (node/services/groups.ts).
 * A group's messages are in the `messages` table (messages.ts).
 *
 * @module
 */
import type { Connection } from "./connection.ts";

/** The groups room of the store. */
export class Groups {
  readonly #c: Connection;

  constructor(c: Connection) {
    this.#c = c;
  }

  /** Groups as saved by the group service (see node/services/groups.ts), as JSON. */
  groups(): { id: string; json: string }[] {
    return (this.#c.q("SELECT id, json FROM groups ORDER BY id").all() as { id: string; json: string }[])
      .map((r) => ({ id: String(r.id), json: String(r.json) }));
  }

  /** Saves a group (its members and name) as JSON. */
  saveGroup(id: string, json: string, at: number): void {
    this.#c.transaction("save the group", () => {
      this.#c.q(
        "INSERT INTO groups (id, json, updated) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json, updated = excluded.updated",
      ).run(id, json, at);
    });
  }
}
