/** `lanchat inbox`: message history, and with --follow new messages as they arrive. */
import type { Command } from "commander";
import type { MessageJson } from "../api/types.ts";
import { daemonUrl, followEventsForever, formatMessage, getJson, request } from "./client.ts";
import { httpOption, parseLimit } from "./options.ts";

export function registerInbox(program: Command): void {
  program.command("inbox")
    .description("Show message history (both directions), oldest first")
    .option("--peer <peer>", "only messages with this peer")
    .option("--limit <n>", "how many of the latest messages", parseLimit, 50)
    .option("--follow", "then print new messages as they arrive, across daemon restarts (Ctrl-C to stop)")
    .option("--json", "one JSON object per line")
    .addOption(httpOption())
    .action(async (opts: { peer?: string; limit: number; follow?: boolean; json?: boolean; http?: string }) => {
      const base = daemonUrl(opts.http);
      let peerId: string | undefined;
      if (opts.peer) {
        peerId = (await request<{ id: string }>(base, `/resolve?peer=${encodeURIComponent(opts.peer)}`)).body.id;
      }
      // Messages become visible in cursor order: the highest cursor printed
      // says what has been shown, across reconnects, with nothing kept per message.
      let lastCursor = 0;
      const print = (m: MessageJson) => {
        if (m.cursor <= lastCursor || (peerId && m.peer.id !== peerId)) return;
        lastCursor = m.cursor;
        console.log(opts.json ? JSON.stringify(m) : formatMessage(m));
      };
      const history = async (since?: number) => {
        const q = new URLSearchParams({ limit: String(since === undefined ? opts.limit : 10_000) });
        if (peerId) q.set("peer", peerId);
        if (since !== undefined) q.set("since", String(since));
        for (const m of await getJson<MessageJson[]>(base, `/messages?${q}`)) print(m);
      };
      if (!opts.follow) {
        await history();
        return;
      }
      const ctrl = new AbortController();
      Deno.addSignalListener("SIGINT", () => ctrl.abort());
      // Subscribe first, then print history, so nothing falls between the two;
      // after a daemon restart, what arrived meanwhile comes from history.
      await followEventsForever(base, (type, data) => {
        // New messages both ways, as history shows them: received, and sent (or queued) from here.
        if (type === "message" || type === "sent" || type === "queued") print(data as MessageJson);
      }, {
        signal: ctrl.signal,
        onOpen: async (reconnect) => {
          if (reconnect) console.error("(reconnected to the daemon)");
          await history(reconnect ? lastCursor : undefined);
        },
        onLost: () => console.error("(the daemon went away: reconnecting…)"),
      });
    });
}
