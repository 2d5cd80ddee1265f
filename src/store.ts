/**
 * SQLite persistence (`node:sqlite`, built into Deno) in
 * `<data-dir>/lanchat.db`. The daemon holds the database in exclusive
 * locking mode, which doubles as the lock that keeps two daemons off one
 * data directory (they would share a node id).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** File name of the database inside the data directory. */
export const DB_FILE = "lanchat.db";

/** Raised when another daemon already uses the data directory. */
export class DataDirInUseError extends Error {
  override name = "DataDirInUseError";
}

/** The daemon's database. */
export class Store {
  readonly path: string;
  #db: DatabaseSync;

  private constructor(path: string, db: DatabaseSync) {
    this.path = path;
    this.#db = db;
  }

  /**
   * Opens (creating if needed, mode 0600) and locks the database in `dir`.
   *
   * @throws {DataDirInUseError} when another daemon holds it.
   */
  static async open(dir: string): Promise<Store> {
    const path = `${dir}/${DB_FILE}`;
    let db: DatabaseSync;
    try {
      // Create the file with mode 0600 before SQLite does (it would use 0644).
      await Deno.writeFile(path, new Uint8Array(), { append: true, mode: 0o600 });
      db = new DatabaseSync(path);
    } catch (e) {
      throw new Error(`Cannot open database ${path}: ${(e as Error).message}`, { cause: e });
    }
    try {
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("PRAGMA busy_timeout = 0");
      // The first write takes the exclusive lock and keeps it until close.
      db.exec("BEGIN IMMEDIATE");
      db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
      db.exec("COMMIT");
    } catch (e) {
      db.close();
      const msg = (e as Error).message;
      if (/locked|busy/i.test(msg)) {
        throw new DataDirInUseError(
          `Data directory ${dir} is in use by another lanchat daemon; stop it or pass another --data-dir`,
          { cause: e },
        );
      }
      throw new Error(`Cannot open database ${path}: ${msg}`, { cause: e });
    }
    return new Store(path, db);
  }

  /** Bumps and returns the incarnation number: 1 on the first start, then 2, 3, … */
  nextIncarnation(): number {
    const row = this.#db.prepare(
      `INSERT INTO meta (key, value) VALUES ('incarnation', '1')
       ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
       RETURNING value`,
    ).get() as { value: string | number };
    return Number(row.value);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
