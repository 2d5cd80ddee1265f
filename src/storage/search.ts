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

/** Lower case for ASCII letters only, as SQLite's LIKE compares. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** Search results, newest first; `complete` is false when part of history could not be searched. */
export interface SearchResult {
  messages: StoredMessage[];
  complete: boolean;
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
   * Messages whose text contains `text` (any language: CJK included; case
   * is ignored for ASCII), newest first, with or from `peer` if given (or
   * written to `group`, which then stands instead of `peer`),
   * before cursor `before` if given. A text of three characters or more is
   * found through the trigram indexes over all of history, newest partition
   * first (see {@link SEARCH_PARTITION}); a shorter one (a trigram index
   * cannot look it up) is looked for in the newest
   * {@link SHORT_SEARCH_WINDOW} messages only, and `complete` says so, as it
   * does while older history is still being indexed after an upgrade.
   */
  search(q: { text: string; peer?: string; group?: string; before?: number; limit?: number }): SearchResult {
    this.#c.flush();
    const limit = Math.max(1, Math.min(q.limit ?? 50, MAX_SEARCH_PAGE));
    const before = Math.min(q.before ?? Number.MAX_SAFE_INTEGER, this.#history.lastCursor() + 1);
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
    const peer = (q.group ? "AND m.grp = ? " : q.peer ? "AND m.peer = ? " : "") +
      "AND m.copy_of IS NULL AND (m.ref_kind IS NULL OR m.ref_kind = 'reply')";
    const peerArg = q.group ? [q.group] : q.peer ? [q.peer] : [];
    if ([...q.text].length >= 3) {
      for (let part = (before - 1) >> SEARCH_PARTITION_BITS; part >= 0 && found.length < limit; part--) {
        if (!this.#partitions.has(part)) continue;
        // Within a partition, page by cursor until enough or none is left.
        for (let upTo = before; found.length < limit;) {
          const want = limit - found.length + (exact ? 64 : 0);
          const rows = this.#c.q(
            `SELECT m.* FROM ${partitionTable(part)} f JOIN messages m ON m.cursor = f.rowid
             WHERE f.text LIKE ? AND f.rowid < ? ${peer} ORDER BY f.rowid DESC LIMIT ?`,
          ).all(pattern, upTo, ...peerArg, want) as Record<string, unknown>[];
          take(rows);
          if (rows.length < want) break;
          upTo = Number(rows.at(-1)!.cursor);
        }
      }
    } else {
      const from = this.#history.lastCursor() - SHORT_SEARCH_WINDOW;
      complete = from <= 0;
      take(
        this.#c.q(
          `SELECT m.* FROM messages m WHERE m.text LIKE ? ESCAPE '\\' AND m.cursor < ? ${peer} AND m.cursor > ?
           ORDER BY m.cursor DESC LIMIT ?`,
        ).all(`%${q.text.replace(/[\\%_]/g, (c) => "\\" + c)}%`, before, ...peerArg, from, limit),
      );
    }
    return { messages: found, complete };
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
