/** `lanchat peers`: the roster as a table, or as JSON with --json. */
import { printableLine } from "../common/printable.ts";
import type { Command } from "commander";
import type { PeerJson } from "../api/types.ts";
import { ago, daemonUrl, getJson, table } from "./client.ts";
import { httpOption } from "./options.ts";
import { formatHostPort } from "../node/net_address6.ts";

/** Clock offsets at least this large are shown in the table (a keyed group refuses 30 s). */
export const CLOCK_SHOWN_FROM_MS = 1000;

/** The STATE cell: the state, and the peer's clock when it is off (`alive, clock 95s ahead`). */
export function stateCell(p: PeerJson): string {
  const away = p.presence && p.presence !== "online"
    ? `, ${p.presence}${p.note ? `: ${printableLine(p.note)}` : ""}`
    : "";
  const off = p.clockOffsetMs;
  if (off === undefined || Math.abs(off) < CLOCK_SHOWN_FROM_MS) return `${p.state}${away}`;
  const s = Math.round(Math.abs(off) / 1000);
  const amount = s >= 120 ? `${Math.round(s / 60)}m` : `${s}s`;
  return `${p.state}${away}, clock ${amount} ${off > 0 ? "ahead" : "behind"}`;
}

/** The KEY column's word for a pin's trust (none for a key pinned on first use, not verified). */
const KEY_WORDS: Record<string, string> = { trusted: "trusted", conflict: "KEY CHANGED", replaced: "replaced" };

/** What each changed key means, in words, one line a peer (printed under the table). */
export function keyNotes(peers: PeerJson[]): string[] {
  return peers.filter((p) => p.keyNote).map((p) =>
    `${p.trust === "conflict" ? "KEY CHANGED" : "Key replaced"} (${p.id.slice(0, 12)}): ${printableLine(p.keyNote!)}`
  );
}

export function registerPeers(program: Command): void {
  program.command("peers")
    .description("List the peers the local daemon sees (with --all, also those seen before and offline now)")
    .option("--all", "also list peers seen before that are offline now")
    .option("--json", "print the roster as JSON, as GET /peers does")
    .addOption(httpOption())
    .action(async (opts: { all?: boolean; json?: boolean; http?: string }) => {
      const peers = await getJson<PeerJson[]>(daemonUrl(opts.http), opts.all ? "/peers?all=1" : "/peers");
      if (opts.json) {
        console.log(JSON.stringify(peers, null, 2));
        return;
      }
      if (peers.length === 0) {
        console.log("No peers yet. Other hosts appear here when their lanchat daemon runs on the same LAN.");
        return;
      }
      const rows = peers.map((p) => [
        p.name,
        p.hostname,
        p.addresses.map((a) => formatHostPort(a.address, a.port)).join(", "),
        stateCell(p),
        ago(p.lastSeen),
        `${p.protocol ?? "lanchat"}${p.encrypted === false ? " (unencrypted)" : ""}`,
        p.id.slice(0, 12),
        p.fingerprint ? `${p.fingerprint}${p.trust && p.trust !== "tofu" ? ` (${KEY_WORDS[p.trust]})` : ""}` : "-",
      ]);
      Deno.stdout.writeSync(
        new TextEncoder().encode(table(["NAME", "HOST", "ADDRESS", "STATE", "SEEN", "VIA", "ID", "KEY"], rows)),
      );
      const notes = keyNotes(peers);
      if (notes.length) console.log(`\n${notes.join("\n")}`);
    });
}
