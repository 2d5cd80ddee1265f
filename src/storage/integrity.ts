/**
 * Noticing a damaged database. SQLite finds a damaged page only when a
 * statement reads it, so a file damaged in the middle opens fine and fails
 * later, at the first write that touches the page. The daemon therefore
 * checks the file after start, a table at a time ({@link tablesToCheck},
 * {@link quickCheck}: SQLite's `PRAGMA quick_check`), and takes any
 * statement that fails with `SQLITE_CORRUPT` as the same news
 * ({@link isCorruption}). From then on the store refuses every write (see
 * Store.markDamaged): nothing is acknowledged that it could not keep.
 *
 * A table at a time, on the daemon's own connection: it holds the file in
 * exclusive locking mode, so no other connection (a Worker's) can read it,
 * and Deno refuses the `immutable=1` URI that would let one. The whole file
 * takes 2.8–4.9 s for a million messages (450 MB) here; the largest step,
 * the messages table, 0.5–1.2 s of it (one stall of the event loop, once).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";

/** How every write refused because of the damage says so (the log says it once, with what to do). */
export const DAMAGED = "the database is damaged";

/** SQLite's result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB. */
const CORRUPT_CODES = new Set([11, 26]);

/** Whether an error from SQLite says the database file is damaged. */
export function isCorruption(e: unknown): boolean {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const code = (c as { errcode?: number }).errcode;
    if (typeof code === "number" && CORRUPT_CODES.has(code & 0xff)) return true;
    if (/database disk image is malformed|file is not a database|SQLITE_CORRUPT/i.test(c.message)) return true;
  }
  return false;
}

/**
 * Runs `PRAGMA quick_check` on `db`, or on one table and its indexes: the
 * first problems it finds, none when the file (or that table) is sound.
 */
export function quickCheck(db: DatabaseSync, table?: string): string[] {
  const what = table === undefined ? "5" : `"${table.replaceAll('"', '""')}"`;
  const rows = db.prepare(`PRAGMA quick_check(${what})`).all() as { quick_check: string }[];
  const problems = rows.flatMap((r) => String(r.quick_check).split("\n"))
    .filter((line) => line && !line.startsWith("*** in database"));
  return problems.length === 1 && problems[0] === "ok" ? [] : problems;
}

/**
 * The tables to check one at a time ({@link quickCheck} with a table), so
 * that no step holds the event loop for long: the schema first, then every
 * ordinary table (the search index's virtual tables are checked through
 * their shadow tables).
 */
export function tablesToCheck(db: DatabaseSync): string[] {
  const rows = db.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY rootpage",
  ).all() as { name: string }[];
  return ["sqlite_schema", ...rows.map((r) => r.name)];
}

/** What to do about a damaged database, in words. */
export function damageAdvice(path: string, keyFile: string): string {
  return `stop lanchat and move it away (mv ${path} ${path}.damaged; and ${path}-wal, if there is one, ` +
    `to ${path}.damaged-wal), then start lanchat again: ` +
    `it starts with an empty history, and peers send again what it did not acknowledge ` +
    `(to salvage the old history first: sqlite3 ${path}.damaged .recover | sqlite3 ${path}); ` +
    `the node key is kept apart, in ${keyFile}`;
}
