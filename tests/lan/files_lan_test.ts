/**
 * Files across the namespace LAN: a keyed group whose bridge drops 5 % of
 * every packet, TCP included; the transfer completes and arrives intact.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createLan, lanUnavailable } from "../../scripts/lan.ts";
import type { TransferJson } from "../../src/api/types.ts";
import { DaemonProcess, killAll, runCli, tempDataDir, until } from "../support/daemon_process.ts";

const unavailable = await lanUnavailable();
if (unavailable) console.warn(`LAN file test ignored: ${unavailable}`);

Deno.test({
  name: "a 32 MiB file crosses a keyed LAN that drops 5 % of all packets (TCP too), sealed, and arrives intact",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const lan = await createLan(2);
    const work = Deno.makeTempDirSync({ prefix: "lanchat-lanfiles-" });
    try {
      const gen = await runCli(["keygen", `${work}/key`]);
      assert.equal(gen.code, 0, gen.stderr);
      const start = (i: number, extra: string[]) =>
        new DaemonProcess([
          "--name",
          `user${i}`,
          "--data-dir",
          tempDataDir(),
          "--interval",
          "500ms",
          "--key-file",
          `${work}/key`,
          ...extra,
        ], { netns: lan.hosts[i]!.ns }).started();
      const a = await start(0, []);
      const b = await start(1, ["--downloads", `${work}/dl`, "--accept-files", "always"]);
      await a.joined(b.id, 3000);
      const bytes = new Uint8Array(32 * 1024 * 1024);
      for (let i = 0; i < bytes.length; i += 65536) bytes.set(crypto.getRandomValues(new Uint8Array(65536)), i);
      await Deno.writeFile(`${work}/data.bin`, bytes);
      await lan.setLoss(5, { all: true });
      const t0 = Date.now();
      const sent = await runCli(["send-file", "user1", `${work}/data.bin`, "--json", "--wait", "60"], {
        netns: lan.hosts[0]!.ns,
      });
      const seconds = (Date.now() - t0) / 1000;
      assert.equal(sent.code, 0, `${sent.stdout}${sent.stderr}`);
      const t = JSON.parse(sent.stdout) as TransferJson;
      assert.equal(t.state, "done");
      await until("the receiver to say done", async () => {
        const r = await runCli(["transfers", "--json"], { netns: lan.hosts[1]!.ns });
        return (JSON.parse(r.stdout) as TransferJson[]).some((x) => x.id === t.id && x.state === "done");
      }, 10_000);
      const got = await Deno.readFile(`${work}/dl/data.bin`);
      assert.equal(createHash("sha256").update(got).digest("hex"), createHash("sha256").update(bytes).digest("hex"));
      const dropped = await lan.dropped();
      assert.ok(dropped > 0, "the loss rule dropped packets");
      console.log(`32 MiB at 5 % loss of all packets, keyed: ${seconds.toFixed(1)} s, ${dropped} packets dropped`);
    } finally {
      await killAll();
      await lan.destroy();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
