/**
 * The one connection to `<data-dir>/lanchat.db` (SQLite through
 * `node:sqlite`, built into Deno) that every room of the store shares:
 * opening it (in exclusive locking mode, which doubles as the lock that keeps
 * two daemons off one data directory: they would share a node id) and
 * bringing its schema up to date, the prepared-statement cache, the one
 * group commit and {@link Connection.transaction}, the damage state that
 * refuses every write once the file is known damaged, the write-ahead log's
 * checkpoint and sizes, and closing.
 *
 * @module
 */
import { DB_FILE, KEY_FILE } from "../common/data_dir.ts";
import { DatabaseSync } from "node:sqlite";
import { damageAdvice, DAMAGED, isCorruption, quickCheck, tablesToCheck } from "./integrity.ts";
import { migrate, SCHEMA_VERSION } from "./schema.ts";

/** Raised when a write fails (disk full, read-only directory…): nothing of it was stored. */
export class StoreError extends Error {
  override name = "StoreError";
}

/** Raised when another daemon already uses the data directory. */
export class DataDirInUseError extends Error {
  override name = "DataDirInUseError";
}

/** The write-ahead log is checkpointed by the commit that takes it past this many pages (4 KiB each). */
export const WAL_CHECKPOINT_PAGES = 1000;
/** After a checkpoint, the write-ahead log file is cut back to this many bytes. */
export const WAL_FILE_LIMIT = 16 * 1024 * 1024;

/** The database connection and what every room shares of it (see the module doc). */
export class Connection {
  readonly path: string;
  /** The schema version the database had, and how long bringing it up to date took, when it was older. */
  readonly upgraded: { from: number; to: number; ms: number } | undefined;
  /** The SQLite connection, for the rooms (statements they run often go through {@link q}). */
  readonly db: DatabaseSync;
  /** What is wrong with the file, once it is known to be damaged; every write is refused from then on. */
  #damaged: string | undefined;
  #onDamaged: ((what: string) => void) | undefined;
  /**
   * Writes what is written behind (the delivery status updates,
   * delivery_status.ts): called before every commit, and by every read of
   * messages. Set by the store that composes the rooms.
   */
  flush: () => void = () => {};
  /**
   * Called after a rollback, so a room forgets what it undid (the search
   * index's partitions made in it, search.ts). Set by the store.
   */
  rolledBack: () => void = () => {};

  private constructor(path: string, db: DatabaseSync, upgraded?: { from: number; to: number; ms: number }) {
    this.path = path;
    this.db = db;
    this.upgraded = upgraded;
  }

  /**
   * Opens (creating if needed, mode 0600) and locks the database in `dir`.
   *
   * @throws {DataDirInUseError} when another daemon holds it.
   */
  static async open(dir: string): Promise<Connection> {
    const path = `${dir}/${DB_FILE}`;
    let db: DatabaseSync;
    let upgraded: { from: number; to: number; ms: number } | undefined;
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
      // WAL with synchronous=NORMAL: a committed transaction survives the
      // process being killed (kill -9); only an OS crash or power loss may
      // take the last commits. Measured here: 72 µs a commit, 276 µs with FULL.
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      // The write-ahead log is checkpointed by the commit that takes it past
      // WAL_CHECKPOINT_PAGES (4 MiB: ~8 ms here, 2 ms a MiB), so no load can
      // starve the checkpoint, nor make a long one; after it, the file is cut
      // back to WAL_FILE_LIMIT. (A timer used to do it every 10 s, and skipped
      // it whenever a group transaction was open: 470 MB WALs under load, and
      // pauses of up to 475 ms to checkpoint them.)
      db.exec(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
      db.exec(`PRAGMA journal_size_limit = ${WAL_FILE_LIMIT}`);
      // Group commit puts each write in a savepoint, whose undo log is a temp
      // file by default: a pwrite per write was a third of a receiver's time.
      db.exec("PRAGMA temp_store = MEMORY");
      // 2 MiB of page cache (SQLite's default). It was 8 MiB: once a few
      // large pages of history had filled it, those 6 MiB more stayed
      // resident for good, and pages not in it come from the OS's file cache
      // in microseconds (every page read is an index range of a few pages).
      db.exec("PRAGMA cache_size = -2048");
      // The first write takes the exclusive lock and keeps it until close.
      db.exec("BEGIN IMMEDIATE");
      const t0 = performance.now();
      const from = migrate(db);
      db.exec("COMMIT");
      if (from < SCHEMA_VERSION) upgraded = { from, to: SCHEMA_VERSION, ms: Math.round(performance.now() - t0) };
    } catch (e) {
      db.close();
      const msg = (e as Error).message;
      if (/locked|busy/i.test(msg)) {
        throw new DataDirInUseError(
          `Data directory ${dir} is in use by another lanchat daemon; stop it or pass another --data-dir`,
          { cause: e },
        );
      }
      const hint = isCorruption(e) ? `; it is damaged: ${damageAdvice(path, KEY_FILE)}` : "";
      throw new Error(`Cannot open database ${path}: ${msg}${hint}`, { cause: e });
    }
    return new Connection(path, db, upgraded);
  }

