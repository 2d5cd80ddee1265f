/** `lanchat inbox`: message history, and with --follow new messages as they arrive. */
import type { Command } from "commander";
import type { MessageJson } from "../daemon.ts";
import { daemonUrl, followEvents, formatMessage, getJson, request } from "./client.ts";
import { parseLimit } from "./options.ts";

export function registerInbox(program: Command): void {
  program.command("inbox")
    .description("Show message history (both directions), oldest first")
    .option("--peer <peer>", "only messages with this peer")
    .option("--limit <n>", "how many of the latest messages", parseLimit, 50)
    .option("--follow", "then print new messages as they arrive (Ctrl-C to stop)")
    .option("--json", "one JSON object per line")
    .option("--http <host:port>", "the daemon's HTTP endpoint (default: $LANCHAT_HTTP or 127.0.0.1:47476)")
    .action(async (opts: { peer?: string; limit: number; follow?: boolean; json?: boolean; http?: string }) => {
      const base = daemonUrl(opts.http);
      let peerId: string | undefined;
      if (opts.peer) {
        peerId = (await request<{ id: string }>(base, `/resolve?peer=${encodeURIComponent(opts.peer)}`)).body.id;
      }
      const print = (m: MessageJson) => console.log(opts.json ? JSON.stringify(m) : formatMessage(m));
      const shown = new Set<string>();
      const history = async () => {
        const q = new URLSearchParams({ limit: String(opts.limit) });
        if (peerId) q.set("peer", peerId);
        for (const m of await getJson<MessageJson[]>(base, `/messages?${q}`)) {
          if (shown.has(m.id)) continue;
          shown.add(m.id);
          print(m);
        }
      };
      if (!opts.follow) {
        await history();
        return;
      }
      // Subscribe first, then print history, so nothing falls between the two.
      const ctrl = new AbortController();
      Deno.addSignalListener("SIGINT", () => ctrl.abort());
      let opened!: () => void;
      const open = new Promise<void>((r) => opened = r);
      const follow = followEvents(base, (type, data) => {
        if (type !== "message") return;
        const m = data as MessageJson;
        if ((peerId && m.peer.id !== peerId) || shown.has(m.id)) return;
        shown.add(m.id);
        print(m);
      }, { signal: ctrl.signal, onOpen: opened });
      await Promise.race([open, follow]);
      await history();
      await follow;
    });
}
