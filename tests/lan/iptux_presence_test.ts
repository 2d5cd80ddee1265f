/**
 * Presence and sealed messages between lanchat --ipmsg and a real iptux
 * 0.8.3, driven as a person would (../shared/tools/iptux_drive.sh). What
 * iptux implements, read in its source (iptux-src/iptux,
 * src/iptux-core/internal/UdpDataService.cpp, UdpData.cpp, Command.cpp):
 * - no absence mode: it sets ABSENCEOPT on every entry it sends, and on a
 *   BR_ABSENCE it only takes the sender's new name. So lanchat's away shows
 *   in iptux as the name IP Messenger gives an absent user, "alice[at lunch]",
 *   and iptux itself always shows online in lanchat;
 * - no sealed messages: SECRETOPT is not read, READMSG and ANSREADMSG are
 *   neither sent nor handled. A sealed message reaches iptux as a plain one,
 *   acknowledged, and is never marked opened;
 * - GETINFO and GETABSENCEINFO are never sent (answered anyway, for IP
 *   Messenger and FeiQ: tests/unit/ipmsg_test.ts).
 */
import assert from "node:assert/strict";
import type { MessageJson, PeerJson } from "../../src/api/types.ts";
import { runCli } from "../support/daemon_process.ts";
import { iptuxUnavailable, withIptuxAndLanchat } from "../support/iptux_driver.ts";

const unavailable = await iptuxUnavailable();
if (unavailable) console.warn(`iptux presence test ignored: ${unavailable}`);

Deno.test({
  name:
    "a real iptux sees lanchat's away as IP Messenger's name[note], shows a sealed message as plain text, and shows online itself",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withIptuxAndLanchat([], async ({ drive, lanchatHost }) => {
      const cli = (args: string[]) => runCli(args, { netns: lanchatHost.ns });
      await drive("iptux_drive_wait_pal A alice 30");
      // iptux sets ABSENCEOPT on every entry: lanchat does not take that for away.
      const peers: PeerJson[] = JSON.parse((await cli(["peers", "--json"])).stdout);
      const tux = peers.find((p) => p.protocol === "ipmsg")!;
      assert.equal(tux.presence, "online", JSON.stringify(tux));

      // Away: iptux lists alice as IP Messenger shows an absent user; back, as alice again.
      assert.equal((await cli(["away", "at", "lunch"])).code, 0);
      await drive("iptux_drive_wait_pal A 'alice[at lunch]' 20");
      assert.equal((await cli(["online"])).code, 0);
      await drive("iptux_drive_wait_pal A alice 20");

      // Sealed: iptux acknowledges it and shows the text; it never says it was opened.
      const sent = await cli(["send", "--sealed", tux.id, "sealed for iptux 封书", "--wait", "5"]);
      assert.equal(sent.code, 0, sent.stdout + sent.stderr);
      await drive(`iptux_drive_wait_text A ${lanchatHost.address} '封书' 20`);
      await new Promise((r) => setTimeout(r, 3000));
      const history: MessageJson[] = JSON.parse(
        `[${(await cli(["inbox", "--peer", tux.id, "--json"])).stdout.trim().split("\n").join(",")}]`,
      );
      const mine = history.find((m) => m.direction === "out")!;
      assert.deepEqual([mine.status, mine.sealed, mine.readAt], ["delivered", { opened: false }, undefined]);
    }),
});
