/**
 * IPv6 on the namespace LAN (scripts/lan.ts with fd00:198:18::/64, nodad):
 * an IPv6-only LAN of three hosts found by link-local multicast, messaging,
 * a file and a kill -9 over it; a dual-stack host listed once with both
 * addresses, beside a `--no-ipv6` one; `--peer [fd00:198:18::12]:47475`.
 * Needs root; without it these tests are ignored with the reason printed.
 */
import assert from "node:assert/strict";
import { createLan, type Lan, type LanOptions, lanUnavailable } from "../../scripts/lan.ts";
import type { PeerJson } from "../../src/api/types.ts";
import { type DaemonProcess, killAll, runCli, until } from "../support/daemon_process.ts";
import { lanDaemon, peersIn, sendFileIn, sendIn } from "../support/lan_hosts.ts";

const unavailable = await lanUnavailable();
if (unavailable) console.warn(`IPv6 LAN tests ignored: ${unavailable}`);

const INTERVAL_MS = 500;
const PROBE_MS = 500;

async function withLan6(n: number, options: LanOptions, body: (lan: Lan) => Promise<void>): Promise<void> {
  const lan = await createLan(n, `l6${crypto.randomUUID().slice(0, 6)}`, options);
  try {
    await body(lan);
  } finally {
    await killAll();
    await lan.destroy();
  }
}

function startIn(lan: Lan, i: number, extra: string[] = []): DaemonProcess {
  return lanDaemon(lan.hosts[i]!.ns, `user${i + 1}`, extra);
}

/** Datagrams the daemon in `ns` sent or received by one mechanism (`/status` `traffic`). */
async function traffic(ns: string, direction: "sent" | "received", mechanism: string): Promise<number> {
  const r = await runCli(["status", "--json"], { netns: ns });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).traffic[direction][mechanism].datagrams;
}

const isIPv4 = (a: string) => /^\d+\.\d+\.\d+\.\d+$/.test(a);

Deno.test({
  name:
    "an IPv6-only LAN of three hosts: joined by link-local multicast, a message, a file, a kill -9 detected, a goodbye",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withLan6(3, { ipv4: false, ipv6: true }, async (lan) => {
      const work = Deno.makeTempDirSync({ prefix: "lanchat-ipv6-" });
      try {
        const [a, b] = await Promise.all([
          startIn(lan, 0).started(),
          startIn(lan, 1, ["--downloads", `${work}/dl`, "--accept-files", "always"]).started(),
        ]);
        await a.joined(b.id, 5000);
        await b.joined(a.id, 5000);
        // Join time: from the third daemon's start line to its being in both rosters and both in its own.
        const c = await startIn(lan, 2).started();
        const t0 = Date.parse(c.lines.find((l) => /started/.test(l.message))!["@timestamp"]);
        const joins = await Promise.all([a.joined(c.id, 5000), b.joined(c.id, 5000), c.joined(a.id, 5000)]);
        await c.joined(b.id, 5000);
        const joinMs = Math.max(...joins.map((l) => Date.parse(l["@timestamp"]))) - t0;
        console.log(`IPv6-only LAN: a newcomer is in every roster ${joinMs} ms after its start line`);
        // Every roster complete, every address IPv6 (no IPv4 on this LAN), link-local ones with their interface.
        for (const [i, h] of lan.hosts.entries()) {
          const peers = await peersIn(h.ns);
          assert.deepEqual(peers.map((p) => p.id).sort(), [a, b, c].filter((_, j) => j !== i).map((d) => d.id).sort());
          for (const p of peers) {
            for (const x of p.addresses) {
              assert.ok(x.address.includes(":"), `${x.address} is IPv6`);
              if (x.address.startsWith("fe80:")) assert.ok(x.address.endsWith("%eth0"), `${x.address} has its scope`);
            }
          }
        }
        assert.ok(await traffic(lan.hosts[0]!.ns, "received", "ipv6-multicast") > 0);
        const status = await runCli(["status"], { netns: lan.hosts[0]!.ns });
        assert.match(status.stdout, /announcing every 500 ms on: .*eth0 \(ff02::4c4e:4348\)/);
        // A message, over IPv6.
        await sendIn(lan.hosts[0]!.ns, "user2", "hello over IPv6");
        // PEER as a link-local address, without its scope.
        const ll = (await peersIn(lan.hosts[0]!.ns)).find((p) => p.id === b.id)!.addresses
          .find((x) => x.address.startsWith("fe80:"))!.address.split("%")[0]!;
        await sendIn(lan.hosts[0]!.ns, ll, "to a link-local address");
        const inbox = await runCli(["inbox", "--json"], { netns: lan.hosts[1]!.ns });
        assert.ok(inbox.stdout.includes("hello over IPv6"), inbox.stdout);
        assert.ok(inbox.stdout.includes("to a link-local address"), inbox.stdout);
        // A file, over IPv6 TCP.
        const bytes = crypto.getRandomValues(new Uint8Array(65536));
        const big = new Uint8Array(4 * 1024 * 1024);
        for (let i = 0; i < big.length; i += bytes.length) big.set(bytes, i);
        big[12345] = 7;
        await Deno.writeFile(`${work}/data.bin`, big);
        await sendFileIn({
          from: lan.hosts[0]!.ns,
          to: lan.hosts[1]!.ns,
          peer: "user2",
          path: `${work}/data.bin`,
          downloads: `${work}/dl`,
        });
        // kill -9: no goodbye; both others find it gone by probe timeout.
        c.signal("SIGKILL");
        for (const d of [a, b]) {
          assert.equal((await d.left(c.id, 3 * INTERVAL_MS * 1.25 + PROBE_MS + 3000)).properties.reason, "timeout");
        }
        // A stop says goodbye to the group too: gone at once, not by timeout.
        b.signal("SIGTERM");
        assert.equal((await a.left(b.id, 2000)).properties.reason, "goodbye");
      } finally {
        await Deno.remove(work, { recursive: true }).catch(() => {});
      }
    }),
});

