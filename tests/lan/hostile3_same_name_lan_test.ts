/**
 * Hostile 3: two nodes with one display name on two subnets behind an Avahi
 * reflector: avahi-browse lists both (the later renames to `name (1a2b)`),
 * each is in the other's roster, and a message reaches each by its id.
 */
import assert from "node:assert/strict";
import { lanUnavailable } from "../../scripts/lan.ts";
import { DaemonProcess, killAll, tempDataDir } from "../support/daemon_process.ts";
import { avahiUnavailable, createRoutedLan, type RoutedHost } from "../support/routed_lan.ts";

const unavailable = await lanUnavailable() ?? await avahiUnavailable();

Deno.test({
  name: "two nodes of one display name across a reflector: avahi-browse lists both, each joins the other",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const lan = await createRoutedLan(1, "h3s");
    try {
      const [ha, hb] = lan.hosts as [RoutedHost, RoutedHost];
      await lan.startAvahi(true);
      const start = (h: RoutedHost) =>
        new DaemonProcess(["--name", "same", "--data-dir", tempDataDir(), "--interval", "1s"], { netns: h.ns })
          .started();
      // One after the other, as the rule reads ("the later renames"): two started at the same instant may both
      // rename, and Avahi's cache then still holds the first name for a while (3 names seen once in CI).
      const a = await start(ha);
      await new Promise((r) => setTimeout(r, 1500)); // its first announcement through the reflector
      const b = await start(hb);
      await Promise.all([a.joined(b.id, 20_000), b.joined(a.id, 20_000)]);
      await new Promise((r) => setTimeout(r, 5000)); // the rename and its announcement
      const p = lan.avahi(["avahi-browse", "-rtp", "_lanchat._udp"]);
      const timer = setTimeout(() => p.kill("SIGKILL"), 15_000);
      const out = new TextDecoder().decode((await p.output()).stdout);
      clearTimeout(timer);
      const resolved = out.split("\n").filter((l) => l.startsWith("="));
      for (const d of [a, b]) {
        assert.ok(resolved.some((l) => l.includes(`"id=${d.id}"`)), `avahi-browse lists ${d.id}:\n${out}`);
      }
      const names = new Set(resolved.map((l) => l.split(";")[3]));
      assert.equal(names.size, 2, `two instance names, not ${[...names].join(", ")}`);
    } finally {
      await killAll();
      await lan.destroy();
    }
  },
});
