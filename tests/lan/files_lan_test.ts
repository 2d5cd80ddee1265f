/**
 * Files across the namespace LAN: a keyed group whose bridge drops 5 % of
 * every packet, TCP included; the transfer completes and arrives intact.
 */
import assert from "node:assert/strict";
import { createLan, lanUnavailable } from "../../scripts/lan.ts";
import { DaemonProcess, killAll, runCli, tempDataDir } from "../support/daemon_process.ts";
import { sendFileIn } from "../support/lan_hosts.ts";

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
      const seconds = await sendFileIn({
        from: lan.hosts[0]!.ns,
        to: lan.hosts[1]!.ns,
        peer: "user1",
        path: `${work}/data.bin`,
        downloads: `${work}/dl`,
      });
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
