import assert from "node:assert/strict";
import { GROWTH_BYTES, MemoryService, MIN_GAP_MS } from "../../src/node/services/memory.ts";
import type { ServiceContext } from "../../src/node/service.ts";

const MiB = 1024 * 1024;

/** A process whose resident size the test sets, and whose compaction brings it back to `live`. */
function fakeProcess(compacts = true) {
  const p = { rss: 60 * MiB, live: 60 * MiB, now: 0, cpu: 0, compactions: 0 };
  const probe = {
    usage: () => ({ rss: p.rss, heapUsed: p.rss / 4, heapTotal: p.rss / 3 }),
    compact: compacts
      ? () => {
        p.compactions++;
        p.rss = p.live;
      }
      : undefined,
    now: () => p.now,
    cpuMs: () => p.cpu,
  };
  const service = new MemoryService(probe);
  service.start({ every: () => {} } as unknown as ServiceContext);
  return { p, service };
}

Deno.test("memory grown by a burst is handed back: a compaction once the resident size grew 8 MiB", () => {
  const { p, service } = fakeProcess();
  p.rss += GROWTH_BYTES - 1;
  p.now = 60_000;
  assert.equal(service.check(), false, "less than the growth: nothing to do");
  p.rss = 150 * MiB;
  assert.equal(service.check(), true);
  assert.equal(p.rss, 60 * MiB);
  const status = service.status().memory as Record<string, unknown>;
  assert.equal(status.compactions, 1);
  assert.deepEqual((status.lastCompaction as { freedBytes: number }).freedBytes, 90 * MiB);
});

Deno.test("memory compactions are at least 30 s apart, and measured from where the last one left the heap", () => {
  const { p, service } = fakeProcess();
  p.now = 100_000;
  p.rss = 100 * MiB;
  p.live = 70 * MiB; // live data grew: the new floor
  assert.equal(service.check(), true);
  p.rss = 90 * MiB;
  p.now += MIN_GAP_MS - 1;
  assert.equal(service.check(), false, "too soon after the last one");
  p.now += 1;
  assert.equal(service.check(), true);
  p.rss = 70 * MiB + GROWTH_BYTES - 1;
  p.now += MIN_GAP_MS;
  assert.equal(service.check(), false, "within the growth of the new floor (70 MiB)");
  assert.equal(p.compactions, 2);
});

Deno.test("memory without --expose-gc: only reported, never compacted", () => {
  const { p, service } = fakeProcess(false);
  p.rss = 500 * MiB;
  p.now = 1e9;
  assert.equal(service.check(), false);
  assert.equal((service.status().memory as { rssBytes: number }).rssBytes, 500 * MiB);
});

Deno.test("memory is not compacted while the daemon is busy, only once the burst is over", () => {
  const { p, service } = fakeProcess();
  p.rss = 150 * MiB;
  p.now = 60_000;
  p.cpu = 30_000; // half a core over the last minute: a fill is going on
  assert.equal(service.check(), false);
  p.now += 10_000;
  p.cpu += 500; // 5 % of a core over those 10 s: quiet
  assert.equal(service.check(), true);
  assert.equal(p.rss, 60 * MiB);
});

Deno.test("memory compaction asked for through the API runs at once, at most every 10 s, and not without gc", () => {
  const { p, service } = fakeProcess();
  p.now = 1000;
  p.rss = 61 * MiB; // hardly grown: the API compacts anyway
  assert.deepEqual(service.compactNow(), { ok: true });
  p.now += 4000;
  assert.deepEqual(service.compactNow(), { ok: false, retryAfterMs: 6000 });
  p.now += 6000;
  assert.deepEqual(service.compactNow(), { ok: true });
  assert.equal(p.compactions, 2);
  assert.equal(fakeProcess(false).service.compactNow(), undefined);
});