  #stmts = new Map<string, ReturnType<DatabaseSync["prepare"]>>();

  /**
   * The SQL of every statement this store has prepared so far: its whole
   * query vocabulary once a workload has run (a test checks each one's plan).
   * It stays small: values are always bound, never written into the SQL.
   */
  preparedStatements(): string[] {
    return [...this.#stmts.keys()];
  }

  /** The prepared statement for `sql`: prepared on first use, then kept. */
  q(sql: string): ReturnType<DatabaseSync["prepare"]> {
    let st = this.#stmts.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.#stmts.set(sql, st);
    }
    return st;
  }

  /** Called when a group transaction opens; undefined while group commit is off. */
  #schedule: (() => void) | undefined;
  /** Whether a group transaction is open (written to, not yet committed). */
  #open = false;
  /** Set when SQLite ended the open group transaction on an error: the commit must fail. */
  #lost: Error | undefined;

  /**
   * Turns on group commit: from now on every write joins one open
   * transaction (each write in its own savepoint, so a failed write undoes
   * only itself) until {@link commit}. `schedule` is called each time such a
   * transaction opens; the caller commits soon after (the daemon: once per
   * turn of the event loop), and must not acknowledge or report anything
   * written meanwhile before the commit returns. One commit (about 70 µs
   * here) then serves a whole burst of messages instead of one each.
   */
  startGroupCommit(schedule: () => void): void {
    this.#schedule = schedule;
  }

  /** True while writes wait for {@link commit}. */
  get uncommitted(): boolean {
    return this.#open;
  }

