/**
 * The database's upkeep, as a service with no socket: delivery-status
 * updates written behind every 250 ms, history from before the search index
 * existed indexed a little at a time after an upgrade (with progress in the
 * log), and the database's size in `/status` and `/metrics`. The write-ahead
 * log needs no timer: the commit that takes it past 4 MiB checkpoints it
 * (storage/store.ts). Once after start it checks the whole file, a table
 * a step (storage/integrity.ts), and when the database is found
 * damaged, then or by any statement, it says so in the log, in `/status`
 * and `/healthz` (a problem), with what to do.
 *
 * @module
 */
import { logger } from "../../common/log.ts";
import type { Store } from "../../storage/store.ts";
import type { MetricsWriter } from "../metrics.ts";
import { STATUS_FLUSH_MS } from "../options.ts";
import type { Service, ServiceContext } from "../service.ts";

/** Messages of old history indexed for search per step: 3–6 ms here, then the event loop turns (300,000 in 4.5 s). */
export const INDEX_ROWS_PER_STEP = 500;

export class StorageService implements Service {
  readonly name = "storage";
  #store: Store;
  #stopped = false;
  #log = logger("daemon");
  /** The check of the whole file after start: running, its outcome, or not run. */
  #integrity: "checking" | "ok" | "damaged" | "unchecked" = "unchecked";
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(store: Store) {
    this.#store = store;
  }

  start(ctx: ServiceContext): void {
    this.#store.onDamaged((what) => {
      this.#integrity = "damaged";
      this.#log.error(
        "The database is damaged ({what}): nothing more is stored, and messages from peers are not acknowledged (they keep them and send again); {advice}",
        { what, advice: this.#store.damageAdvice() },
      );
    });
    if (!this.#store.damaged) this.#checkFile();
    // Delivery-status updates are written behind (see Store.flush): at most
    // this much of them is lost in a crash, and then only re-sent.
    ctx.every(STATUS_FLUSH_MS, () => {
      try {
        this.#store.flush();
      } catch (e) {
        this.#store.noteError(e);
        this.#log.error("Storage error: {error}", { error: (e as Error).message });
      }
    });
    const progress = this.#store.searchIndexProgress();
    if (!progress.done) this.#indexOldHistory(ctx, progress.total);
  }

  /**
   * Checks the file a table a step, letting the event loop turn between
   * steps; logs how long it took and its longest step.
   */
  #checkFile(): void {
    this.#integrity = "checking";
    let tables: string[];
    try {
      tables = this.#store.tablesToCheck();
    } catch (e) {
      this.#store.noteError(e);
      if (!this.#store.damaged) this.#log.warn("Cannot check the database: {error}", { error: (e as Error).message });
      return;
    }
    const t0 = performance.now();
    let longest = { ms: 0, table: "" };
    let i = 0;
    const step = () => {
      if (this.#stopped || this.#store.damaged) return;
      const table = tables[i++];
      if (table === undefined) {
        this.#integrity = "ok";
        this.#log.debug(
          "Database checked, no damage: {tables} tables in {ms} ms, the longest step {longestMs} ms ({table})",
          {
            tables: tables.length,
            ms: Math.round(performance.now() - t0),
            longestMs: Math.round(longest.ms),
            table: longest.table,
          },
        );
        return;
      }
      const t = performance.now();
      try {
        this.#store.quickCheck(table);
      } catch (e) {
        this.#log.warn("Cannot check table {table} of the database: {error}", { table, error: (e as Error).message });
      }
      if (performance.now() - t > longest.ms) longest = { ms: performance.now() - t, table };
      this.#timer = setTimeout(step, 0);
    };
    this.#timer = setTimeout(step, 0);
  }

  /** Indexes the history that predates the search index, a step at a time, logging every tenth. */
  #indexOldHistory(ctx: ServiceContext, total: number): void {
    this.#log.info("Indexing {total} messages of older history for search; search covers them as it goes", { total });
    let logged = 0;
    const step = async () => {
      if (this.#stopped) return;
      try {
        const p = this.#store.indexForSearch(INDEX_ROWS_PER_STEP);
        await ctx.durable();
        const tenth = Math.floor((p.indexed / Math.max(1, p.total)) * 10);
        if (p.done) {
          this.#log.info("Search index complete: {total} older messages indexed", { total: p.total });
          return;
        }
        if (tenth > logged) {
          logged = tenth;
          this.#log.info("Indexing older history for search: {indexed} of {total}", p);
        }
        setTimeout(step, 0);
      } catch (e) {
        this.#log.error("Cannot index history for search: {error}; retrying in a minute", {
          error: (e as Error).message,
        });
        setTimeout(step, 60_000);
      }
    };
    setTimeout(step, 0);
  }

  shutdown(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  problems(): string[] {
    const what = this.#store.damaged;
    return what ? [`The database is damaged (${what}): ${this.#store.damageAdvice()}`] : [];
  }

  status(): Record<string, unknown> {
    const p = this.#store.searchIndexProgress();
    return {
      storage: {
        databaseBytes: this.#store.databaseBytes(),
        walBytes: this.#store.walBytes(),
        searchIndex: p.done ? "complete" : `${p.indexed} of ${p.total} older messages indexed`,
        integrity: this.#integrity,
        ...(this.#store.damaged ? { damaged: this.#store.damaged, advice: this.#store.damageAdvice() } : {}),
      },
    };
  }

  metrics(m: MetricsWriter): void {
    m.single("lanchat_database_bytes", "gauge", "Size of the database file.", this.#store.databaseBytes());
    m.single("lanchat_wal_bytes", "gauge", "Size of the database's write-ahead log.", this.#store.walBytes());
    m.single(
      "lanchat_database_damaged",
      "gauge",
      "1 when the database is damaged: see the log.",
      this.#store.damaged ? 1 : 0,
    );
  }
}
