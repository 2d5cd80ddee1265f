/**
 * The real iptux 0.8.3 restarted between two messages to lanchat --ipmsg
 * (driven by ../shared/tools/iptux_drive.sh). iptux numbers its packets
 * from small values again after a restart, so its second run's messages can
 * carry the packet numbers of its first run's: each is acknowledged and
 * each must be in lanchat's history (issue 23, item 2). The crafted-client
 * version, which makes the numbers collide on purpose, is
 * tests/faults/ipmsg_restart_test.ts.
 */
import assert from "node:assert/strict";
import type { MessageJson, PeerJson } from "../../src/api/types.ts";
import { runCli } from "../support/daemon_process.ts";
import { iptuxUnavailable, withIptuxAndLanchat } from "../support/iptux_driver.ts";

const unavailable = await iptuxUnavailable();
if (unavailable) console.warn(`iptux restart test ignored: ${unavailable}`);

/** Packet numbers of the SENDMSGs iptux's DEBUG log says it sent to `to`. */
function sentMessageNumbers(log: string, to: string): string[] {
  const lines = log.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /send udp message to ([0-9.]+):\d+, size (\d+)/.exec(lines[i]!);
    if (!m || m[1] !== to) continue;
    const bytes: number[] = [];
    while (i + 1 < lines.length && /^[0-9a-f]{8} {2}/.test(lines[i + 1]!)) {
      for (const tok of lines[++i]!.slice(10).split("|", 1)[0]!.trim().split(/\s+/)) bytes.push(parseInt(tok, 16));
    }
    const fields = new TextDecoder().decode(new Uint8Array(bytes.slice(0, Number(m[2])))).split(":");
    if ((Number(fields[4]) & 0xff) === 0x20) out.push(fields[1]!);
  }
  return out;
}

Deno.test({
  name: "a real iptux restarted between two messages: both are acknowledged and both are in lanchat's history",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    // Announces 5 s apart (not 500 ms): iptux answers each with a packet, which would shift its numbering between runs.
    withIptuxAndLanchat(["--interval", "5s"], async ({ drive, iptuxHost, lanchatHost }) => {
      const cli = (args: string[]) => runCli(args, { netns: lanchatHost.ns });
      const history = async (): Promise<MessageJson[]> => {
        const r = await cli(["inbox", "--json", "--limit", "100"]);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.trim().split("\n").filter((l) => l.startsWith("{"));
        return lines.map((l) => JSON.parse(l) as MessageJson).filter((m) => m.direction === "in");
      };
      const waitFor = async (text: string) => {
        const end = Date.now() + 30_000;
        while (Date.now() < end) {
          if ((await history()).some((m) => m.text.includes(text))) return;
          await new Promise((r) => setTimeout(r, 250));
        }
        assert.fail(
          `"${text}" never reached lanchat's history: ${JSON.stringify((await history()).map((m) => m.text))}`,
        );
      };
      const numbers: string[][] = [];
      const log = async () => await Deno.readTextFile((await drive("iptux_drive_log A")).trim());

      // First run: three texts, sent as soon as iptux lists alice.
      const first = ["first run: hello 你好", "first run: two", "first run: three"];
      await drive("iptux_drive_wait_pal A alice 30");
      for (const text of first) await drive(`iptux_drive_send_text A ${lanchatHost.address} '${text}' 30`);
      for (const text of first) await waitFor(text);
      numbers.push(sentMessageNumbers(await log(), lanchatHost.address));

      // iptux stops and starts again, numbering from the start.
      await drive("iptux_drive_stop A");
      const display = 100 + Math.floor(Math.random() * 800);
      await drive(`iptux_drive_start A ${iptuxHost.ns} ${display} iptuxuser`);

      // Second run: the same steps, so its packet numbers are those of the first run's messages, or close.
      const second = ["second run: one", "second run: two", "second run: three"];
      await drive("iptux_drive_wait_pal A alice 30");
      for (const text of second) await drive(`iptux_drive_send_text A ${lanchatHost.address} '${text}' 30`);
      for (const text of second) await waitFor(text);
      numbers.push(sentMessageNumbers(await log(), lanchatHost.address));
      const same = numbers[1]!.filter((n) => numbers[0]!.includes(n));
      console.log(
        `iptux's SENDMSG packet numbers: first run ${numbers[0]}, second run ${numbers[1]} (the same: ${
          same.length ? same : "none"
        })`,
      );

      const texts = (await history()).map((m) => m.text);
      for (const t of [...first, ...second]) {
        assert.equal(texts.filter((x) => x === t).length, 1, `${t}: ${JSON.stringify(texts)}`);
      }
      const peers: PeerJson[] = JSON.parse((await cli(["peers", "--json"])).stdout);
      assert.equal(
        peers.filter((p) => p.protocol === "ipmsg").length,
        1,
        "one iptux user, before and after",
      );
    }),
});
