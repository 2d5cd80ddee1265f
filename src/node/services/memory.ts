/**
 * Memory given back after a burst. V8 keeps the heap it grew to: after a
 * burst of work (large history pages, a flood, a fill) a daemon stayed at
 * 115–190 MiB until restarted, though what it holds afterwards is ~9 MiB of
 * live objects. V8's own memory reducer, which would shrink the heap when
 * the process goes idle, does not run in an idle Deno process. So this
 * service looks every {@link CHECK_MS}: when the resident size has grown
 * {@link GROWTH_BYTES} past what it was after the last compaction, and the
 * daemon has been quiet since the previous look (under
 * {@link BUSY_SHARE} of a core: the burst is over), it asks
 * V8 for a compacting collection (the "last resort" flavour, which moves
 * live objects together and hands the emptied pages back to the system; a
 * plain full collection frees the objects but keeps the pages), at most
 * once per {@link MIN_GAP_MS}. Measured here: 6–15 ms per compaction on
 * a daemon's heap, and 78 → 69 MiB after six 10,000-message pages.
 *
 * It needs `--expose-gc` among the V8 flags (deno.json's tasks have it);
 * without it, it only reports.
 *
 * @module
 */
import { logger } from "../../common/log.ts";
import type { MetricsWriter } from "../metrics.ts";
import type { Service, ServiceContext } from "../service.ts";

/** How often the resident size is looked at. */
export const CHECK_MS = 10_000;
/** Growth of the resident size since the last compaction that starts one. */
export const GROWTH_BYTES = 8 * 1024 * 1024;
/** Least time between two compactions. */
export const MIN_GAP_MS = 30_000;
/** Least time between two compactions asked for through the API. */
export const ASKED_GAP_MS = 10_000;
/**
 * Share of a core above which the daemon counts as busy: a burst is still
 * going on, the memory is in use, and a compaction would only add a pause
 * (15–30 ms) to the work; it waits for the next quiet check.
 */
export const BUSY_SHARE = 0.1;

/** What V8's `gc()` takes when exposed. */
type Gc = (
  options?: { type?: "major" | "minor"; execution?: "sync" | "async"; flavor?: "regular" | "last-resort" },
) => void;

export interface MemoryProbe {
  usage(): { rss: number; heapUsed: number; heapTotal: number };
  /** A compacting collection, or undefined when V8 does not offer one (no `--expose-gc`). */
  compact: (() => void) | undefined;
  /** A monotonic clock in ms. */
  now(): number;
  /** CPU time this process has used, in ms. */
  cpuMs(): number;
}

export function realMemoryProbe(): MemoryProbe {
  const gc = (globalThis as { gc?: Gc }).gc;
  return {
    usage: () => Deno.memoryUsage(),
    compact: gc ? () => gc({ type: "major", execution: "sync", flavor: "last-resort" }) : undefined,
    now: () => performance.now(),
    cpuMs: () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1000;
    },
  };
}

export class MemoryService implements Service {
  readonly name = "memory";
  #probe: MemoryProbe;
  #log = logger("daemon");
  /** Resident size right after the last compaction (or at start). */
  #floor = 0;
  #lastAt = -Infinity;
  #askedAt = -Infinity;
  /** The previous check: when, and the CPU time used by then. */
  #checkedAt = 0;
  #cpuAt = 0;
  compactions = 0;
  #last: { ms: number; freedBytes: number; heapUsedBytes: number } | undefined;

  constructor(probe: MemoryProbe = realMemoryProbe()) {
    this.#probe = probe;
  }

  start(ctx: ServiceContext): void {
    this.#floor = this.#probe.usage().rss;
    this.#checkedAt = this.#probe.now();
    this.#cpuAt = this.#probe.cpuMs();
    ctx.every(CHECK_MS, () => {
      this.check();
    });
  }

  /**
   * Compacts when the resident size grew enough since the last time and
   * the daemon was quiet since the previous check; returns whether it did.
   */
  check(): boolean {
    const before = this.#probe.usage();
    const now = this.#probe.now();
    const cpu = this.#probe.cpuMs();
    const busy = (cpu - this.#cpuAt) > BUSY_SHARE * (now - this.#checkedAt);
    this.#checkedAt = now;
    this.#cpuAt = cpu;
    if (
      !this.#probe.compact || busy || before.rss < this.#floor + GROWTH_BYTES || now - this.#lastAt < MIN_GAP_MS
    ) {
      return false;
    }
    this.#compact(before, now);
    return true;
  }

  /**
   * Compacts now, whatever the growth (for `POST /memory/compact`: a
   * benchmark measuring the live heap, an admin), at most every
   * {@link ASKED_GAP_MS}. Undefined when V8's gc is not exposed.
   */
  compactNow(): { ok: true } | { ok: false; retryAfterMs: number } | undefined {
    if (!this.#probe.compact) return undefined;
    const now = this.#probe.now();
    if (now - this.#askedAt < ASKED_GAP_MS) return { ok: false, retryAfterMs: ASKED_GAP_MS - (now - this.#askedAt) };
    this.#askedAt = now;
    this.#compact(this.#probe.usage(), now);
    return { ok: true };
  }

  #compact(before: { rss: number }, now: number): void {
    this.#probe.compact!();
    const after = this.#probe.usage();
    const ms = this.#probe.now() - now;
    this.#lastAt = now;
    this.#floor = after.rss;
    this.#cpuAt = this.#probe.cpuMs();
    this.compactions++;
    this.#last = {
      ms: Math.round(ms * 10) / 10,
      freedBytes: before.rss - after.rss,
      heapUsedBytes: after.heapUsed,
    };
    this.#log.debug("Heap compacted in {ms} ms: resident {before} → {after} MiB", {
      ms: this.#last.ms,
      before: Math.round(before.rss / 2 ** 20),
      after: Math.round(after.rss / 2 ** 20),
    });
  }

  status(): Record<string, unknown> {
    const u = this.#probe.usage();
    return {
      memory: {
        rssBytes: u.rss,
        heapUsedBytes: u.heapUsed,
        heapTotalBytes: u.heapTotal,
        canCompact: this.#probe.compact !== undefined,
        compactions: this.compactions,
        ...(this.#last ? { lastCompaction: this.#last } : {}),
      },
    };
  }

  metrics(m: MetricsWriter): void {
    const u = this.#probe.usage();
    m.single("lanchat_resident_memory_bytes", "gauge", "Resident set size of the daemon.", u.rss);
    m.single("lanchat_heap_used_bytes", "gauge", "JavaScript heap in use.", u.heapUsed);
    m.single("lanchat_heap_compactions_total", "counter", "Compactions run to give memory back.", this.compactions);
  }
}
