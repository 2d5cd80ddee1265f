/**
 * The database's upkeep, as a service with no socket: delivery-status
 * updates written behind every 250 ms, history from before the search index
 * existed indexed a little at a time after an upgrade (with progress in the
 * log), and the database's size in `/status` and `/metrics`. The write-ahead
 * log needs no timer: the commit that takes it past 4 MiB checkpoints it
 * (storage/store.ts).
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

  constructor(store: Store) {
    this.#store = store;
  }

  start(ctx: ServiceContext): void {
    // Delivery-status updates are written behind (see Store.flush): at most
    // this much of them is lost in a crash, and then only re-sent.
    ctx.every(STATUS_FLUSH_MS, () => {
      try {
        this.#store.flush();
      } catch (e) {
        this.#log.error("Storage error: {error}", { error: (e as Error).message });
      }
    });
    const progress = this.#store.searchIndexProgress();
    if (!progress.done) this.#indexOldHistory(ctx, progress.total);
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
  }

  status(): Record<string, unknown> {
    const p = this.#store.searchIndexProgress();
    return {
      storage: {
        databaseBytes: this.#store.databaseBytes(),
        walBytes: this.#store.walBytes(),
        searchIndex: p.done ? "complete" : `${p.indexed} of ${p.total} older messages indexed`,
      },
    };
  }

  metrics(m: MetricsWriter): void {
    m.single("lanchat_database_bytes", "gauge", "Size of the database file.", this.#store.databaseBytes());
    m.single("lanchat_wal_bytes", "gauge", "Size of the database's write-ahead log.", this.#store.walBytes());
  }
}
