/** `lanchat peers`: the roster as a table, or as JSON with --json. */
import type { Command } from "commander";
import type { PeerJson } from "../daemon.ts";
import { ago, daemonUrl, getJson, table } from "./client.ts";

export function registerPeers(program: Command): void {
  program.command("peers")
    .description("List the peers the local daemon sees")
    .option("--json", "print the roster as JSON, as GET /peers does")
    .option("--http <host:port>", "the daemon's HTTP endpoint (default: $LANCHAT_HTTP or 127.0.0.1:47476)")
    .action(async (opts: { json?: boolean; http?: string }) => {
      const peers = await getJson<PeerJson[]>(daemonUrl(opts.http), "/peers");
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
        p.addresses.map((a) => `${a.address}:${a.port}`).join(", "),
        p.state,
        ago(p.lastSeen),
        p.protocol ?? "lanchat",
        p.id.slice(0, 12),
        p.fingerprint ? `${p.fingerprint}${p.trust && p.trust !== "tofu" ? ` (${p.trust})` : ""}` : "-",
      ]);
      Deno.stdout.writeSync(
        new TextEncoder().encode(table(["NAME", "HOST", "ADDRESS", "STATE", "SEEN", "VIA", "ID", "KEY"], rows)),
      );
    });
}
