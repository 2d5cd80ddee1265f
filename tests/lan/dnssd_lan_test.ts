/**
 * DNS-SD across subnets (tests/support/routed_lan.ts): two /25s joined by a
 * router that forwards unicast but not broadcast, running Debian's
 * avahi-daemon. With its reflector on, lanchat nodes on both sides find
 * each other by their `_lanchat._udp` records, message and send a file, and
 * `avahi-browse` lists them; with it off, a record `avahi-publish` makes for
 * a live node on the other side brings that node in. Needs root and Avahi.
 */
import assert from "node:assert/strict";
import { createLan, type LanHost, lanUnavailable, sh } from "../../scripts/lan.ts";
import type { TransferJson } from "../../src/api/types.ts";
import { DaemonProcess, killAll, runCli, tempDataDir, until } from "../support/daemon_process.ts";
import { avahiUnavailable, createRoutedLan, type RoutedHost, type RoutedLan } from "../support/routed_lan.ts";
import { peersIn, statusIn } from "../support/lan_hosts.ts";

const unavailable = await lanUnavailable() ?? await avahiUnavailable();
if (unavailable) console.warn(`DNS-SD LAN tests ignored: ${unavailable}`);

function startOn(h: RoutedHost, name: string, extra: string[] = []): DaemonProcess {
  return new DaemonProcess(["--name", name, "--data-dir", tempDataDir(), "--interval", "1s", ...extra], {
    netns: h.ns,
  });
}

async function withRoutedLan(body: (lan: RoutedLan) => Promise<void>): Promise<void> {
  const lan = await createRoutedLan(1);
  try {
    await body(lan);
  } finally {
    await killAll();
    await lan.destroy();
  }
}

/** What a tool prints before it exits (or is ended after `ms`). */
async function outputOf(p: Deno.ChildProcess, ms: number): Promise<string> {
  const timer = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch { /* exited */ }
  }, ms);
  try {
    const out = await p.output();
    return new TextDecoder().decode(out.stdout);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name:
    "nodes on two subnets find each other through an Avahi reflector, message, send a file; avahi-browse lists them",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withRoutedLan(async (lan) => {
      const [ha, hb] = lan.hosts as [RoutedHost, RoutedHost];
      await lan.startAvahi(true);
      const work = await Deno.makeTempDir({ prefix: "lanchat-dnssd-" });
      try {
        const t0 = Date.now();
        const [a, b] = await Promise.all([
          startOn(ha, "alice.on.a").started(),
          startOn(hb, "bob on b", ["--downloads", `${work}/dl`, "--accept-files", "always"]).started(),
        ]);
        const started = Date.now();
        await Promise.all([a.joined(b.id, 20_000), b.joined(a.id, 20_000)]);
        console.log(
          `join across the reflector: ${Date.now() - started} ms after both daemons said started ` +
            `(${Date.now() - t0} ms from launch)`,
        );
        // Each knows the other at its own address on the other subnet (not the router's).
        assert.deepEqual((await peersIn(ha.ns)).map((p) => p.addresses[0]!.address), [hb.address]);
        assert.deepEqual((await peersIn(hb.ns)).map((p) => p.addresses[0]!.address), [ha.address]);
        const sent = await runCli(["send", "bob on b", "across the router", "--wait", "10"], { netns: ha.ns });
        assert.equal(sent.code, 0, sent.stderr);
        assert.match(sent.stdout, /delivered to bob on b/); // exit 0: delivered and acknowledged
        const bytes = crypto.getRandomValues(new Uint8Array(65536));
        await Deno.writeFile(`${work}/f.bin`, bytes);
        const file = await runCli(["send-file", "bob on b", `${work}/f.bin`, "--json", "--wait", "30"], {
          netns: ha.ns,
        });
        assert.equal(file.code, 0, `${file.stdout}${file.stderr}`);
        assert.equal((JSON.parse(file.stdout) as TransferJson).state, "done");
        await until("the file on b", async () =>
          (await Deno.stat(`${work}/dl/f.bin`).catch(() => null)) !== null, 10_000);
        assert.deepEqual(await Deno.readFile(`${work}/dl/f.bin`), bytes);
        // Debian's browser, in the router, lists both nodes with their TXT.
        const browsed = await outputOf(lan.avahi(["avahi-browse", "-rtp", "_lanchat._udp"]), 15_000);
        const resolved = browsed.split("\n").filter((l) =>
          l.startsWith("=")
        );
        for (const [d, name] of [[a, "alice-on-a"], [b, "bob on b"]] as const) {
          assert.ok(
            // -p escapes a space as \032.
            resolved.some((l) => l.includes(name.replaceAll(" ", "\\032")) && l.includes(`"id=${d.id}"`)),
            `avahi-browse lists ${name}:\n${browsed}`,
          );
        }
      } finally {
        await Deno.remove(work, { recursive: true }).catch(() => {});
      }
    }),
});

