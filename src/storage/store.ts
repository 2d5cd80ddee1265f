/**
 * SQLite persistence (`node:sqlite`, built into Deno) in
 * `<data-dir>/lanchat.db`. The daemon holds the database in exclusive
 * locking mode, which doubles as the lock that keeps two daemons off one
 * data directory (they would share a node id).
 *
 * @module
 */
import { DB_FILE, KEY_FILE } from "../common/data_dir.ts";
import { DatabaseSync } from "node:sqlite";
import { damageAdvice, DAMAGED, isCorruption, quickCheck, tablesToCheck } from "./integrity.ts";

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
}

/**
 * A node key pinned on first use (like SSH's known_hosts): the key a node id
 * was first seen with, and the name it had then.
 * - `tofu`: pinned when first seen, not checked by a person;
 * - `trusted`: a person confirmed it (`lanchat trust`);
 * - `conflict`: first seen claiming a name already pinned to another key: a
 *   possible impersonation, never chosen by name until trusted;
 * - `replaced`: its name was handed to another key by `lanchat trust`.
 */
export interface Pin {
  id: string;
  /** Raw Ed25519 public key, hex. */
  key: string;
  name: string;
  firstSeen: number;
  trust: "tofu" | "trusted" | "conflict" | "replaced";
}

/** An incoming message persisted but held back until the messages before it arrive. */
export interface HeldMessage {
  id: string;
  peer: string;
  seq: number;
  text: string;
  sentAt: number;
  receivedAt: number;
}

/** An incoming message going into the inbox, as {@link Store.release} takes it. */
export type Release = HeldMessage & {
  /** The group it belongs to, if any. */
  group?: string;
  /** How many earlier messages of the sender are missing before it. */
  gapBefore: number;
  /** It arrived after later messages were shown. */
  late: boolean;
  /** False when it was never held, so there is nothing to delete from `held`. */
  wasHeld?: boolean;
};

/** A peer this node has seen, remembered so it can be addressed while offline. */
export interface KnownPeer {
  id: string;
  /** "lanchat", or "ipmsg" for IP Messenger, FeiQ and iptux users. */
  protocol: "lanchat" | "ipmsg";
  name: string;
  hostname: string;
  address: string;
  port: number;
  lastSeen: number;
}

/** Raised when a write fails (disk full, read-only directory…): nothing of it was stored. */
export class StoreError extends Error {
  override name = "StoreError";
}

/** A file transfer as stored: its state in columns, the rest as JSON (see node/services/files.ts). */
export interface TransferRow {
  id: string;
  direction: "in" | "out";
  peer: string;
  state: string;
  updated: number;
  json: string;
}

/** Raised when another daemon already uses the data directory. */
export class DataDirInUseError extends Error {
  override name = "DataDirInUseError";
}

/** The daemon's database. */
export class Store {
  readonly path: string;
  /** The schema version the database had, and how long bringing it up to date took, when it was older. */
  readonly upgraded: { from: number; to: number; ms: number } | undefined;
  #db: DatabaseSync;
  /** What is wrong with the file, once it is known to be damaged; every write is refused from then on. */
  #damaged: string | undefined;
  #onDamaged: ((what: string) => void) | undefined;

  private constructor(path: string, db: DatabaseSync, upgraded?: { from: number; to: number; ms: number }) {
    this.path = path;
    this.#db = db;
    this.upgraded = upgraded;
    this.#loadPartitions();
  }

