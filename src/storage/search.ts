/**
 * The search index: one FTS5 trigram table per 2^16 cursors
 * ({@link SEARCH_PARTITION}), filled as messages are stored
 * ({@link SearchIndex.index}, in the same write) and, for the history from
 * before the index existed, a little at a time after start
 * ({@link SearchIndex.indexForSearch}); and {@link SearchIndex.search}.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import type { History } from "./history.ts";
import { type StoredMessage, toMessage } from "./stored_message.ts";

/** Largest page of search results (each is found, then kept until the page is sent). */
export const MAX_SEARCH_PAGE = 1_000;
/** A search text under three characters is looked for in this many of the newest messages. */
export const SHORT_SEARCH_WINDOW = 100_000;

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

/** Lower case for ASCII letters only, as SQLite's LIKE and lower() compare. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/**
 * Most messages one search request looks at: the rows the trigram index
 * offers (every message that has all of the text's trigrams, with or from
 * any peer) before the exact test and the peer or group decide. Each costs
 * about 3 µs here (5,000 took 16–17 ms at 200,000 messages), so no text (one
 * whose trigrams are everywhere, a rare peer's messages among a common word,
 * case that differs beyond A–Z) holds the daemon's one thread for long: the
 * answer is then not complete and says where to go on
 * ({@link SearchResult.next}). A full page ({@link MAX_SEARCH_PAGE}) of
 * offered rows that all match fits 5 times over.
 */
export const SEARCH_SCAN_LIMIT = 5_000;

/** Most trigrams a search asks the index for (spread over a long text; the exact test checks all of it). */
const MAX_QUERY_TRIGRAMS = 12;

/**
 * The trigram index's query for `text`, literal: each of its trigrams a
 * quoted FTS5 string (so nothing in it is FTS5 syntax: `"`, `*`, `AND`,
 * `NEAR`, `:`), all of them required; a superset of the messages that
 * contain the text (the index folds case beyond A–Z and does not check the
 * trigrams' order), which the exact test narrows. A NUL ends a string in
 * FTS5's query parser, so no trigram spans one. Undefined when the text has
 * no trigram (under 3 characters between NULs): the index cannot look it
 * up.
 */
export function trigramQuery(text: string): string | undefined {
  const grams: string[] = [];
  for (const part of asciiLower(text).split("\0")) {
    const chars = [...part];
    for (let i = 0; i + 3 <= chars.length; i++) grams.push(chars.slice(i, i + 3).join(""));
  }
  const distinct = [...new Set(grams)];
  if (distinct.length === 0) return undefined;
  // A long text: trigrams spread evenly over it, the first and the last included.
  const picked = distinct.length <= MAX_QUERY_TRIGRAMS
    ? distinct
    : Array.from({ length: MAX_QUERY_TRIGRAMS }, (_, i) =>
      distinct[Math.round(i * (distinct.length - 1) / (MAX_QUERY_TRIGRAMS - 1))]!);
  return picked.map((g) => `"${g.replaceAll('"', '""')}"`).join(" ");
}

/**
 * The exact test, as SQL on `m.text`, and its argument: contains `text`
 * literally, case ignored for A–Z only. LIKE with its wildcards `%` `_` and
 * its escape character escaped; LIKE reads its pattern only up to a NUL, so
 * a text with one is looked for with `instr(lower(…))` instead (which reads
 * all of it; 3 times slower than LIKE here, so only then).
 */
function containsTest(text: string): [sql: string, arg: string] {
  if (text.includes("\0")) return ["instr(lower(m.text), ?) > 0", asciiLower(text)];
  return ["m.text LIKE ? ESCAPE '\\'", `%${text.replace(/[\\%_]/g, (c) => "\\" + c)}%`];
}

