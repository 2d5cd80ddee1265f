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
  /** Out: queued, sent, delivered or failed. In: received. */
  status: "queued" | "sent" | "delivered" | "failed" | "received";
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
      // WAL with synchronous=NORMAL: a committed transaction survives the
      // process being killed (kill -9); only an OS crash or power loss may
      // take the last commits. Measured here: 72 µs a commit, 276 µs with FULL.
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      // Checkpoints (which fsync) run from the daemon's timer, not inside
      // whichever commit happens to cross the threshold: see checkpoint().
      db.exec("PRAGMA wal_autocheckpoint = 0");
      // Group commit puts each write in a savepoint, whose undo log is a temp
      // file by default: a pwrite per write was a third of a receiver's time.
      db.exec("PRAGMA temp_store = MEMORY");
      // 8 MiB of page cache (default 2 MiB): a history of a few tens of
      // thousands of messages stays in memory instead of being re-read page
      // by page; an idle daemon with a small history uses no more than before.
      db.exec("PRAGMA cache_size = -8192");
      // The first write takes the exclusive lock and keeps it until close.
      db.exec("BEGIN IMMEDIATE");
      db.exec(SCHEMA);
      // Databases made before the protocol column existed.
      const columns = (db.prepare("PRAGMA table_info(peers)").all() as { name: string }[]).map((c) => c.name);
      if (!columns.includes("protocol")) {
        db.exec("ALTER TABLE peers ADD COLUMN protocol TEXT NOT NULL DEFAULT 'lanchat'");
      }
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
      const hint = /not a database|malformed|corrupt/i.test(msg)
        ? `; it is damaged: move it away to start with an empty history (the node key is kept apart, in ${KEY_FILE})`
        : "";
      throw new Error(`Cannot open database ${path}: ${msg}${hint}`, { cause: e });
    }
    return new Store(path, db);
  }

  #stmts = new Map<string, ReturnType<DatabaseSync["prepare"]>>();

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
      this.flush();
      this.#db.exec("COMMIT");
      this.#writesSinceCheckpoint++;
    } catch (e) {
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* SQLite may have rolled back already */ }
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
    if (this.#schedule) return this.#inGroup(what, fn);
    try {
      this.#db.exec("BEGIN IMMEDIATE");
    } catch (e) {
      throw new StoreError(`Cannot ${what}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const out = fn();
      this.#db.exec("COMMIT");
      this.#writesSinceCheckpoint++;
      return out;
    } catch (e) {
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* the failed statement may have rolled back already */ }
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
      // SQLite ends the whole transaction on some errors (a full disk, an I/O
      // error): then the writes before this one are gone too, and the commit
      // must say so rather than commit what is left.
      if (!this.#db.isTransaction) this.#lost ??= e as Error;
      if (e instanceof StoreError) throw e;
      throw new StoreError(`Cannot ${what}: ${(e as Error).message}`, { cause: e });
    }
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
    m: { id: string; peer: string; text: string; sentAt: number; status?: "queued" | "sent" },
  ): StoredMessage {
    return this.transaction("store the message", () => {
      const seq = this.#bumpSeq(m.peer, "out");
      const status = m.status ?? "queued";
      // run() and lastInsertRowid: RETURNING goes through a temporary table (2.5× slower here).
      const { lastInsertRowid } = this.#q(
        `INSERT INTO messages (id, peer, direction, seq, text, sent_at, status) VALUES (?, ?, 'out', ?, ?, ?, ?)`,
      ).run(m.id, m.peer, seq, m.text, m.sentAt, status);
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
      };
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
    if (this.#deferred.size === 0) return;
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

  #writesSinceCheckpoint = 0;

  /**
   * Copies the write-ahead log into the database file, fsyncs, and empties
   * the log, if anything was written since the last time. Called from the
   * daemon's timer so that the cost does not land on one message's latency.
   */
  checkpoint(): void {
    if (this.#writesSinceCheckpoint === 0 || this.#open) return;
    this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    this.#writesSinceCheckpoint = 0;
  }

  /** Outgoing messages not yet delivered, in sequence order per peer. */
  outbox(): StoredMessage[] {
    this.flush();
    return (this.#q(
      `SELECT * FROM messages WHERE direction = 'out' AND status IN ('queued', 'sent') ORDER BY peer, seq`,
    ).all() as Record<string, unknown>[]).map(toMessage);
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
      return toMessage(
        this.#q(
          `INSERT INTO messages (id, peer, direction, seq, text, sent_at, received_at, delivered_at, status)
           VALUES (?, ?, 'in', ?, ?, ?, ?, ?, 'received') RETURNING *`,
        ).get(m.id, m.peer, seq, m.text, m.sentAt, m.receivedAt, m.receivedAt) as Record<string, unknown>,
      );
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
          `INSERT INTO messages (id, peer, direction, seq, text, sent_at, received_at, delivered_at, status, gap_before, late)
           VALUES (?, ?, 'in', ?, ?, ?, ?, ?, 'received', ?, ?)`,
        ).run(m.id, m.peer, m.seq, m.text, m.sentAt, m.receivedAt, now, m.gapBefore, m.late ? 1 : 0);
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
   * History, oldest first: messages with a cursor above `since` (or, when
   * `since` is a time, sent at or after it), with or from `peer`, the last
   * `limit` of them.
   */
  history(q: { peer?: string; sinceCursor?: number; sinceTime?: number; limit?: number } = {}): StoredMessage[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.peer) {
      where.push("peer = ?");
      args.push(q.peer);
    }
    if (q.sinceCursor !== undefined) {
      where.push("cursor > ?");
      args.push(q.sinceCursor);
    }
    if (q.sinceTime !== undefined) {
      where.push("sent_at >= ?");
      args.push(q.sinceTime);
    }
    this.flush();
    const limit = Math.max(1, Math.min(q.limit ?? 100, 10_000));
    const sql = `SELECT * FROM (SELECT * FROM messages ${
      where.length ? "WHERE " + where.join(" AND ") : ""
    } ORDER BY cursor DESC LIMIT ${limit}) ORDER BY cursor ASC`;
    return (this.#db.prepare(sql).all(...args) as Record<string, unknown>[]).map(toMessage);
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
    const row = this.#db.prepare(
      `INSERT INTO meta (key, value) VALUES ('incarnation', '1')
       ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
       RETURNING value`,
    ).get() as { value: string | number };
    return Number(row.value);
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

const SCHEMA = `
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
  if (r.error !== null) m.error = String(r.error);
  return m;
}