  /**
   * Commits the open group transaction, if any, with the status updates
   * written behind.
   *
   * @throws {StoreError} when the commit fails: then everything written since
   * the last commit is rolled back (nothing of it is stored).
   */
  commit(): void {
    if (!this.#open) return;
    try {
      if (this.#lost) throw this.#lost;
      // Whatever was written before the damage was known stays uncommitted.
      if (this.#damaged) throw new Error(`${DAMAGED} (${this.#damaged})`);
      this.flush();
      this.db.exec("COMMIT");
    } catch (e) {
      this.noteError(e);
      try {
        this.db.exec("ROLLBACK");
      } catch { /* SQLite may have rolled back already */ }
      this.rolledBack();
      throw new StoreError(`Cannot store messages: ${(e as Error).message}`, { cause: e });
    } finally {
      this.#open = false;
      this.#lost = undefined;
    }
  }

  /**
   * Runs `fn` in one transaction; on any error rolls back and throws a
   * {@link StoreError}. Under group commit, `fn` runs in a savepoint of the
   * open group transaction instead, and is durable after {@link commit}.
   */
  transaction<T>(what: string, fn: () => T): T {
    this.#refuseIfDamaged(what);
    if (this.#schedule) return this.#inGroup(what, fn);
    try {
      this.db.exec("BEGIN IMMEDIATE");
    } catch (e) {
      this.noteError(e);
      throw new StoreError(`Cannot ${what}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const out = fn();
      this.db.exec("COMMIT");
      return out;
    } catch (e) {
      try {
        this.db.exec("ROLLBACK");
      } catch { /* the failed statement may have rolled back already */ }
      this.noteError(e);
      this.rolledBack();
      if (e instanceof StoreError) throw e;
      throw new StoreError(`Cannot ${what}: ${(e as Error).message}`, { cause: e });
    }
  }

  #inGroup<T>(what: string, fn: () => T): T {
    try {
      if (!this.#open) {
        this.db.exec("BEGIN IMMEDIATE");
        this.#open = true;
        this.#schedule!();
      }
      this.q("SAVEPOINT w").run();
    } catch (e) {
      this.noteError(e);
      throw new StoreError(`Cannot ${what}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const out = fn();
      this.q("RELEASE w").run();
      return out;
    } catch (e) {
      try {
        this.db.exec("ROLLBACK TO w");
        this.db.exec("RELEASE w");
      } catch { /* the failed statement may have ended the transaction */ }
      this.rolledBack();
      // SQLite ends the whole transaction on some errors (a full disk, an I/O
      // error): then the writes before this one are gone too, and the commit
      // must say so rather than commit what is left.
      if (!this.db.isTransaction) this.#lost ??= e as Error;
      this.noteError(e);
      if (e instanceof StoreError) throw e;
      throw new StoreError(`Cannot ${what}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * What is wrong with the database file, once it is known to be damaged
   * (a statement failed with SQLITE_CORRUPT, or {@link quickCheck} found a
   * problem); undefined while it is not.
   */
  get damaged(): string | undefined {
    return this.#damaged;
  }

  /** What a user should do about the damage, in words. */
  damageAdvice(): string {
    return damageAdvice(this.path, KEY_FILE);
  }

  /** Calls `fn` once, when the database is found damaged (at once if it already is). */
  onDamaged(fn: (what: string) => void): void {
    this.#onDamaged = fn;
    if (this.#damaged) fn(this.#damaged);
  }

  /**
   * Takes the database as damaged: from now on every write is refused with
   * a {@link StoreError} (so nothing is acknowledged that was not kept, and
   * nothing more is written into a damaged file), and what is uncommitted is
   * not committed. Reads go on: history the damage did not touch is shown.
   */
  markDamaged(what: string): void {
    if (this.#damaged) return;
    this.#damaged = what;
    this.#onDamaged?.(what);
  }

  /** Marks the database damaged when `e` is SQLite saying so (SQLITE_CORRUPT, SQLITE_NOTADB). */
  noteError(e: unknown): void {
    if (!this.#damaged && isCorruption(e)) this.markDamaged((e as Error).message);
  }

  /** The tables {@link quickCheck} checks one at a time. */
  tablesToCheck(): string[] {
    return tablesToCheck(this.db);
  }

  /**
   * Runs SQLite's `PRAGMA quick_check` on one table and its indexes (or the
   * whole file: it blocks, ~5 s for a million messages here) and marks the
   * database damaged when it finds a problem; returns the problems (none:
   * sound).
   */
  quickCheck(table?: string): string[] {
    let problems: string[];
    try {
      problems = quickCheck(this.db, table);
    } catch (e) {
      if (!isCorruption(e)) throw e;
      problems = [(e as Error).message];
    }
    if (problems.length > 0) this.markDamaged(`quick_check: ${problems.join("; ")}`);
    return problems;
  }

  #refuseIfDamaged(what: string): void {
    if (this.#damaged) {
      throw new StoreError(`Cannot ${what}: ${DAMAGED} (${this.#damaged}); ${this.damageAdvice()}`);
    }
  }

  /**
   * Checkpoints the write-ahead log now and cuts the file back (commits do
   * it by themselves past WAL_CHECKPOINT_PAGES); the open group transaction,
   * if any, is committed first, so it cannot be skipped.
   */
  checkpoint(): void {
    if (this.#open) this.commit();
    this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  /** Bytes of the database file. */
  databaseBytes(): number {
    try {
      return Deno.statSync(this.path).size;
    } catch {
      return 0;
    }
  }

  /** Bytes in the write-ahead log file now (0 when there is none). */
  walBytes(): number {
    try {
      return Deno.statSync(`${this.path}-wal`).size;
    } catch {
      return 0;
    }
  }

  /** A value of the `meta` table (the schema's key–value table), or undefined. */
  meta(key: string): string | undefined {
    const row = this.q("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
    return row?.value;
  }

  /** Commits (or, with nothing open, flushes what is written behind) and closes the connection. */
  close(): void {
    if (this.db.isOpen) {
      try {
        if (this.#open) this.commit();
        else this.flush();
      } catch { /* closing anyway; a re-send will fix the status */ }
    }
    this.#stmts.clear();
    if (this.db.isOpen) this.db.close();
  }
}
