/**
 * The scale scenario on the simulated LAN (src/scale_sim.ts), checked for
 * its deterministic properties only (simulated time, fixed seed): every host
 * converges, announce traffic stays under the budget, newcomers are seen and
 * see everyone, crashes are detected. Speed figures are the benchmark's.
 */
import assert from "node:assert/strict";
import { runScale } from "../../src/sim/scale_sim.ts";
import { DEFAULT_ANNOUNCE_BUDGET } from "../../src/protocol/discovery.ts";

for (const nodes of [20, 250]) {
  Deno.test(`${nodes} simulated hosts converge, stay under ${DEFAULT_ANNOUNCE_BUDGET} announces/s each, and see joins and crashes`, () => {
    const r = runScale({ nodes, durationMs: 12 * 60_000, newcomers: 4, crashes: 3, seed: 11 });
    assert.ok(r.convergedAfterWarmup, "everyone lists everyone after start-up");
    assert.ok(r.convergedAtEnd, "and at the end");
    assert.ok(
      r.announcesPerHostPerSecond.max <= DEFAULT_ANNOUNCE_BUDGET,
      `${r.announcesPerHostPerSecond.max} announces/s at a host`,
    );
    // Newcomers: everyone hears the first hello; replies are spread over ≤ 2 s.
    for (const ms of r.allSeeNewcomerMs) assert.ok(ms < 100, `everyone saw the newcomer after ${ms} ms`);
    for (const ms of r.newcomerSeesAllMs) assert.ok(ms <= 2100, `the newcomer saw everyone after ${ms} ms`);
    // A crash: stale after 3 intervals (on the 1/8-interval grid), then the probe's 500 ms.
    for (const [i, ms] of r.crashDetectedByAllMs.entries()) {
      const ivl = r.crashIntervalMs[i]!;
      assert.ok(ms <= 3 * ivl + ivl / 8 + 500, `crash detected by all after ${ms} ms (interval ${ivl})`);
    }
  });
}

Deno.test("with 2 % loss, 100 simulated hosts still converge and stay under the announce budget", () => {
  const r = runScale({ nodes: 100, durationMs: 12 * 60_000, newcomers: 3, crashes: 2, loss: 0.02, seed: 5 });
  assert.ok(r.convergedAtEnd, "everyone lists everyone at the end");
  assert.ok(r.announcesPerHostPerSecond.max <= DEFAULT_ANNOUNCE_BUDGET);
  // A lost reply is made up for by the peer's next announce (one interval, ±25 %).
  for (const ms of r.newcomerSeesAllMs) {
    assert.ok(ms <= 2000 + 2.5 * r.intervalMs, `newcomer saw everyone after ${ms} ms`);
  }
  for (const ms of r.crashDetectedByAllMs) assert.ok(Number.isFinite(ms), "every crash detected by every host");
});