  /**
   * Reads which search-index partitions exist. Also after a rollback: one
   * made in the transaction that was rolled back is gone again.
   */
  #loadPartitions(): void {
    this.#partitions.clear();
    const tables = this.#db.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'messages_fts_%'",
    ).all() as { name: string }[];
    for (const { name } of tables) {
      const m = /^messages_fts_(\d+)$/.exec(name);
      if (m) this.#partitions.add(Number(m[1]));
    }
  }

  /**
   * Opens (creating if needed, mode 0600) and locks the database in `dir`.
   *
   * @throws {DataDirInUseError} when another daemon holds it.
   */
  static async open(dir: string): Promise<Store> {
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
    return new Store(path, db, upgraded);
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

  #q(sql: string): ReturnType<DatabaseSync["prepare"]> {
    let st = this.#stmts.get(sql);
    if (!st) {
      st = this.#db.prepare(sql);
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
      this.#db.exec("COMMIT");
    } catch (e) {
      this.noteError(e);
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* SQLite may have rolled back already */ }
      this.#loadPartitions();
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
      this.#db.exec("BEGIN IMMEDIATE");
    } catch (e) {
      this.noteError(e);
      throw new StoreError(`Cannot ${what}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const out = fn();
      this.#db.exec("COMMIT");
      return out;
    } catch (e) {
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* the failed statement may have rolled back already */ }
      this.noteError(e);
      this.#loadPartitions();
      if (e instanceof StoreError) throw e;
      throw new StoreError(`Cannot ${what}: ${(e as Error).message}`, { cause: e });
    }
  }

  #inGroup<T>(what: string, fn: () => T): T {
    try {
      if (!this.#open) {
        this.#db.exec("BEGIN IMMEDIATE");
        this.#open = true;
        this.#schedule!();
      }
      this.#q("SAVEPOINT w").run();
    } catch (e) {
      this.noteError(e);
      throw new StoreError(`Cannot ${what}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const out = fn();
      this.#q("RELEASE w").run();
      return out;
    } catch (e) {
      try {
        this.#db.exec("ROLLBACK TO w");
        this.#db.exec("RELEASE w");
      } catch { /* the failed statement may have ended the transaction */ }
      this.#loadPartitions();
      // SQLite ends the whole transaction on some errors (a full disk, an I/O
      // error): then the writes before this one are gone too, and the commit
      // must say so rather than commit what is left.
      if (!this.#db.isTransaction) this.#lost ??= e as Error;
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
    return tablesToCheck(this.#db);
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
      problems = quickCheck(this.#db, table);
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

  /** Writes a file transfer's record (its files apart: {@link saveTransferFiles}). */
  saveTransfer(t: TransferRow): void {
    this.transaction("save the file transfer", () => {
      this.#q("INSERT OR REPLACE INTO transfers (id, direction, peer, state, updated, json) VALUES (?, ?, ?, ?, ?, ?)")
        .run(t.id, t.direction, t.peer, t.state, t.updated, t.json);
    });
  }

  /** Every transfer, newest first. */
  transfers(): TransferRow[] {
    return this.#q("SELECT id, direction, peer, state, updated, json FROM transfers ORDER BY updated DESC")
      .all() as unknown as TransferRow[];
  }

  /** Writes some files of a transfer (by index). */
  saveTransferFiles(id: string, direction: string, files: { idx: number; json: string }[]): void {
    this.transaction("save the files of a transfer", () => {
      const st = this.#q("INSERT OR REPLACE INTO transfer_files (id, direction, idx, json) VALUES (?, ?, ?, ?)");
      for (const f of files) st.run(id, direction, f.idx, f.json);
    });
  }

  /** A transfer's files, in order. */
  transferFiles(id: string, direction: string): { idx: number; json: string }[] {
    return this.#q("SELECT idx, json FROM transfer_files WHERE id = ? AND direction = ? ORDER BY idx")
      .all(id, direction) as unknown as { idx: number; json: string }[];
  }

  /** Forgets a transfer and its files. */
  deleteTransfer(id: string, direction: string): void {
    this.transaction("forget the file transfer", () => {
      this.#q("DELETE FROM transfer_files WHERE id = ? AND direction = ?").run(id, direction);
      this.#q("DELETE FROM transfers WHERE id = ? AND direction = ?").run(id, direction);
    });
  }

  /**
   * Marks incoming messages from `peer` up to `upTo` (a cursor) read at
   * `at`. Returns the newest incoming message up to there (what a read
   * receipt names) and how many were newly marked; only messages after the
   * last call's are visited.
   */
  markReadIn(
    peer: string,
    upTo: number,
    at: number,
    /** Messages whose text contains this stay unread (sealed ones: only opening them reads them). */
    unlessContaining: string,
  ): { lastId: string; marked: number } | undefined {
    return this.transaction("mark messages read", () => {
      const last = this.#q(
        "SELECT id, cursor FROM messages WHERE peer = ? AND cursor <= ? AND direction = 'in' ORDER BY cursor DESC LIMIT 1",
      ).get(peer, upTo) as { id: string; cursor: number } | undefined;
      if (!last) return undefined;
      const from = Number(this.setting(`read-in:${peer}`) ?? 0);
      if (last.cursor <= from) return { lastId: last.id, marked: 0 };
      const r = this.#q(
        `UPDATE messages SET read_at = ? WHERE peer = ? AND cursor > ? AND cursor <= ? AND direction = 'in'
         AND read_at IS NULL AND instr(text, ?) = 0`,
      ).run(at, peer, from, last.cursor, unlessContaining);
      this.saveSetting(`read-in:${peer}`, String(last.cursor));
      return { lastId: last.id, marked: Number(r.changes) };
    });
  }

  /**
   * Marks outgoing messages to `peer` read, up to and including message
   * `upToId` (from its read receipt); returns those newly marked.
   */
  markReadOut(peer: string, upToId: string, at: number): StoredMessage[] {
    return this.transaction("mark messages read by the peer", () => {
      const upTo = this.#q("SELECT cursor FROM messages WHERE id = ? AND peer = ?").get(upToId, peer) as
        | { cursor: number }
        | undefined;
      // A receipt names a message of ours (ids are the sender's, kept by the receiver): every one up to it is read.
      if (!upTo) return [];
      const cursor = upTo.cursor;
      const from = Number(this.setting(`read-out:${peer}`) ?? 0);
      if (cursor <= from) return [];
      const rows = this.#q(
        "SELECT * FROM messages WHERE peer = ? AND cursor > ? AND cursor <= ? AND direction = 'out' AND read_at IS NULL AND status != 'failed'",
      ).all(peer, from, cursor) as Record<string, unknown>[];
      this.#q(
        "UPDATE messages SET read_at = ? WHERE peer = ? AND cursor > ? AND cursor <= ? AND direction = 'out' AND read_at IS NULL AND status != 'failed'",
      ).run(at, peer, from, cursor);
      this.saveSetting(`read-out:${peer}`, String(cursor));
      // Read is past delivered, whatever the status written behind says yet.
      return rows.map((r) => ({ ...toMessage(r), status: "delivered" as const, readAt: at }));
    });
  }

  /** Marks one message read (a sealed message opened, or one of ours its reader opened); false if it was already. */
  markReadOne(id: string, at: number): boolean {
    return this.transaction(
      "mark the message read",
      () => Number(this.#q("UPDATE messages SET read_at = ? WHERE id = ? AND read_at IS NULL").run(at, id).changes) > 0,
    );
  }

  /** A stored message by its id or a unique prefix of it (8 hex digits or more); undefined when none or several. */
  messageByPrefix(prefix: string): StoredMessage | undefined {
    if (prefix.length === 32) return this.message(prefix);
    this.flush();
    const rows = this.#q("SELECT * FROM messages WHERE id >= ? AND id < ? ORDER BY id LIMIT 2").all(
      prefix,
      `${prefix}g`,
    ) as Record<string, unknown>[];
    return rows.length === 1 ? toMessage(rows[0]!) : undefined;
  }

  /** A setting kept across restarts (the node's presence), or undefined. */
  setting(key: string): string | undefined {
    return this.#meta(`setting:${key}`);
  }

  saveSetting(key: string, value: string): void {
    this.transaction("save a setting", () => {
      this.#q("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .run(`setting:${key}`, value);
    });
  }

  /** Remembers a peer (on join or restart), so it can be addressed while offline. */
  rememberPeer(p: KnownPeer): void {
    this.transaction("remember peer", () => {
      this.#q(
        `INSERT INTO peers (id, name, hostname, address, port, last_seen, protocol) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, hostname = excluded.hostname,
           address = excluded.address, port = excluded.port, last_seen = excluded.last_seen,
           protocol = excluded.protocol`,
      ).run(p.id, p.name, p.hostname, p.address, p.port, p.lastSeen, p.protocol);
    });
  }

  /** Every peer ever seen. */
  knownPeers(): KnownPeer[] {
    return (this.#q("SELECT id, name, hostname, address, port, last_seen, protocol FROM peers").all() as Record<
      string,
      unknown
    >[])
      .map((r) => ({
        id: String(r.id),
        protocol: r.protocol === "ipmsg" ? "ipmsg" as const : "lanchat" as const,
        name: String(r.name),
        hostname: String(r.hostname),
        address: String(r.address),
        port: Number(r.port),
        lastSeen: Number(r.last_seen),
      }));
  }

  /**
   * Forgets peers no message was ever exchanged with that were last seen
   * before `seenBefore` (ms since the epoch), and of the rest of those the
   * least recently seen beyond `keep`: what a flood of made-up peers leaves
   * behind does not stay forever. Returns the ids forgotten.
   */
  pruneKnownPeers(seenBefore: number, keep: number): string[] {
    const idle = this.#q(
      `SELECT id, last_seen FROM peers p
       WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.peer = p.id)
         AND NOT EXISTS (SELECT 1 FROM held h WHERE h.peer = p.id)
       ORDER BY last_seen DESC`,
    ).all() as { id: string; last_seen: number }[];
    const gone = idle.filter((r, i) => i >= keep || Number(r.last_seen) < seenBefore).map((r) => String(r.id));
    if (gone.length === 0) return gone;
    this.transaction("forget idle peers", () => {
      for (const id of gone) this.#q("DELETE FROM peers WHERE id = ?").run(id);
    });
    return gone;
  }

  /** Every pinned node key. */
  pins(): Pin[] {
    return (this.#q("SELECT id, key, name, first_seen, trust FROM pins").all() as Record<string, unknown>[])
      .map((r) => ({
        id: String(r.id),
        key: String(r.key),
        name: String(r.name),
        firstSeen: Number(r.first_seen),
        trust: String(r.trust) as Pin["trust"],
      }));
  }

  /** Writes (inserts or replaces) pins in one transaction. */
  savePins(pins: Pin[]): void {
    this.transaction("save node key pins", () => {
      for (const p of pins) {
        this.#q("INSERT OR REPLACE INTO pins (id, key, name, first_seen, trust) VALUES (?, ?, ?, ?, ?)")
          .run(p.id, p.key, p.name, p.firstSeen, p.trust);
      }
    });
  }

  /** Forgets a node's pinned key: the next hello pins it anew. */
  deletePin(id: string): void {
    this.transaction("forget the node key", () => {
      this.#q("DELETE FROM pins WHERE id = ?").run(id);
    });
  }

  /**
   * Stores a message to send, assigning it the next sequence number for its
   * peer; committed before it returns (the caller may then say "accepted").
   */
  insertOutgoing(
    m: {
      id: string;
      peer: string;
      text: string;
      sentAt: number;
      status?: "queued" | "sent" | "group";
      /** Of a group message, or of a copy of one: the group's id. */
      group?: string;
      /** A copy, for one member, of the group message with this id: kept out of history and search. */
      copyOf?: string;
    },
  ): StoredMessage {
    return this.transaction("store the message", () => {
      const seq = this.#bumpSeq(m.peer, "out");
      const status = m.status ?? "queued";
      // run() and lastInsertRowid: RETURNING goes through a temporary table (2.5× slower here).
      const { lastInsertRowid } = this.#q(
        `INSERT INTO messages (id, peer, direction, seq, text, sent_at, status, grp, copy_of)
         VALUES (?, ?, 'out', ?, ?, ?, ?, ?, ?)`,
      ).run(m.id, m.peer, seq, m.text, m.sentAt, status, m.group ?? null, m.copyOf ?? null);
      if (m.copyOf === undefined) this.#index(Number(lastInsertRowid), m.text);
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
      };
    });
  }

  /** The copies of a group message, one per member it was sent to. */
  copies(id: string): StoredMessage[] {
    this.flush();
    return (this.#q("SELECT * FROM messages WHERE copy_of = ? ORDER BY cursor").all(id) as Record<string, unknown>[])
      .map(toMessage);
  }

  /** Groups as saved by the group service (see node/services/groups.ts), as JSON. */
  groups(): { id: string; json: string }[] {
    return (this.#q("SELECT id, json FROM groups ORDER BY id").all() as { id: string; json: string }[])
      .map((r) => ({ id: String(r.id), json: String(r.json) }));
  }

  /** Saves a group (its members and name) as JSON. */
  saveGroup(id: string, json: string, at: number): void {
    this.transaction("save the group", () => {
      this.#q(
        "INSERT INTO groups (id, json, updated) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json, updated = excluded.updated",
      ).run(id, json, at);
    });
  }

  /**
   * Status updates of outgoing messages (sent, delivered, failed) are written
   * behind, in one transaction per {@link flush}: losing the last few in a
   * crash costs nothing but a re-send, which the receiver recognises as a
   * duplicate. Every read flushes first.
   */
  #deferred = new Map<
    string,
    { status: "sent" | "delivered" | "failed"; at?: number; rttMs?: number; error?: string }
  >();

  /** Marks an outgoing message transmitted at least once (written behind). */
  markSent(id: string): void {
    if (!this.#deferred.has(id)) this.#deferred.set(id, { status: "sent" });
  }

  /** Marks an outgoing message acknowledged by its peer (written behind). */
  markDelivered(id: string, at: number, rttMs: number): void {
    this.#deferred.set(id, { status: "delivered", at, rttMs });
  }

  /** Marks an outgoing message as refused for good by its peer (written behind). */
  markFailed(id: string, error: string): void {
    this.#deferred.set(id, { status: "failed", error });
  }

  /** Writes the status updates made since the last flush, in one transaction. */
  flush(): void {
    // A damaged database takes no writes: the updates wait in memory (a re-send fixes them after a restart).
    if (this.#deferred.size === 0 || this.#damaged) return;
    const updates = [...this.#deferred];
    this.transaction("record delivery status", () => {
      for (const [id, u] of updates) {
        if (u.status === "sent") {
          this.#q("UPDATE messages SET status = 'sent' WHERE id = ? AND status = 'queued'").run(id);
        } else if (u.status === "delivered") {
          this.#q(
            "UPDATE messages SET status = 'delivered', delivered_at = ?, rtt_ms = ? WHERE id = ? AND direction = 'out'",
          ).run(u.at!, u.rttMs!, id);
        } else {
          this.#q("UPDATE messages SET status = 'failed', error = ? WHERE id = ? AND direction = 'out'").run(
            u.error!,
            id,
          );
        }
      }
    });
    for (const [id] of updates) this.#deferred.delete(id);
  }

  /**
   * Checkpoints the write-ahead log now and cuts the file back (commits do
   * it by themselves past WAL_CHECKPOINT_PAGES); the open group transaction,
   * if any, is committed first, so it cannot be skipped.
   */
  checkpoint(): void {
    if (this.#open) this.commit();
    this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
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

  /**
   * Outgoing messages not yet delivered (to `peer`, or to anyone), in
   * sequence order per peer. All of them: the daemon reads its outbox in
   * windows ({@link outboxPage}); this is for tests and small outboxes.
   */
  outbox(peer?: string): StoredMessage[] {
    this.flush();
    const rows = peer === undefined
      ? this.#q(`SELECT * FROM messages WHERE ${PENDING} ORDER BY peer, seq`).all()
      : this.#q(`SELECT * FROM messages WHERE ${PENDING} AND peer = ? ORDER BY peer, seq`).all(peer);
    return (rows as Record<string, unknown>[]).map(toMessage);
  }

  /** How many outgoing messages wait for delivery, per peer (one pass over the pending index). */
  outboxCounts(): Map<string, number> {
    this.flush();
    const rows = this.#q(`SELECT peer, count(*) AS n FROM messages WHERE ${PENDING} GROUP BY peer`).all() as {
      peer: string;
      n: number;
    }[];
    return new Map(rows.map((r) => [String(r.peer), Number(r.n)]));
  }

  /** The next `limit` outgoing messages waiting for `peer` after sequence number `afterSeq`, in order. */
  outboxPage(peer: string, afterSeq: number, limit: number): StoredMessage[] {
    this.flush();
    return (this.#q(`SELECT * FROM messages WHERE ${PENDING} AND peer = ? AND seq > ? ORDER BY seq LIMIT ?`)
      .all(peer, afterSeq, limit) as Record<string, unknown>[]).map(toMessage);
  }

  /** True when a message with this id is stored, visible or held. */
  hasMessage(id: string): boolean {
    return this.#q("SELECT 1 FROM messages WHERE id = ? UNION ALL SELECT 1 FROM held WHERE id = ?").get(id, id) !==
      undefined;
  }

  /** A stored (visible) message by id. */
  message(id: string): StoredMessage | undefined {
    this.flush();
    const row = this.#q("SELECT * FROM messages WHERE id = ?").get(id) as Record<string, unknown> | undefined;
    return row ? toMessage(row) : undefined;
  }

  /**
   * Stores an incoming message that needs no ordering (IP Messenger has no
   * sequence numbers) straight into the inbox, numbering it per peer.
   */
  receiveUnordered(m: { id: string; peer: string; text: string; sentAt: number; receivedAt: number }): StoredMessage {
    return this.transaction("store the message", () => {
      const seq = this.#bumpSeq(m.peer, "in");
      const message = toMessage(
        this.#q(
          `INSERT INTO messages (id, peer, direction, seq, text, sent_at, received_at, delivered_at, status)
           VALUES (?, ?, 'in', ?, ?, ?, ?, ?, 'received') RETURNING *`,
        ).get(m.id, m.peer, seq, m.text, m.sentAt, m.receivedAt, m.receivedAt) as Record<string, unknown>,
      );
      this.#index(message.cursor, message.text);
      return message;
    });
  }

  /** The next sequence number expected from a peer (1 when none was seen). */
  expectedSeq(peer: string): number {
    const row = this.#q("SELECT next FROM sequences WHERE peer = ? AND direction = 'in'").get(peer) as
      | { next: number }
      | undefined;
    return row ? Number(row.next) : 1;
  }

  /** Stores an incoming message held back until the messages before it arrive. */
  hold(m: HeldMessage): void {
    this.transaction("store the message", () => {
      this.#q("INSERT INTO held (id, peer, seq, text, sent_at, received_at) VALUES (?, ?, ?, ?, ?, ?)")
        .run(m.id, m.peer, m.seq, m.text, m.sentAt, m.receivedAt);
    });
  }

  /** Incoming messages held back, in sequence order per peer. */
  heldMessages(): HeldMessage[] {
    return (this.#q("SELECT * FROM held ORDER BY peer, seq").all() as Record<string, unknown>[]).map((r) => ({
      id: String(r.id),
      peer: String(r.peer),
      seq: Number(r.seq),
      text: String(r.text),
      sentAt: Number(r.sent_at),
      receivedAt: Number(r.received_at),
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
  ): StoredMessage[] {
    return this.transaction("store the message", () => {
      const out: StoredMessage[] = [];
      for (const m of messages) {
        if (m.wasHeld !== false) this.#q("DELETE FROM held WHERE id = ?").run(m.id);
        const { lastInsertRowid } = this.#q(
          `INSERT INTO messages (id, peer, direction, seq, text, sent_at, received_at, delivered_at, status, gap_before, late, grp)
           VALUES (?, ?, 'in', ?, ?, ?, ?, ?, 'received', ?, ?, ?)`,
        ).run(m.id, m.peer, m.seq, m.text, m.sentAt, m.receivedAt, now, m.gapBefore, m.late ? 1 : 0, m.group ?? null);
        this.#index(Number(lastInsertRowid), m.text);
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
        });
      }
      this.#q(
        `INSERT INTO sequences (peer, direction, next) VALUES (?, 'in', ?)
         ON CONFLICT (peer, direction) DO UPDATE SET next = MAX(next, excluded.next)`,
      ).run(peer, nextExpected);
      return out;
    });
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
    this.flush();
    // Forward from `after`; otherwise backward from the end (or `before`), then turned around.
    const sql = forward
      ? `SELECT * FROM messages ${filter} ORDER BY cursor ASC LIMIT ?`
      : `SELECT * FROM (SELECT * FROM messages ${filter} ORDER BY cursor DESC LIMIT ?) ORDER BY cursor ASC`;
    // The limit is bound, not written into the SQL: each statement is kept prepared, and one per limit would be
    // a cache that grows with every page size a client asks for.
    return (this.#q(sql).all(...args, limit) as Record<string, unknown>[]).map(toMessage);
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
    const row = this.#q(
      `SELECT min(cursor) AS first, max(cursor) AS last, count(*) AS n FROM
       (SELECT cursor FROM messages ${filter} ORDER BY cursor ${forward ? "ASC" : "DESC"} LIMIT ?)`,
    ).get(...args, limit) as { first: number | null; last: number | null; n: number };
    if (!row.n) return undefined;
    return { first: Number(row.first), last: Number(row.last), count: Number(row.n) };
  }

  /** The WHERE clause of a page of history, its arguments, its direction and its size. */
  #page(q: HistoryQuery): { filter: string; args: (string | number)[]; forward: boolean; limit: number } {
    // A group message's copies to each member are not history: the message written to the group is.
    const where: string[] = ["copy_of IS NULL"];
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
    const row = this.#q(`SELECT cursor FROM messages WHERE ${ENTERED} >= ? ORDER BY ${ENTERED} LIMIT 1`).get(time) as
      | { cursor: number }
      | undefined;
    if (row) return Number(row.cursor);
    return this.lastCursor() + 1;
  }

  /** The highest cursor so far (0 for an empty history). */
  lastCursor(): number {
    const row = this.#q("SELECT max(cursor) AS c FROM messages").get() as { c: number | null };
    return Number(row.c ?? 0);
  }

  /**
   * Messages whose text contains `text` (any language: CJK included; case
   * is ignored for ASCII), newest first, with or from `peer` if given,
   * before cursor `before` if given. A text of three characters or more is
   * found through the trigram indexes over all of history, newest partition
   * first (see {@link SEARCH_PARTITION}); a shorter one (a trigram index
   * cannot look it up) is looked for in the newest
   * {@link SHORT_SEARCH_WINDOW} messages only, and `complete` says so, as it
   * does while older history is still being indexed after an upgrade.
   */
  search(q: { text: string; peer?: string; before?: number; limit?: number }): SearchResult {
    this.flush();
    const limit = Math.max(1, Math.min(q.limit ?? 50, MAX_SEARCH_PAGE));
    const before = Math.min(q.before ?? Number.MAX_SAFE_INTEGER, this.lastCursor() + 1);
    let complete = this.searchIndexProgress().done;
    const found: StoredMessage[] = [];
    // LIKE's wildcards in the text itself: the index narrows, an exact test decides.
    const exact = /[%_]/.test(q.text)
      ? (m: StoredMessage) => asciiLower(m.text).includes(asciiLower(q.text))
      : undefined;
    const take = (rows: unknown[]) => {
      for (const m of (rows as Record<string, unknown>[]).map(toMessage)) {
        if (found.length < limit && (!exact || exact(m))) found.push(m);
      }
    };
    const pattern = `%${q.text}%`;
    const peer = (q.peer ? "AND m.peer = ? " : "") + "AND m.copy_of IS NULL";
    const peerArg = q.peer ? [q.peer] : [];
    if ([...q.text].length >= 3) {
      for (let part = (before - 1) >> SEARCH_PARTITION_BITS; part >= 0 && found.length < limit; part--) {
        if (!this.#partitions.has(part)) continue;
        // Within a partition, page by cursor until enough or none is left.
        for (let upTo = before; found.length < limit;) {
          const want = limit - found.length + (exact ? 64 : 0);
          const rows = this.#q(
            `SELECT m.* FROM ${partitionTable(part)} f JOIN messages m ON m.cursor = f.rowid
             WHERE f.text LIKE ? AND f.rowid < ? ${peer} ORDER BY f.rowid DESC LIMIT ?`,
          ).all(pattern, upTo, ...peerArg, want) as Record<string, unknown>[];
          take(rows);
          if (rows.length < want) break;
          upTo = Number(rows.at(-1)!.cursor);
        }
      }
    } else {
      const from = this.lastCursor() - SHORT_SEARCH_WINDOW;
      complete = from <= 0;
      take(
        this.#q(
          `SELECT m.* FROM messages m WHERE m.text LIKE ? ESCAPE '\\' AND m.cursor < ? ${peer} AND m.cursor > ?
           ORDER BY m.cursor DESC LIMIT ?`,
        ).all(`%${q.text.replace(/[\\%_]/g, (c) => "\\" + c)}%`, before, ...peerArg, from, limit),
      );
    }
    return { messages: found, complete };
  }

  /** Partitions of the search index that exist (partition n holds cursors n·2^16 … (n+1)·2^16 − 1). */
  #partitions = new Set<number>();

  /** Adds a message to the search index, in its partition (made when its first message comes). */
  #index(cursor: number, text: string): void {
    const part = cursor >> SEARCH_PARTITION_BITS;
    if (!this.#partitions.has(part)) {
      this.#db.exec(
        `CREATE VIRTUAL TABLE IF NOT EXISTS ${partitionTable(part)} USING fts5(
           text, content='messages', content_rowid='cursor', tokenize='trigram', detail=none)`,
      );
      this.#partitions.add(part);
    }
    this.#q(`INSERT INTO ${partitionTable(part)} (rowid, text) VALUES (?, ?)`).run(cursor, text);
  }

  /** How far the search index has been built over the history it was added to (after an upgrade). */
  searchIndexProgress(): { done: boolean; indexed: number; total: number } {
    const next = Number(this.#meta("search_backfill_next") ?? 1);
    const end = Number(this.#meta("search_backfill_end") ?? 0);
    return { done: next > end, indexed: Math.min(end, next - 1), total: end };
  }

  /**
   * Adds up to `rows` more of the history that existed before the search
   * index did to it, in one write (new messages are indexed as they are
   * stored). Returns the progress.
   */
  indexForSearch(rows: number): { done: boolean; indexed: number; total: number } {
    const { done, indexed, total } = this.searchIndexProgress();
    if (done) return { done, indexed, total };
    const from = indexed + 1;
    this.transaction("index history for search", () => {
      const last = this.#q(
        `SELECT max(cursor) AS c FROM (SELECT cursor FROM messages WHERE cursor >= ? AND cursor <= ? ORDER BY cursor LIMIT ?)`,
      ).get(from, total, rows) as { c: number | null };
      const to = last.c === null ? total : Number(last.c);
      const batch = this.#q("SELECT cursor, text FROM messages WHERE cursor >= ? AND cursor <= ?").all(from, to) as {
        cursor: number;
        text: string;
      }[];
      for (const r of batch) this.#index(Number(r.cursor), String(r.text));
      this.#q("UPDATE meta SET value = ? WHERE key = 'search_backfill_next'").run(String(to + 1));
    });
    return this.searchIndexProgress();
  }

  #meta(key: string): string | undefined {
    const row = this.#q("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
    return row?.value;
  }

  #bumpSeq(peer: string, direction: "in" | "out"): number {
    const row = this.#q(
      `INSERT INTO sequences (peer, direction, next) VALUES (?, ?, 2)
       ON CONFLICT (peer, direction) DO UPDATE SET next = next + 1 RETURNING next`,
    ).get(peer, direction) as { next: number };
    return Number(row.next) - 1;
  }

  /** Bumps and returns the incarnation number: 1 on the first start, then 2, 3, … */
  nextIncarnation(): number {
    try {
      const row = this.#db.prepare(
        `INSERT INTO meta (key, value) VALUES ('incarnation', '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
         RETURNING value`,
      ).get() as { value: string | number };
      return Number(row.value);
    } catch (e) {
      if (!isCorruption(e)) throw e;
      throw new Error(
        `Cannot start: the database ${this.path} is damaged (${(e as Error).message}); ${this.damageAdvice()}`,
        { cause: e },
      );
    }
  }

  close(): void {
    if (this.#db.isOpen) {
      try {
        if (this.#open) this.commit();
        else this.flush();
      } catch { /* closing anyway; a re-send will fix the status */ }
    }
    this.#stmts.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}

/**
 * The schema as the first versions made it (version 0: before the schema
 * had a version number). Every later change is a migration below.
 */
const SCHEMA_V0 = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS peers (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, hostname TEXT NOT NULL,
  address TEXT NOT NULL, port INTEGER NOT NULL, last_seen INTEGER NOT NULL,
  protocol TEXT NOT NULL DEFAULT 'lanchat'
);
-- Node keys pinned on first use (see Pin).
CREATE TABLE IF NOT EXISTS pins (
  id TEXT PRIMARY KEY, key TEXT NOT NULL, name TEXT NOT NULL, first_seen INTEGER NOT NULL, trust TEXT NOT NULL
);
-- Visible history, in the order it became visible (cursor).
CREATE TABLE IF NOT EXISTS messages (
  cursor INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  peer TEXT NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
  seq INTEGER NOT NULL,
  text TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  received_at INTEGER,
  delivered_at INTEGER,
  status TEXT NOT NULL,
  rtt_ms REAL,
  gap_before INTEGER NOT NULL DEFAULT 0,
  late INTEGER NOT NULL DEFAULT 0,
  error TEXT
);
CREATE INDEX IF NOT EXISTS messages_peer ON messages (peer, cursor);
CREATE INDEX IF NOT EXISTS messages_outbox ON messages (direction, status);
-- Incoming messages received ahead of a gap: stored, acknowledged, not yet shown.
CREATE TABLE IF NOT EXISTS held (
  id TEXT PRIMARY KEY, peer TEXT NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL,
  sent_at INTEGER NOT NULL, received_at INTEGER NOT NULL
);
-- out: next sequence number to assign to a peer; in: next one expected from it.
CREATE TABLE IF NOT EXISTS sequences (
  peer TEXT NOT NULL, direction TEXT NOT NULL, next INTEGER NOT NULL, PRIMARY KEY (peer, direction)
);
`;

/** When a message entered this node's history: an incoming one when it was shown, an outgoing one when sent. */
const ENTERED = "(CASE direction WHEN 'in' THEN delivered_at ELSE sent_at END)";
/** Outgoing messages waiting for delivery: the condition of the partial index messages_pending. */
const PENDING = "direction = 'out' AND status IN ('queued', 'sent')";
/** Largest page of history. */
export const MAX_PAGE = 10_000;
/** Largest page of search results (each is found, then kept until the page is sent). */
export const MAX_SEARCH_PAGE = 1_000;
/** A search text under three characters is looked for in this many of the newest messages. */
export const SHORT_SEARCH_WINDOW = 100_000;
/** The write-ahead log is checkpointed by the commit that takes it past this many pages (4 KiB each). */
export const WAL_CHECKPOINT_PAGES = 1000;
/** After a checkpoint, the write-ahead log file is cut back to this many bytes. */
export const WAL_FILE_LIMIT = 16 * 1024 * 1024;

/**
 * The search index is one FTS5 table (trigram tokens, `detail=none`) per
 * 2^16 cursors, `messages_fts_0`, `messages_fts_1`, …: a trigram query
 * cannot seek within one index's token lists, so in a single index of a
 * million messages a page of older results for a common word cost 200 ms;
 * a partition costs a few ms, and a search goes from the newest partition
 * back, stopping when the page is full. Inserting into the small current
 * partition is also twice as fast. Each message is indexed in the same write
 * that stores it.
 */
export const SEARCH_PARTITION_BITS = 16;
export const SEARCH_PARTITION = 2 ** SEARCH_PARTITION_BITS;

function partitionTable(part: number): string {
  return `messages_fts_${part}`;
}

/** Lower case for ASCII letters only, as SQLite's LIKE compares. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** The schema version this code writes (`PRAGMA user_version`). */
export const SCHEMA_VERSION = 4;

/** Each schema change since version 0, in order: run on start, in the transaction that opens the database. */
const MIGRATIONS: { to: number; sql: string }[] = [
  {
    // Version 1: history paged by time, search, and an outbox read in windows.
    to: 1,
    sql: `
      CREATE INDEX IF NOT EXISTS messages_pending ON messages (peer, seq) WHERE ${PENDING};
      DROP INDEX IF EXISTS messages_outbox;
      CREATE INDEX IF NOT EXISTS messages_entered ON messages ${ENTERED};
      CREATE INDEX IF NOT EXISTS held_peer ON held (peer, seq);
      -- The search index (messages_fts_N, made as history grows: see Store.search) covers new
      -- messages as they are stored; history from before it is indexed after start, a little at
      -- a time (Store.indexForSearch).
      INSERT INTO meta (key, value) VALUES ('search_backfill_next', '1') ON CONFLICT (key) DO NOTHING;
      INSERT INTO meta (key, value) SELECT 'search_backfill_end', CAST(COALESCE(max(cursor), 0) AS TEXT) FROM messages
        WHERE true ON CONFLICT (key) DO NOTHING;
    `,
  },
  {
    // Version 2: file transfers, both ways; a transfer's files in rows of their own (an offer may list 100,000).
    to: 2,
    sql: `
      CREATE TABLE IF NOT EXISTS transfers (
        id TEXT NOT NULL, direction TEXT NOT NULL, peer TEXT NOT NULL, state TEXT NOT NULL,
        updated INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (id, direction)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS transfer_files (
        id TEXT NOT NULL, direction TEXT NOT NULL, idx INTEGER NOT NULL, json TEXT NOT NULL,
        PRIMARY KEY (id, direction, idx)
      ) WITHOUT ROWID;
    `,
  },
  {
    // Version 3: read receipts (when a message was read: an incoming one here, an outgoing one by its peer).
    to: 3,
    sql: `ALTER TABLE messages ADD COLUMN read_at INTEGER;`,
  },
  {
    // Version 4: group conversations: a message's group; a group message's copies to each member; the groups.
    to: 4,
    sql: `
      ALTER TABLE messages ADD COLUMN grp TEXT;
      ALTER TABLE messages ADD COLUMN copy_of TEXT;
      CREATE INDEX IF NOT EXISTS messages_group ON messages (grp, cursor) WHERE grp IS NOT NULL;
      CREATE INDEX IF NOT EXISTS messages_copies ON messages (copy_of) WHERE copy_of IS NOT NULL;
      CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, json TEXT NOT NULL, updated INTEGER NOT NULL);
    `,
  },
];

/**
 * Brings a database of any earlier version to {@link SCHEMA_VERSION}, inside
 * the caller's transaction (a failure leaves it as it was). Returns the
 * version it had (a new database: {@link SCHEMA_VERSION}).
 *
 * @throws {Error} for a database made by a newer version of lanchat.
 */
function migrate(db: DatabaseSync): number {
  const version = Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `its schema is version ${version}, newer than this lanchat's (${SCHEMA_VERSION}): upgrade lanchat, or use another --data-dir`,
    );
  }
  // Version 0 is also an empty file: then nothing is being upgraded.
  const fresh = version === 0 && db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'messages'").get() === undefined;
  if (version === 0) {
    db.exec(SCHEMA_V0);
    // Databases made before the protocol column existed.
    const columns = (db.prepare("PRAGMA table_info(peers)").all() as { name: string }[]).map((c) => c.name);
    if (!columns.includes("protocol")) {
      db.exec("ALTER TABLE peers ADD COLUMN protocol TEXT NOT NULL DEFAULT 'lanchat'");
    }
  }
  for (const m of MIGRATIONS) {
    if (m.to <= version) continue;
    db.exec(m.sql);
    db.exec(`PRAGMA user_version = ${m.to}`);
  }
  return fresh ? SCHEMA_VERSION : version;
}

/** A page of history as {@link Store.history} reads it. */
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

/** Search results, newest first; `complete` is false when part of history could not be searched. */
export interface SearchResult {
  messages: StoredMessage[];
  complete: boolean;
}

function toMessage(r: Record<string, unknown>): StoredMessage {
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
  return m;
}
