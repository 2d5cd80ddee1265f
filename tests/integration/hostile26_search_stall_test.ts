/**
 * Hostile test of issue 26's search (found by an outside tester): a query
 * made only of LIKE wildcards, `%%%` or `___` (or one with no three
 * characters in a row outside them), gives the trigram index nothing to look
 * up: every row of every partition matches the index's LIKE, the exact test
 * rejects them all, and the loop pages through the whole history ~114 rows
 * at a time, each page a new scan of its partition: quadratic, on the
 * daemon's one thread (node:sqlite is synchronous). Measured on this
 * machine: 30,000 messages 1.4 s, 200,000 messages 185 s during which
 * `/healthz` did not answer, no ack or pong went out, and peers dropped the
 * node. One search typed in the page's search box (or `lanchat search %%%`)
 * does it.
 *
 * No timed assertion: the test asserts what peers see, that the node did not
 * leave their roster while it searched (a peer with 500 ms probes drops a
 * node silent for a few seconds; a search that reads a page's worth of rows
 * is milliseconds).
 */
import assert from "node:assert/strict";
import { freeUdpPort, killAll, startLoopbackDaemon } from "../support/daemon_process.ts";

Deno.test({
  name: "a search for %%% or ___ over 70,000 messages leaves the daemon answering its peers",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = Deno.makeTempDirSync({ prefix: "lanchat-stall-" });
    try {
      const fill = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("../../scripts/history_fill.ts", import.meta.url).pathname, dir, "70000"],
        stdout: "piped",
      }).output();
      assert.ok(fill.success);
      const port = freeUdpPort();
      const a = await startLoopbackDaemon(port, "alice", { dataDir: dir }).started();
      const watcher = await startLoopbackDaemon(port, "watcher").started();
      await watcher.joined(a.id, 10_000);
      let left = false;
      const leaving = watcher.left(a.id, 600_000).then(() => left = true, () => {});
      for (const q of ["%%%", "___"]) {
        const r = await fetch(`${a.httpUrl}/messages/search?q=${encodeURIComponent(q)}&limit=50`);
        const body = await r.json();
        assert.equal(r.status, 200, JSON.stringify(body));
        assert.deepEqual(body.messages, [], "no message has that text");
      }
      // A moment for a departure already decided to be logged.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(left, false, "the searching daemon went silent long enough for its peer to drop it");
      void leaving;
    } finally {
      await killAll();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
