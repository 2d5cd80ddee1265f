/**
 * The failure detector on a real LAN of 8 namespaces (one daemon each),
 * announcing every 20 s as hosts on a LAN of 1,000 do, so that expiry alone
 * would take a minute: a host killed with SIGKILL is removed everywhere by
 * the detector; a host stopped (SIGSTOP) for 5 s is suspected, refutes when
 * it resumes, and is removed by no one. Needs root; ignored without it.
 */
import assert from "node:assert/strict";
import { type Lan, lanUnavailable } from "../../scripts/lan.ts";
import type { DaemonProcess } from "../support/daemon_process.ts";
import { lanDaemon, statusIn, withLan } from "../support/lan_hosts.ts";
import { SUSPICION_MS } from "../../src/protocol/failure_detector.ts";

const unavailable = await lanUnavailable();
if (unavailable) console.warn(`LAN tests ignored: ${unavailable}`);

const HOSTS = 8;
const INTERVAL_MS = 20_000;
/** What expiry alone would take after the last hello: 3 intervals and the probe. */
const EXPIRY_MS = 3 * INTERVAL_MS;

function startIn(lan: Lan, i: number): DaemonProcess {
  const h = lan.hosts[i]!;
  return lanDaemon(h.ns, `user@${h.ns}`, ["--interval", "20s"]);
}

// deno-lint-ignore no-explicit-any
const detectorOf = async (ns: string): Promise<any> => (await statusIn(ns)).counters.detector;

Deno.test({
  name:
    "8 hosts: kill -9 is found by the failure detector everywhere; SIGSTOP for 5 s is suspected, refuted, not removed",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withLan(HOSTS, async (lan) => {
      // One after the other, with room: eight daemons starting at once on a loaded 2-core machine take a while.
      const ds: DaemonProcess[] = [];
      for (const i of lan.hosts.keys()) ds.push(await startIn(lan, i).started(60_000));
      for (const d of ds) for (const o of ds) if (o !== d) await d.joined(o.id, 30_000);

      // SIGSTOP for 5 s, then SIGCONT: every other host keeps it; someone suspected it; it refuted.
      const paused = ds[2]!;
      const before = ds.map((d) => d.lines.length);
      paused.signal("SIGSTOP");
      await new Promise((r) => setTimeout(r, 5000));
      paused.signal("SIGCONT");
      // Long enough for any suspicion raised during the pause to have ended (window, last check, slack).
      await new Promise((r) => setTimeout(r, SUSPICION_MS + 5000));
      for (const [i, d] of ds.entries()) {
        if (d === paused) continue;
        const left = d.lines.slice(before[i]).filter((l) =>
          /^Peer left/.test(l.message) && l.properties.id === paused.id
        );
        assert.deepEqual(left, [], `host ${i + 1} did not remove the paused host`);
      }
      const taken = await Promise.all(
        lan.hosts.map((h, i) => i === 2 ? 0 : detectorOf(h.ns).then((c) => c.suspicionsTaken + c.suspicionsRaised)),
      );
      assert.ok(taken.reduce((a, b) => a + b, 0) > 0, "the paused host was suspected");
      assert.ok((await detectorOf(lan.hosts[2]!.ns)).refutations >= 1, "and it refuted");

      // kill -9: removed by every other host, by the detector (well before expiry), reason timeout.
      const victim = ds[5]!;
      const t0 = Date.now();
      victim.signal("SIGKILL");
      for (const [i, d] of ds.entries()) {
        if (d === victim) continue;
        assert.equal((await d.left(victim.id, EXPIRY_MS)).properties.reason, "timeout", `host ${i + 1}`);
      }
      const took = Date.now() - t0;
      console.log(`kill -9 of 1 of ${HOSTS} hosts: removed by all after ${(took / 1000).toFixed(1)} s`);
      const removed = await Promise.all(
        lan.hosts.map((h, i) => i === 5 ? 0 : statusIn(h.ns).then((s) => s.counters.removedAfterSuspicion)),
      );
      assert.equal(removed.filter((n) => n >= 1).length, HOSTS - 1, "each removed it after a suspicion");
    }),
});
