/**
 * A receiver whose disk fills up: its group commits fail, so it acknowledges
 * nothing it could not store; the sender keeps retrying, and once there is
 * room every message arrives, once, in order. The data directory is a small
 * tmpfs (mounting one needs root, as the LAN tests do).
 */
import assert from "node:assert/strict";
import type { MessageJson } from "../../src/api/types.ts";
import { freeUdpPort, killAll, startLoopbackDaemon, until } from "../support/daemon_process.ts";
import { fillUp, mountTmpfs, removeTmpfs, tmpfsUnavailable } from "../support/tmpfs.ts";

const status = async (url: string) => await (await fetch(`${url}/status`)).json();

Deno.test({
  name:
    "a receiver with a full disk acknowledges nothing it could not store; with room again, all arrive once in order",
  ignore: tmpfsUnavailable !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lanchat-full-" });
    await mountTmpfs(dir, "4m");
    const port = freeUdpPort();
    try {
      const a = await startLoopbackDaemon(port, "alice@h1").started();
      const b = await startLoopbackDaemon(port, "bob@h2", { dataDir: dir }).started();
      await a.joined(b.id, 3000);
      await fillUp(`${dir}/filler`);
      const texts = Array.from({ length: 40 }, (_, i) => `while full ${i} ` + "x".repeat(2000));
      const res = await fetch(`${a.httpUrl}/messages`, {
        method: "POST",
        body: JSON.stringify({ messages: texts.map((text) => ({ to: b.id, text })) }),
      });
      assert.equal(res.status, 202, await res.text());
      await until(
        "the receiver to fail a commit",
        async () => (await status(b.httpUrl)).messaging.storeErrors > 0,
        10_000,
      );
      assert.ok(
        (await status(a.httpUrl)).messaging.outbox > 0,
        "what the receiver could not store is not acknowledged",
      );
      assert.equal(await (await fetch(`${b.httpUrl}/healthz`)).text(), "ok\n", "the receiver keeps running");
      // A full disk is not a damaged database: nothing to move away, only room to make.
      const bStatus = await status(b.httpUrl);
      assert.deepEqual(bStatus.problems, []);
      assert.notEqual(bStatus.storage.integrity, "damaged");
      // What the full side's own user sends is refused in words, not taken and lost.
      const own = await fetch(`${b.httpUrl}/messages`, {
        method: "POST",
        body: JSON.stringify({ to: a.id, text: "from the full disk " + "z".repeat(8000) }),
      });
      assert.equal(own.status, 507);
      assert.match((await own.json()).error, /full|no space/i);
      await Deno.remove(`${dir}/filler`);
      await until(
        "every message to be acknowledged",
        async () => (await status(a.httpUrl)).messaging.outbox === 0,
        30_000,
      );
      const inbox: MessageJson[] = (await (await fetch(`${b.httpUrl}/messages?limit=1000`)).json())
        .filter((m: MessageJson) => m.direction === "in");
      assert.deepEqual(inbox.map((m) => m.text), texts, "each once, in order");
      assert.ok(inbox.every((m) => !m.gapBefore && !m.late));
    } finally {
      await killAll();
      await removeTmpfs(dir);
    }
  },
});
