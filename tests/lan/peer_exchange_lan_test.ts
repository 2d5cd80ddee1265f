/**
 * Peers shared across subnets, with no reflector and no mDNS
 * (tests/support/routed_lan.ts: two /25s behind a router that forwards
 * unicast only): a node that knows a far peer by `--peer` tells the nodes
 * of its own subnet about it on request, and they join it once it answers
 * their own hello; a node restarted after the one that told it is gone
 * finds the far peer again from its known-peer cache. Needs root.
 */
import assert from "node:assert/strict";
import { lanUnavailable } from "../../scripts/lan.ts";
import { DaemonProcess, killAll, runCli, tempDataDir } from "../support/daemon_process.ts";
import { createRoutedLan, type RoutedHost } from "../support/routed_lan.ts";
import { peersIn } from "../support/lan_hosts.ts";

const unavailable = await lanUnavailable();
if (unavailable) console.warn(`Peer exchange LAN test ignored: ${unavailable}`);

function startOn(h: RoutedHost, name: string, dataDir: string, extra: string[] = []): DaemonProcess {
  return new DaemonProcess(["--name", name, "--data-dir", dataDir, "--interval", "1s", "--no-mdns", ...extra], {
    netns: h.ns,
  });
}

Deno.test({
  name: "a node learns a far peer from a neighbour that knows it by --peer, and finds it again from its cache",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const lan = await createRoutedLan(2);
    try {
      const [a1, a2, b1] = lan.hosts as [RoutedHost, RoutedHost, RoutedHost];
      const far = await startOn(b1, "far", tempDataDir()).started();
      const guide = await startOn(a1, "guide", tempDataDir(), ["--peer", b1.address]).started();
      const dir = tempDataDir();
      const t0 = Date.now();
      let near = await startOn(a2, "near", dir).started();
      await near.joined(guide.id, 10_000);
      await guide.joined(far.id, 10_000);
      // Told by the guide, probed by near itself, answered by far.
      await Promise.all([near.joined(far.id, 20_000), far.joined(near.id, 20_000)]);
      console.log(`join by peer exchange: ${Date.now() - t0} ms from near's launch`);
      const farSeen = (await peersIn(a2.ns)).find((p) => p.id === far.id);
      assert.equal(farSeen?.addresses[0]?.address, b1.address, "at far's own address");
      const sent = await runCli(["send", "far", "via a neighbour's list", "--wait", "10"], { netns: a2.ns });
      assert.equal(sent.code, 0, sent.stderr);
      // The guide goes; near restarts: its cache of earlier contacts brings far back.
      guide.signal("SIGKILL");
      near.signal("SIGTERM");
      await near.wait();
      // Far forgot near (its goodbye): nothing but near's own cache can bring them together again.
      await far.left(near.id, 5000);
      await new Promise((r) => setTimeout(r, 3000));
      const t1 = Date.now();
      near = await startOn(a2, "near", dir).started();
      await near.joined(far.id, 20_000);
      console.log(`join from the known-peer cache: ${Date.now() - t1} ms from restart`);
      assert.deepEqual((await peersIn(a2.ns)).map((p) => p.id), [far.id]);
    } finally {
      await killAll();
      await lan.destroy();
    }
  },
});
