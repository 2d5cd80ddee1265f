/** `lanchat search TEXT`: messages containing a text, newest first, a page at a time. */
import type { Command } from "commander";
import type { MessageJson } from "../api/types.ts";
import { daemonUrl, formatMessage, getJson, request } from "./client.ts";
import { httpOption, parseLimit, parsePlace, shellWord, UsageError } from "./options.ts";
import { printableLine } from "../common/printable.ts";

interface SearchJson {
  query: string;
  complete: boolean;
  note?: string;
  /** Where older results are looked for (`--before`), when there may be more. */
  next?: number;
  messages: MessageJson[];
}

export function registerSearch(program: Command): void {
  program.command("search")
    .description("Find messages containing a text (any language, CJK included), newest first")
    .argument("<text>", "what to look for (case is ignored for Latin letters)")
    .option("--peer <peer>", "only messages with this peer")
    .option(
      "--before <cursor|time>",
      "older results: those before this cursor (as the hint prints) or time",
      parsePlace,
    )
    .option("--limit <n>", "how many results", parseLimit, 20)
    .option("--json", "the answer of GET /messages/search")
    .addOption(httpOption())
    .action(async (
      text: string,
      opts: { peer?: string; before?: string; limit: number; json?: boolean; http?: string },
    ) => {
      if (text.trim() === "") throw new UsageError("The text to look for is empty: say what to search for");
      const base = daemonUrl(opts.http);
      const q = new URLSearchParams({ q: text, limit: String(opts.limit) });
      if (opts.peer) {
        q.set("peer", (await request<{ id: string }>(base, `/resolve?peer=${encodeURIComponent(opts.peer)}`)).body.id);
      }
      if (opts.before) q.set("before", opts.before);
      const r = await getJson<SearchJson>(base, `/messages/search?${q}`);
      if (opts.json) {
        console.log(JSON.stringify(r, null, 2));
        return;
      }
      if (r.messages.length === 0) console.log(`No message contains "${printableLine(text)}".`);
      for (const m of r.messages) console.log(`#${m.cursor}  ${formatMessage(m)}`);
      if (r.note) console.error(`(${r.note})`);
      // A full page, or the most one search looks at reached: where to go on.
      const next = r.next ?? (r.messages.length === opts.limit ? r.messages.at(-1)!.cursor : undefined);
      if (next !== undefined) {
        const peer = opts.peer ? ` --peer ${shellWord(opts.peer)}` : "";
        const more = `lanchat search ${shellWord(text)}${peer} --before ${next}`;
        console.error(`(more: ${printableLine(more)})`);
      }
    });
}
