/**
 * A real multi-host LAN out of network namespaces (scripts/lan.ts): one
 * daemon per host, default ports, announcing on every interface. Needs root;
 * without it these tests are ignored with the reason printed.
 */
import assert from "node:assert/strict";
import { type Lan, lanUnavailable } from "../../scripts/lan.ts";
import { type DaemonProcess, ownerEnv, runCli } from "../support/daemon_process.ts";
import { lanDaemon, peersIn, withLan } from "../support/lan_hosts.ts";

const unavailable = await lanUnavailable();
if (unavailable) console.warn(`LAN tests ignored: ${unavailable}`);

const INTERVAL_MS = 500;
const PROBE_MS = 500;
/** Last hello up to 1.25 intervals before the cut, stale 3 intervals after it, then the probe. */
const EXPIRY_BOUND_MS = 3 * INTERVAL_MS * 1.25 + PROBE_MS;

function startIn(lan: Lan, i: number): DaemonProcess {
  const h = lan.hosts[i]!;
  return lanDaemon(h.ns, `user@${h.ns}`);
}

Deno.test({
  name: "four hosts on a LAN see each other; a stopped host and a host with a cut cable disappear everywhere",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withLan(4, async (lan) => {
      const ds = await Promise.all(lan.hosts.map((_, i) => startIn(lan, i).started()));
      for (const d of ds) for (const o of ds) if (o !== d) await d.joined(o.id, 2000);
      // Every roster is complete, each peer on its LAN address, via the CLI inside each host.
      for (const [i, h] of lan.hosts.entries()) {
        const peers = await peersIn(h.ns);
        assert.deepEqual(peers.map((p) => p.id).sort(), ds.filter((_, j) => j !== i).map((d) => d.id).sort());
        for (const p of peers) assert.match(p.addresses[0]!.address, /^198\.18\.0\.1\d$/);
      }
      // Host 1 stops (SIGTERM): gone from every roster at once, by goodbye.
      ds[0]!.signal("SIGTERM");
      for (const d of ds.slice(1)) assert.equal((await d.left(ds[0]!.id, 1000)).properties.reason, "goodbye");
      assert.equal((await ds[0]!.wait()).code, 0);
      // Host 2's cable is pulled: gone everywhere within the expiry bound.
      await lan.cutLink(lan.hosts[1]!);
      for (const d of ds.slice(2)) {
        assert.equal((await d.left(ds[1]!.id, EXPIRY_BOUND_MS + 1500)).properties.reason, "timeout");
      }
      for (const h of lan.hosts.slice(2)) assert.equal((await peersIn(h.ns)).length, 1);
      // Cable back in: it rejoins (same incarnation, no restart needed).
      const before = ds[2]!.lines.length;
      await lan.restoreLink(lan.hosts[1]!);
      await ds[2]!.waitFor(
        (l) => ds[2]!.lines.indexOf(l) >= before && /^Peer joined/.test(l.message) && l.properties.id === ds[1]!.id,
        3 * INTERVAL_MS * 1.25 + 2000,
        "rejoin after the cable is back",
      );
    }),
});

Deno.test({
  name: "hosts on a LAN that drops 30 % of UDP datagrams still all find each other within a few intervals",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withLan(3, async (lan) => {
      await lan.setLoss(30);
      const ds = await Promise.all(lan.hosts.map((_, i) => startIn(lan, i).started()));
      // With loss a hello or reply may be lost; the burst and periodic hellos
      // make up for it within a few intervals.
      for (const d of ds) for (const o of ds) if (o !== d) await d.joined(o.id, 6 * INTERVAL_MS);
      for (const h of lan.hosts) assert.equal((await peersIn(h.ns)).length, 2);
      assert.ok(await lan.dropped() > 0, "the loss rule dropped datagrams");
    }),
});

Deno.test({
  name: "500 messages, some of 20 KiB, cross a LAN that drops 30 % of UDP: all delivered, exactly once, in order",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: () =>
    withLan(2, async (lan) => {
      const [a, b] = await Promise.all([startIn(lan, 0).started(), startIn(lan, 1).started()]);
      await a.joined(b.id, 2000);
      await lan.setLoss(30);
      const texts = Array.from(
        { length: 500 },
        (_, i) => i % 10 === 5 ? `big ${i} ` + "二十千字节".repeat(1400) : `message ${i} from A`,
      );
      assert.ok(new TextEncoder().encode(texts[5]!).length > 20_000);
      const file = Deno.makeTempFileSync({ suffix: ".json" });
      Deno.writeTextFileSync(file, JSON.stringify(texts.map((text) => ({ to: b.id, text }))));
      const helper = new URL("../support/post_messages.ts", import.meta.url).pathname;
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          lan.hosts[0]!.ns,
          Deno.execPath(),
          "run",
          "--allow-net",
          "--allow-read",
          "--allow-env=LANCHAT_HTTP_TOKEN",
          helper,
          "http://127.0.0.1:47476",
          file,
          "240",
        ],
        env: ownerEnv(["--http", "127.0.0.1:47476"], { netns: lan.hosts[0]!.ns }),
        stdout: "piped",
        stderr: "piped",
      }).output();
      const summary = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.equal(
        summary.outbox,
        0,
        `outbox drained: ${JSON.stringify(summary)} ${new TextDecoder().decode(out.stderr)}`,
      );
      console.log(`500 messages at 30 % loss: ${JSON.stringify(summary)}, ${await lan.dropped()} datagrams dropped`);
      const r = await runCli(["inbox", "--json", "--limit", "10000"], { netns: lan.hosts[1]!.ns });
      assert.equal(r.code, 0, r.stderr);
      const got = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(got.length, 500, "exactly once: no message missing or doubled");
      assert.deepEqual(got.map((m) => m.text), texts, "in order, every byte intact");
      assert.ok(got.every((m) => m.direction === "in" && !m.gapBefore && !m.late));
      // That the loss was real: the bridge dropped hundreds of datagrams and the sender had to send fragments again.
      // (End-to-end bundles carry several fragments or acks per datagram, so fewer datagrams cross than fragments:
      // 866 of them dropped in one run, where each fragment had been a datagram of its own and 1,000 was the bound.)
      assert.ok(await lan.dropped() > 400, "the bridge really dropped datagrams");
      assert.ok(summary.fragmentsRetransmitted > 400, `fragments sent again: ${JSON.stringify(summary)}`);
    }),
});
