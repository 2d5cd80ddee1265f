/**
 * Hostile tester's reproduction (issue 25): a peer that left the roster
 * (a goodbye on a graceful restart, or a timeout after a crash) and comes
 * back with a higher incarnation is "joined", not "restarted", so the old
 * end-to-end session to it is never dropped: the first message to it goes
 * under keys the peer lost and waits for the 5 s no-reply rule.
 */
import assert from "node:assert/strict";
import { freeUdpPort, killAll, runCli, startLoopbackDaemon, tempDataDir } from "../support/daemon_process.ts";

const http = (d: { httpUrl: string }) => d.httpUrl.replace("http://", "");

Deno.test("a peer restarted gracefully (goodbye, then a new hello) is spoken to at once, under a new session", async () => {
  const port = freeUdpPort();
  const bDir = tempDataDir();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    let b = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
    await a.joined(b.id, 5000);
    await b.joined(a.id, 5000);
    let r = await runCli(["send", "bob", "before", "--http", http(a)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // A graceful restart: SIGTERM (goodbye), then the same data directory again.
    b.signal("SIGTERM");
    await b.wait();
    await a.left(b.id, 5000);
    b = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
    await a.joined(b.id, 5000);
    await b.joined(a.id, 5000);
    const t0 = performance.now();
    r = await runCli(["send", "bob", "after", "--http", http(a), "--wait", "20"]);
    const ms = performance.now() - t0;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = await (await fetch(`${b.httpUrl}/status`)).json();
    assert.equal(
      s.counters.dropped["unknown-session"],
      0,
      `alice sent under a session bob had lost (delivered after ${ms.toFixed(0)} ms: ${r.stdout.trim()})`,
    );
  } finally {
    await killAll();
  }
});