Deno.test({
  name: "a dual-stack host is one roster entry with its IPv4 and IPv6 addresses; a --no-ipv6 host only IPv4",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withLan6(3, { ipv4: true, ipv6: true }, async (lan) => {
      const [a, b, c] = await Promise.all([
        startIn(lan, 0).started(),
        startIn(lan, 1).started(),
        startIn(lan, 2, ["--no-ipv6"]).started(),
      ]);
      for (const d of [b, c]) await a.joined(d.id, 5000);
      let peers: PeerJson[] = [];
      await until("b heard on IPv4 and IPv6", async () => {
        peers = await peersIn(lan.hosts[0]!.ns);
        const pb = peers.find((p) => p.id === b.id);
        return !!pb && pb.addresses.some((x) => isIPv4(x.address)) && pb.addresses.some((x) => x.address.includes(":"));
      }, 10_000);
      assert.equal(peers.length, 2, JSON.stringify(peers));
      assert.equal(peers.filter((p) => p.id === b.id).length, 1);
      const pb = peers.find((p) => p.id === b.id)!;
      assert.ok(pb.addresses.some((x) => x.address === lan.hosts[1]!.address));
      assert.ok(pb.addresses.some((x) => x.address.startsWith("fe80:") && x.address.endsWith("%eth0")));
      // The --no-ipv6 host: heard on IPv4 only, sends no IPv6 multicast, and still messages.
      const pc = peers.find((p) => p.id === c.id)!;
      assert.ok(pc.addresses.every((x) => isIPv4(x.address)), JSON.stringify(pc.addresses));
      assert.equal(await traffic(lan.hosts[2]!.ns, "sent", "ipv6-multicast"), 0);
      assert.ok(await traffic(lan.hosts[2]!.ns, "sent", "ipv4-broadcast") > 0);
      await sendIn(lan.hosts[0]!.ns, "user3", "to the IPv4-only host");
      // The CLI shows the IPv6 endpoint in brackets.
      const table = await runCli(["peers"], { netns: lan.hosts[0]!.ns });
      assert.match(table.stdout, /\[fe80::[0-9a-f:]+%eth0\]:47475/);
    }),
});

Deno.test({
  name: "--peer [fd00:198:18::12]:47475 finds a host by IPv6 unicast where no announce reaches",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withLan6(2, { ipv4: false, ipv6: true }, async (lan) => {
      // Host 1 announces on no interface (and so hears no multicast): only its --peer finds host 2.
      const [a, b] = await Promise.all([
        startIn(lan, 0, ["--exclude-interface", "eth0", "--peer", `[${lan.hosts[1]!.address6}]:47475`]).started(),
        startIn(lan, 1).started(),
      ]);
      await a.joined(b.id, 5000);
      await b.joined(a.id, 5000);
      const peers = await peersIn(lan.hosts[0]!.ns);
      assert.deepEqual(peers.map((p) => p.addresses.map((x) => x.address)), [[lan.hosts[1]!.address6]]);
      // PEER as the IPv6 address and port it was heard on.
      await sendIn(lan.hosts[0]!.ns, `[${lan.hosts[1]!.address6}]:47475`, "by --peer over IPv6");
    }),
});

Deno.test({
  name: "two daemons on one IPv6-only host find each other by the group's multicast loopback",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withLan6(1, { ipv4: false, ipv6: true }, async (lan) => {
      // Neither announces on lo (IPv4 127.255.255.255, which would find the other by itself): only IPv6 on eth0.
      const [a, b] = await Promise.all([
        startIn(lan, 0, ["--exclude-interface", "lo"]).started(),
        startIn(lan, 0, ["--exclude-interface", "lo", "--unicast-port", "0", "--http", "127.0.0.1:0"]).started(),
      ]);
      await a.joined(b.id, 5000);
      await b.joined(a.id, 5000);
      const peers = await peersIn(lan.hosts[0]!.ns);
      assert.equal(peers.length, 1);
      assert.ok(peers[0]!.addresses.every((x) => x.address.includes(":")), JSON.stringify(peers[0]!.addresses));
    }),
});

Deno.test({
  name: "IPv6-only: a host whose cable is pulled leaves by timeout and rejoins when it is back",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withLan6(2, { ipv4: false, ipv6: true }, async (lan) => {
      const [a, b] = await Promise.all([startIn(lan, 0).started(), startIn(lan, 1).started()]);
      await a.joined(b.id, 5000);
      await lan.cutLink(lan.hosts[1]!);
      assert.equal((await a.left(b.id, 3 * INTERVAL_MS * 1.25 + PROBE_MS + 3000)).properties.reason, "timeout");
      await new Promise((r) => setTimeout(r, 2000));
      const before = a.lines.length;
      await lan.restoreLink(lan.hosts[1]!);
      await a.waitFor(
        (l) => a.lines.indexOf(l) >= before && /^Peer (joined|restarted)/.test(l.message) && l.properties.id === b.id,
        15_000,
        "rejoin after the cable is back",
      );
      await until(
        "b to have a again",
        async () => (await peersIn(lan.hosts[1]!.ns)).some((p) => p.id === a.id),
        15_000,
      );
      await sendIn(lan.hosts[1]!.ns, "user1", "back again");
    }),
});
