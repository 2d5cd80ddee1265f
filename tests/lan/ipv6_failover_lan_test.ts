/**
 * Hostile finding 5: a dual-stack peer whose IPv6 unicast port is dropped by
 * its own firewall (nft ip6, udp and tcp dport 47475) while its multicast
 * hellos keep its link-local address fresh. Before, every retransmission went
 * to that address (the one heard last) and the message stayed "(sent)" for
 * minutes; now the sender tries the peer's other addresses after about 1.5 s
 * without an ack, and the message is delivered over IPv4 within `--wait 10`.
 * Needs root; without it the test is ignored with the reason printed.
 */
import assert from "node:assert/strict";
import { createLan, lanUnavailable, sh } from "../../scripts/lan.ts";
import type { PeerJson } from "../../src/api/types.ts";
import { killAll, runCli, until } from "../support/daemon_process.ts";
import { lanDaemon, peersIn } from "../support/lan_hosts.ts";

const unavailable = await lanUnavailable();
if (unavailable) console.warn(`IPv6 failover LAN test ignored: ${unavailable}`);

Deno.test({
  name: "a message to a dual-stack peer whose IPv6 unicast is blocked is delivered over IPv4",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const lan = await createLan(2, `f6${crypto.randomUUID().slice(0, 6)}`, { ipv4: true, ipv6: true });
    try {
      const [ha, hb] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0]];
      const [a, b] = await Promise.all([
        lanDaemon(ha.ns, "user1").started(),
        lanDaemon(hb.ns, "user2").started(),
      ]);
      await a.joined(b.id, 5000);
      await until("b heard on IPv4 and IPv6", async () => {
        const pb = (await peersIn(ha.ns)).find((p: PeerJson) => p.id === b.id);
        return !!pb && pb.addresses.some((x) => !x.address.includes(":")) &&
          pb.addresses.some((x) => x.address.includes(":"));
      }, 10_000);
      await sh(
        "ip",
        ["netns", "exec", hb.ns, "nft", "-f", "-"],
        [
          "table ip6 block6 {",
          "  chain input { type filter hook input priority 0; policy accept;",
          "    udp dport 47475 drop",
          "    tcp dport 47475 drop",
          "  }",
          "}",
        ].join("\n"),
      );
      // Several messages, so that some start while the IPv6 address is the one heard last.
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        const r = await runCli(["send", "user2", `over IPv4, ${i}`, "--wait", "10"], { netns: ha.ns });
        assert.equal(r.code, 0, `message ${i}: ${r.stdout}${r.stderr}`);
        console.log(`message ${i} delivered in ${Date.now() - t0} ms with IPv6 unicast to the peer dropped`);
      }
      // The IPv6 address was still listed (the multicast hellos went on): the rule did not just remove it.
      const pb = (await peersIn(ha.ns)).find((p: PeerJson) => p.id === b.id)!;
      assert.ok(pb.addresses.some((x) => x.address.includes(":")), JSON.stringify(pb.addresses));
    } finally {
      await killAll();
      await lan.destroy();
    }
  },
});
