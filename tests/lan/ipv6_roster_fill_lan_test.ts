/**
 * Hostile finding 1 on the namespace LAN: one host with many addresses in
 * one IPv6 /64 (fd00:198:18::1:N), 16 signed hellos from each claiming a 1 h
 * interval, no longer takes the roster: it gets a quarter of `--max-peers`,
 * a real newcomer still joins, the refusals are one `Roster full` warning
 * and the invented peers a bounded number of log lines. Before, the roster
 * filled (64 of 64 here) and the newcomer was refused. Needs root.
 */
import assert from "node:assert/strict";
import { createLan, lanUnavailable, sh } from "../../scripts/lan.ts";
import { killAll } from "../support/daemon_process.ts";
import { lanDaemon, peersIn } from "../support/lan_hosts.ts";

const unavailable = await lanUnavailable();
if (unavailable) console.warn(`IPv6 roster fill LAN test ignored: ${unavailable}`);

Deno.test({
  name: "one IPv6 /64 gets a quarter of the roster: a real newcomer joins, one roster-full warning",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const lan = await createLan(3, `r6${crypto.randomUUID().slice(0, 6)}`, { ipv4: false, ipv6: true });
    try {
      const [ha, hm, hc] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0], typeof lan.hosts[0]];
      const a = await lanDaemon(ha.ns, "user1", ["--max-peers", "64"]).started();
      const addresses = 8; // 128 invented peers for a roster of 64
      for (let i = 1; i <= addresses; i++) {
        await sh("ip", ["-n", hm.ns, "addr", "add", `fd00:198:18::1:${i.toString(16)}/64`, "dev", "eth0", "nodad"]);
      }
      const fill = new URL("../support/v6_fill.ts", import.meta.url).pathname;
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          hm.ns,
          Deno.execPath(),
          "run",
          "-A",
          fill,
          "fd00:198:18::1:",
          String(addresses),
          ha.address6!,
          "47475",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      await new Promise((r) => setTimeout(r, 1000));
      const filled = (await peersIn(ha.ns)).length;
      console.log(`one /64 with ${addresses * 16} invented peers: ${filled} in a roster of 64`);
      assert.equal(filled, 16);
      // A real newcomer (heard by link-local multicast) joins.
      const c = await lanDaemon(hc.ns, "user3").started();
      await a.joined(c.id, 10_000);
      const full = a.lines.filter((l) => /^Roster full/.test(l.message));
      assert.equal(full.length, 1, JSON.stringify(full));
      const joins = a.lines.filter((l) => /^Peer joined/.test(l.message)).length;
      assert.ok(joins <= 31, `${joins} join lines`);
    } finally {
      await killAll();
      await lan.destroy();
    }
  },
});
