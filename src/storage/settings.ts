/**
 * Settings kept across restarts (the node's presence, how far messages were
 * read): `setting:<key>` rows of the `meta` table.
 *
 * @module
 */
import type { Connection } from "./connection.ts";

/** The settings room of the store. */
export class Settings {
  readonly #c: Connection;

  constructor(c: Connection) {
    this.#c = c;
  }

  /** A setting kept across restarts (the node's presence), or undefined. */
  setting(key: string): string | undefined {
    return this.#c.meta(`setting:${key}`);
  }

  saveSetting(key: string, value: string): void {
    this.#c.transaction("save a setting", () => {
      this.#c.q("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .run(`setting:${key}`, value);
    });
  }
}
