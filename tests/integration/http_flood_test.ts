/**
 * A flood of idle HTTP connections at a daemon whose open-file limit is
 * 1,024 (the reproduction: `Deno.serve` ended the process there):
 * it stays up, keeps discovery and messaging going, answers /healthz during
 * and after, and counts what it closed. Needs `prlimit` (util-linux).
 */
import assert from "node:assert/strict";
import { killAll, startLoopbackDaemon, until } from "../support/daemon_process.ts";
import type { MessageJson, PeerJson } from "../../src/api/types.ts";

const FLOOD = new URL("../support/http_flood.ts", import.meta.url).pathname;
const hasPrlimit = await new Deno.Command("prlimit", { args: ["--version"], stdout: "null", stderr: "null" })
  .output().then((o) => o.success, () => false);

Deno.test({
  name: "5,000 idle HTTP connections at a daemon limited to 1,024 files: it stays up, peers and messages go on",
  ignore: !hasPrlimit,
  sanitizeResources: false,
  async fn() {
    const port = 47000 + Math.floor(Math.random() * 1000);
    const a = startLoopbackDaemon(port, "flooded", { prefix: ["prlimit", "--nofile=1024:1024", "--"] });
    const b = startLoopbackDaemon(port, "friend");
    let flood: Deno.ChildProcess | undefined;
    try {
      await Promise.all([a.started(), b.started()]);
      await Promise.all([a.joined(b.id, 5000), b.joined(a.id, 5000)]);
      const aPort = new URL(a.httpUrl).port;
      flood = new Deno.Command("prlimit", {
        args: ["--nofile=16384:16384", "--", Deno.execPath(), "run", "--allow-net", FLOOD, "127.0.0.1", aPort, "5000"],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = flood.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const first = JSON.parse((await reader.read()).value!.trim());
      assert.equal(first.opened + first.failed, 5000);

      // While the 5,000 are (or were) open: HTTP answers, the peer stays, messages flow both ways.
      const health = await fetch(`${a.httpUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
      assert.equal(await health.text(), "ok\n");
      const peers: PeerJson[] = await (await fetch(`${a.httpUrl}/peers`)).json();
      assert.deepEqual(peers.map((p) => p.id), [b.id]);
      for (const [from, to] of [[b, a], [a, b]] as const) {
        const res = await fetch(`${from.httpUrl}/messages?wait=5`, {
          method: "POST",
          body: JSON.stringify({ to: to.id, text: `through the flood to ${to.id}` }),
        });
        const m: MessageJson = await res.json();
        assert.equal(m.status, "delivered", JSON.stringify(m));
      }

      await flood.stdin.close();
      await flood.status;
      flood = undefined;
      await until("/healthz after the flood", async () => {
        const r = await fetch(`${a.httpUrl}/healthz`).catch(() => undefined);
        return (await r?.text()) === "ok\n";
      }, 5000);
      const status = await (await fetch(`${a.httpUrl}/status`)).json();
      assert.ok(status.http.closed.evicted >= 5000 - status.http.maxConnections - 10, JSON.stringify(status.http));
      assert.ok(status.http.maxConnections <= 1024 - 64);
      assert.equal(a.child.pid > 0 && (await Promise.race([a.exited.then(() => "exited"), "running"])), "running");
      assert.ok(!a.rawStderr.some((l) => /Uncaught|Too many open files/.test(l) && !/Out of file descriptors/.test(l)));
    } finally {
      if (flood) {
        try {
          flood.kill("SIGKILL");
        } catch { /* gone */ }
        await flood.status;
      }
      await killAll();
    }
  },
});
