/**
 * File transfers as stored (the `transfers` and `transfer_files` tables):
 * each transfer's state in columns and the rest as JSON, its files in rows of
 * their own (an offer may list 100,000). What they mean is the file
 * service's (node/services/files_model.ts).
 *
 * @module
 */
import type { Connection } from "./connection.ts";

/** A file transfer as stored: its state in columns, the rest as JSON (see node/services/files.ts). */
export interface TransferRow {
  id: string;
  direction: "in" | "out";
  peer: string;
  state: string;
  updated: number;
  json: string;
}

/** The transfers room of the store. */
export class Transfers {
  readonly #c: Connection;

  constructor(c: Connection) {
    this.#c = c;
  }

  /** Writes a file transfer's record (its files apart: {@link saveTransferFiles}). */
  saveTransfer(t: TransferRow): void {
    this.#c.transaction("save the file transfer", () => {
      this.#c.q(
        "INSERT OR REPLACE INTO transfers (id, direction, peer, state, updated, json) VALUES (?, ?, ?, ?, ?, ?)",
      )
        .run(t.id, t.direction, t.peer, t.state, t.updated, t.json);
    });
  }

  /** Every transfer, newest first. */
  transfers(): TransferRow[] {
    return this.#c.q("SELECT id, direction, peer, state, updated, json FROM transfers ORDER BY updated DESC")
      .all() as unknown as TransferRow[];
  }

  /** Writes some files of a transfer (by index). */
  saveTransferFiles(id: string, direction: string, files: { idx: number; json: string }[]): void {
    this.#c.transaction("save the files of a transfer", () => {
      const st = this.#c.q("INSERT OR REPLACE INTO transfer_files (id, direction, idx, json) VALUES (?, ?, ?, ?)");
      for (const f of files) st.run(id, direction, f.idx, f.json);
    });
  }

  /** A transfer's files, in order. */
  transferFiles(id: string, direction: string): { idx: number; json: string }[] {
    return this.#c.q("SELECT idx, json FROM transfer_files WHERE id = ? AND direction = ? ORDER BY idx")
      .all(id, direction) as unknown as { idx: number; json: string }[];
  }

  /** Forgets a transfer and its files. */
  deleteTransfer(id: string, direction: string): void {
    this.#c.transaction("forget the file transfer", () => {
      this.#c.q("DELETE FROM transfer_files WHERE id = ? AND direction = ?").run(id, direction);
      this.#c.q("DELETE FROM transfers WHERE id = ? AND direction = ?").run(id, direction);
    });
  }
}
