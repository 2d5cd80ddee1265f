/**
 * The schema: the tables as the first versions made them, then every change
 * since as a numbered migration, in order, and {@link migrate}, which brings
 * a database of any earlier version up to date when it is opened (see
 * connection.ts). A new table or column is a new entry at the end of
 * MIGRATIONS and a bump of {@link SCHEMA_VERSION}.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";

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
export const ENTERED = "(CASE direction WHEN 'in' THEN delivered_at ELSE sent_at END)";
/** Outgoing messages waiting for delivery: the condition of the partial index messages_pending. */
export const PENDING = "direction = 'out' AND status IN ('queued', 'sent')";

/** A message that edits or deletes another: not history itself (the message it changes is). */
export const AMEND = "ref_kind IN ('edit', 'delete')";
/** What history shows: neither a group message's copies to each member nor edits and deletions. */
export const SHOWN = "copy_of IS NULL AND (ref_kind IS NULL OR ref_kind = 'reply')";

/** The schema version this code writes (`PRAGMA user_version`). */
export const SCHEMA_VERSION = 6;

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
  {
    // Version 5: whether a message went end-to-end encrypted (1) or in the clear (0); NULL: not known
    // (before this version, or an outgoing one not delivered yet to a peer not yet seen).
    to: 5,
    sql: `ALTER TABLE messages ADD COLUMN encrypted INTEGER;`,
  },
  {
    // Version 6: replies, edits and deletions. A message may refer to another (ref_kind 'reply', 'edit' or
    // 'delete', ref_id its id): an edit or a deletion is a message of its own, carried like any other, hidden
    // from history and search (see AMEND); the message it changes gets edited_at or deleted_at and its new
    // text. wire_text: the text as sent, kept while an edited message still waits in the outbox (its fragments
    // must stay the bytes they were). group_msg: of a member's copy received, the id of the message as written
    // to the group (its group line's), which replies in the group name. held: the reference travels with a
    // message held for order.
    to: 6,
    sql: `
      ALTER TABLE messages ADD COLUMN ref_kind TEXT;
      ALTER TABLE messages ADD COLUMN ref_id TEXT;
      ALTER TABLE messages ADD COLUMN edited_at INTEGER;
      ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
      ALTER TABLE messages ADD COLUMN wire_text TEXT;
      ALTER TABLE messages ADD COLUMN group_msg TEXT;
      ALTER TABLE held ADD COLUMN ref_kind TEXT;
      ALTER TABLE held ADD COLUMN ref_id TEXT;
      CREATE INDEX IF NOT EXISTS messages_amends ON messages (ref_id) WHERE ${AMEND};
      CREATE INDEX IF NOT EXISTS messages_group_msg ON messages (group_msg) WHERE group_msg IS NOT NULL;
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
export function migrate(db: DatabaseSync): number {
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