/** Search results, newest first. */
export interface SearchResult {
  messages: StoredMessage[];
  /** False when part of history was not searched: {@link SearchResult.partial} says which. */
  complete: boolean;
  /**
   * Why not complete: `window`, a text the index cannot look up was looked
   * for in the newest {@link SHORT_SEARCH_WINDOW} messages only; `indexing`,
   * older history is still being indexed after an upgrade; `scanned`, the
   * request looked at {@link SEARCH_SCAN_LIMIT} messages and stopped at
   * {@link SearchResult.next}.
   */
  partial?: "window" | "indexing" | "scanned";
  /**
   * Where older results are looked for (as `before`), when this answer
   * stopped before the start of what it searches: the page is full (the last
   * message's cursor), or {@link SEARCH_SCAN_LIMIT} was reached.
   */
  next?: number;
}

/** The search-index room of the store. */
export class SearchIndex {
  readonly #c: Connection;
  readonly #history: History;
  /** Partitions of the search index that exist (partition n holds cursors n·2^16 … (n+1)·2^16 − 1). */
  #partitions = new Set<number>();

  constructor(c: Connection, history: History) {
    this.#c = c;
    this.#history = history;
    this.loadPartitions();
  }

  /**
   * Reads which search-index partitions exist. Also after a rollback: one
   * made in the transaction that was rolled back is gone again.
   */
  loadPartitions(): void {
    this.#partitions.clear();
    const tables = this.#c.db.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'messages_fts_%'",
    ).all() as { name: string }[];
    for (const { name } of tables) {
      const m = /^messages_fts_(\d+)$/.exec(name);
      if (m) this.#partitions.add(Number(m[1]));
    }
  }

  /**
   * Messages whose text contains `text` literally (any language: CJK
   * included; case is ignored for A–Z only; `%`, `_`, `\`, `"`, NUL and
   * other control characters are plain characters), newest first, with or
   * from `peer` if given (or written to `group`, which then stands instead
   * of `peer`), before cursor `before` if given. A text with a trigram (3
   * characters in a row) is found through the trigram indexes over all of
   * history, newest partition first (see {@link SEARCH_PARTITION}), looking
   * at {@link SEARCH_SCAN_LIMIT} messages at most; a shorter one (a trigram
   * index cannot look it up) is looked for in the newest
   * {@link SHORT_SEARCH_WINDOW} messages only. `complete` and `partial` say
   * when part of history was not searched, `next` where to go on.
   */
  search(q: { text: string; peer?: string; group?: string; before?: number; limit?: number }): SearchResult {
    this.#c.flush();
    const limit = Math.max(1, Math.min(q.limit ?? 50, MAX_SEARCH_PAGE));
    const before = Math.min(q.before ?? Number.MAX_SAFE_INTEGER, this.#history.lastCursor() + 1);
    const [contains, containsArg] = containsTest(q.text);
    const shown = (q.group ? "AND m.grp = ? " : q.peer ? "AND m.peer = ? " : "") +
      "AND m.copy_of IS NULL AND (m.ref_kind IS NULL OR m.ref_kind = 'reply')";
    const shownArgs = q.group ? [q.group] : q.peer ? [q.peer] : [];
    const match = trigramQuery(q.text);
    if (match === undefined) {
      const from = this.#history.lastCursor() - SHORT_SEARCH_WINDOW;
      const messages = (this.#c.q(
        `SELECT m.* FROM messages m WHERE ${contains} AND m.cursor < ? ${shown} AND m.cursor > ?
         ORDER BY m.cursor DESC LIMIT ?`,
      ).all(containsArg, before, ...shownArgs, from, limit) as Record<string, unknown>[]).map(toMessage);
      return {
        messages,
        complete: from <= 0,
        ...(from <= 0 ? {} : { partial: "window" as const }),
        ...(messages.length === limit ? { next: messages.at(-1)!.cursor } : {}),
      };
    }
    const found: StoredMessage[] = [];
    let scanned = 0;
    let next: number | undefined;
    // Partitions from the newest back; within one, rows by cursor a chunk at a time: every row the index
    // offers comes back (`at`), with the message when it is shown here and contains the text.
    let chunk = limit + 16;
    let upTo = before; // the oldest row looked at so far
    search: for (let part = (before - 1) >> SEARCH_PARTITION_BITS; part >= 0; part--) {
      if (!this.#partitions.has(part)) continue;
      for (;;) {
        if (scanned >= SEARCH_SCAN_LIMIT) {
          next = upTo;
          break search;
        }
        const want = Math.min(chunk, SEARCH_SCAN_LIMIT - scanned);
        const t = partitionTable(part);
        const rows = this.#c.q(
          `SELECT f.rowid AS at, m.* FROM ${t} f LEFT JOIN messages m ON m.cursor = f.rowid ${shown} AND ${contains}
           WHERE f.${t} MATCH ? AND f.rowid < ? ORDER BY f.rowid DESC LIMIT ?`,
        ).all(...shownArgs, containsArg, match, upTo, want) as Record<string, unknown>[];
        for (const row of rows) {
          scanned++;
          upTo = Number(row.at);
          if (row.cursor === null) continue;
          found.push(toMessage(row));
          if (found.length === limit) {
            next = upTo;
            break search;
          }
        }
        if (rows.length < want) break;
        chunk = Math.min(chunk * 2, 2_000); // few shown or matching among what the index offers
      }
    }
    const partial = next !== undefined && found.length < limit
      ? "scanned" as const
      : this.searchIndexProgress().done
      ? undefined
      : "indexing" as const;
    return {
      messages: found,
      complete: partial === undefined,
      ...(partial ? { partial } : {}),
      ...(next === undefined ? {} : { next }),
    };
  }

  /** Adds a message to the search index, in its partition (made when its first message comes). */
  index(cursor: number, text: string): void {
    const part = cursor >> SEARCH_PARTITION_BITS;
    if (!this.#partitions.has(part)) {
      this.#c.db.exec(
        `CREATE VIRTUAL TABLE IF NOT EXISTS ${partitionTable(part)} USING fts5(
           text, content='messages', content_rowid='cursor', tokenize='trigram', detail=none)`,
      );
      this.#partitions.add(part);
    }
    this.#c.q(`INSERT INTO ${partitionTable(part)} (rowid, text) VALUES (?, ?)`).run(cursor, text);
  }

  /**
   * A message's text changed (edited, or deleted: `text` ""): its entry in
   * the index goes, with the text it was indexed with, and the new one comes.
   * History not yet indexed after an upgrade is left to the backfill, which
   * reads the new text.
   */
  reindex(cursor: number, was: string, text: string): void {
    const next = Number(this.#c.meta("search_backfill_next") ?? 1);
    const end = Number(this.#c.meta("search_backfill_end") ?? 0);
    if (cursor >= next && cursor <= end) return;
    const part = cursor >> SEARCH_PARTITION_BITS;
    if (this.#partitions.has(part)) {
      const t = partitionTable(part);
      this.#c.q(`INSERT INTO ${t} (${t}, rowid, text) VALUES ('delete', ?, ?)`).run(cursor, was);
    }
    if (text !== "") this.index(cursor, text);
  }

  /** How far the search index has been built over the history it was added to (after an upgrade). */
  searchIndexProgress(): { done: boolean; indexed: number; total: number } {
    const next = Number(this.#c.meta("search_backfill_next") ?? 1);
    const end = Number(this.#c.meta("search_backfill_end") ?? 0);
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
    this.#c.transaction("index history for search", () => {
      const last = this.#c.q(
        `SELECT max(cursor) AS c FROM (SELECT cursor FROM messages WHERE cursor >= ? AND cursor <= ? ORDER BY cursor LIMIT ?)`,
      ).get(from, total, rows) as { c: number | null };
      const to = last.c === null ? total : Number(last.c);
      const batch = this.#c.q("SELECT cursor, text FROM messages WHERE cursor >= ? AND cursor <= ?").all(from, to) as {
        cursor: number;
        text: string;
      }[];
      for (const r of batch) this.index(Number(r.cursor), String(r.text));
      this.#c.q("UPDATE meta SET value = ? WHERE key = 'search_backfill_next'").run(String(to + 1));
    });
    return this.searchIndexProgress();
  }
}