Deno.test({
  name: "without a reflector, an avahi-publish record for a live node on the other subnet brings it into the roster",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withRoutedLan(async (lan) => {
      const [ha, hb] = lan.hosts as [RoutedHost, RoutedHost];
      await lan.startAvahi(false);
      const [a, b] = await Promise.all([startOn(ha, "alice").started(), startOn(hb, "bob").started()]);
      // Apart: no broadcast and no mDNS crosses the router.
      await new Promise((r) => setTimeout(r, 4000));
      assert.equal((await peersIn(ha.ns)).length, 0);
      const host = lan.avahi(["avahi-publish", "-a", "-R", "bobs-box.local", hb.address]);
      const service = lan.avahi([
        "avahi-publish",
        "-s",
        "-H",
        "bobs-box.local",
        "bob (published)",
        "_lanchat._udp",
        String(b.unicastPort),
        `id=${b.id}`,
        "v=1",
      ]);
      try {
        const t = Date.now();
        await Promise.all([a.joined(b.id, 20_000), b.joined(a.id, 20_000)]);
        console.log(`join by an avahi-publish record: ${Date.now() - t} ms`);
        assert.deepEqual((await peersIn(ha.ns)).map((p) => p.addresses[0]!.address), [hb.address]);
      } finally {
        for (const p of [host, service]) {
          try {
            p.kill("SIGKILL");
          } catch { /* exited */ }
          await p.output().catch(() => {});
        }
      }
    }),
});

const LIAR = new URL("../support/mdns_liar.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

Deno.test({
  name: "a lying mDNS responder advertising 200 instances at a victim gets none into the roster and few hellos to it",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const lan = await createLan(3);
    try {
      const [node, liar, victim] = lan.hosts as [LanHost, LanHost, LanHost];
      // Every UDP datagram to the victim but mDNS, counted on the bridge.
      await sh(
        "ip",
        ["netns", "exec", lan.bridgeNs, "nft", "-f", "-"],
        [
          "table bridge victim {",
          "  chain forward {",
          "    type filter hook forward priority 0; policy accept;",
          `    ip daddr ${victim.address} udp dport != 5353 counter`,
          "  }",
          "}",
        ].join("\n"),
      );
      await new DaemonProcess(["--name", "node", "--data-dir", tempDataDir(), "--interval", "1s"], {
        netns: node.ns,
      }).started();
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          liar.ns,
          Deno.execPath(),
          "run",
          "-A",
          "--config",
          CONFIG,
          LIAR,
          "--from",
          liar.address,
          "--victim",
          victim.address,
          "--instances",
          "200",
          "--oversize",
          "20",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      // The probe window passes: every candidate is given up.
      await new Promise((r) => setTimeout(r, 12_000));
      const status = await statusIn(node.ns);
      assert.deepEqual(await peersIn(node.ns), []);
      assert.equal(status.mdns.candidates.length, 0, JSON.stringify(status.mdns.candidates));
      const c = status.mdns.counters;
      assert.ok(c.dropped["rate-limit"] > 0, JSON.stringify(c));
      assert.ok(c.dropped.oversize > 0, JSON.stringify(c));
      assert.ok(c.probed <= 16 && c.givenUp === c.probed, JSON.stringify(c));
      const listed = await sh("ip", ["netns", "exec", lan.bridgeNs, "nft", "list", "table", "bridge", "victim"]);
      const toVictim = Number(/counter packets (\d+)/.exec(listed)?.[1] ?? -1);
      console.log(`200 lying instances, 20 oversized datagrams: ${toVictim} datagrams to the victim`);
      // 8 new candidates per responder per 10 s, each sent a hello at once and one a second for 10 s.
      assert.ok(toVictim >= 1 && toVictim <= 16 * 12, `${toVictim} datagrams to the victim`);
    } finally {
      await killAll();
      await lan.destroy();
    }
  },
});
