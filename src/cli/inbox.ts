/**
 * `lanchat inbox`: message history, a page at a time in either direction,
 * and with --follow new messages as they arrive.
 */
import type { Command } from "commander";
import type { MessageJson, TransferJson } from "../api/types.ts";
import { daemonUrl, followEventsForever, formatMessage, getJson, readMarker, request, updateLine } from "./client.ts";
import { httpOption, parseLimit, parsePlace, shellWord, UsageError } from "./options.ts";
import { resolveGroup } from "./group.ts";
import { printableLine } from "../common/printable.ts";
import { offeredLine, ShownStates, stateLine } from "./marks.ts";
import { OfferTransfers } from "./offers.ts";

export function registerInbox(program: Command): void {
  program.command("inbox")
    .description("Show message history (both directions), oldest first, a page at a time")
    .option("--peer <peer>", "only messages with this peer (not in groups)")
    .option("--group <group>", "only messages of this group (@NAME, its name or id)")
    .option("--limit <n>", "how many messages (a page)", parseLimit, 50)
    .option("--before <cursor|time>", "the page just before this cursor or ISO 8601 time (walk back)", parsePlace)
    .option("--after <cursor|time>", "the page just after this cursor or ISO 8601 time (walk forward)", parsePlace)
    .option("--follow", "then print new messages as they arrive, across daemon restarts (Ctrl-C to stop)")
    .option("--json", "one JSON object per line")
    .option("--ids", "start each line with the message's id (its first 12 hex digits: for send --reply, edit, delete)")
    .addOption(httpOption())
    .action(async (
      opts: {
        peer?: string;
        group?: string;
        limit: number;
        before?: string;
        after?: string;
        follow?: boolean;
        json?: boolean;
        ids?: boolean;
        http?: string;
      },
    ) => {
      const base = daemonUrl(opts.http);
      let peerId: string | undefined;
      // A usage error whatever the daemon holds: said before either is looked up (exit 2).
      if (opts.peer && opts.group) throw new UsageError("--peer and --group: choose one");
      const groupId = opts.group ? (await resolveGroup(base, opts.group)).id : undefined;
      if (opts.peer) {
        peerId = (await request<{ id: string }>(base, `/resolve?peer=${encodeURIComponent(opts.peer)}`)).body.id;
      }
      // Messages become visible in cursor order: the highest cursor printed
      // says what has been shown, across reconnects, with nothing kept per message.
      let lastCursor = 0;
      // What is printed has been read: the peers get read receipts (unless --json: a program, not a person).
      const read = readMarker(base);
      /** Whether a message is of what is shown (--peer, --group). */
      const wanted = (m: MessageJson) =>
        (!peerId || (m.peer.id === peerId && !m.group)) && (!groupId || m.group?.id === groupId);
      // File offers are shown with their transfer (its id, `lanchat accept ID`, what came of it).
      const offers = new OfferTransfers(base);
      // Messages of yours shown, whose later states (✓ delivered, ✓✓ read, ! failed) --follow tells.
      const states = new ShownStates();
      const print = (m: MessageJson) => {
        if (m.cursor <= lastCursor) return;
        if (!wanted(m)) return;
        lastCursor = m.cursor;
        const line = `${opts.ids ? `${m.id.slice(0, 12)}  ` : ""}${formatMessage(m)}${offers.hint(m)}`;
        console.log(opts.json ? JSON.stringify(m) : line);
        if (!opts.json) read.mark(m);
        states.shown(m);
      };
      /** Prints a page, with the transfers of the offers in it known first. */
      const printAll = async (got: MessageJson[]) => {
        if (!opts.json) await offers.load(got);
        for (const m of got) print(m);
      };
      const page = (params: Record<string, string>) => {
        const q = new URLSearchParams(params);
        if (peerId) q.set("peer", peerId);
        if (groupId) q.set("group", groupId);
        return getJson<MessageJson[]>(base, `/messages?${q}`);
      };
      /** Everything after `cursor`, page by page. */
      const catchUp = async (cursor: number) => {
        for (let after = cursor;;) {
          const got = await page({ after: String(after), limit: "10000" });
          await printAll(got);
          if (got.length < 10_000) return;
          after = got.at(-1)!.cursor;
        }
      };
      const first = async () => {
        const params: Record<string, string> = { limit: String(opts.limit) };
        if (opts.before) params.before = opts.before;
        if (opts.after) params.after = opts.after;
        const got = await page(params);
        await printAll(got);
        // Where to go from here, for a person walking through history.
        if (!opts.json && !opts.follow && got.length > 0) {
          const hints: string[] = [];
          const peer = opts.peer
            ? ` --peer ${shellWord(opts.peer)}`
            : opts.group
            ? ` --group ${shellWord(opts.group)}`
            : "";
          if (got.length === opts.limit || opts.after) {
            hints.push(`older: lanchat inbox${peer} --before ${got[0]!.cursor}`);
          }
          if (opts.before || (opts.after && got.length === opts.limit)) {
            hints.push(`newer: lanchat inbox${peer} --after ${got.at(-1)!.cursor}`);
          }
          if (hints.length) console.error(`(${printableLine(hints.join("; "))})`);
        }
      };
      if (!opts.follow) {
        await first();
        return await read.flush();
      }
      const ctrl = new AbortController();
      Deno.addSignalListener("SIGINT", () => ctrl.abort());
      // Subscribe first, then print history, so nothing falls between the two;
      // after a daemon restart, what arrived meanwhile comes from history.
      await followEventsForever(base, (type, data) => {
        // New messages both ways, as history shows them: received, and sent (or queued) from here.
        const m = data as MessageJson;
        if (type === "message" || type === "sent" || type === "queued") print(m);
        // One of yours already printed went further: a short line says so (--json: as before, the events do).
        const step = type === "sent" || type === "delivered" || type === "read" || type === "failed";
        if (step && !opts.json && m?.peer && m.cursor <= lastCursor && wanted(m) && states.advance(m)) {
          console.log(stateLine(m, true));
        }
        if (type.startsWith("transfer-")) offers.update(data as TransferJson);
        // Files an IP Messenger user sent with a message (printed before its transfer was made): how to take them.
        const t = data as TransferJson;
        if (type === "transfer-offered" && !opts.json && t?.direction === "in" && t.message && !groupId) {
          if (!peerId || t.peer?.id === peerId) console.log(offeredLine(t));
        }
        // One already printed edited or deleted: printed again as it now is (--json: the message, exact).
        if (type === "message-updated") {
          const m = (data as { message?: MessageJson }).message;
          if (!m || m.cursor > lastCursor) return;
          if (peerId && (m.peer.id !== peerId || m.group)) return;
          if (groupId && m.group?.id !== groupId) return;
          console.log(opts.json ? JSON.stringify(m) : updateLine(m));
        }
      }, {
        signal: ctrl.signal,
        onOpen: async (reconnect) => {
          if (reconnect) console.error("(reconnected to the daemon)");
          await (reconnect ? catchUp(lastCursor) : first());
        },
        onLost: () => console.error("(the daemon went away: reconnecting…)"),
      });
    });
}
