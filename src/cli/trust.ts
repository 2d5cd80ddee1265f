/** `lanchat trust PEER` and `lanchat forget PEER`: manage pinned node keys. */
import type { Command } from "commander";
import { httpOption } from "./options.ts";
import { daemonUrl, request } from "./client.ts";
import { printableLine } from "../common/printable.ts";

export function registerTrust(program: Command): void {
  program.command("trust")
    .description(
      "Confirm a peer's node key after comparing its fingerprint (lanchat peers) out of band; " +
        "other keys pinned with the same name are no longer chosen by name",
    )
    .argument("<peer>", "node id, id prefix, name or address")
    .addOption(httpOption())
    .action(async (peer: string, opts: { http?: string }) => {
      const r = await request<{ id: string; name: string; trust: string }>(daemonUrl(opts.http), "/trust", {
        method: "POST",
        body: { peer },
      });
      console.log(`trusted ${printableLine(r.body.name)} (${r.body.id})`);
    });
  program.command("forget")
    .description("Forget a peer's pinned node key: the key it shows next is pinned anew (trust on first use)")
    .argument("<peer>", "node id, id prefix, name or address")
    .addOption(httpOption())
    .action(async (peer: string, opts: { http?: string }) => {
      const r = await request<{ id: string; name: string }>(daemonUrl(opts.http), "/forget", {
        method: "POST",
        body: { peer },
      });
      console.log(`forgot the key of ${printableLine(r.body.name)} (${r.body.id})`);
    });
}
