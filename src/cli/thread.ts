/**
 * `lanchat edit ID TEXT` and `lanchat delete ID`: change a message you sent
 * (`lanchat inbox --ids` shows ids). The peer's history changes too; an IP
 * Messenger user or a previous version of lanchat gets the edit as a new
 * message, the deletion as one short line.
 */
import type { Command } from "commander";
import type { MessageJson } from "../api/types.ts";
import { daemonUrl, formatMessage, request } from "./client.ts";
import { httpOption, UsageError } from "./options.ts";
import { encodingOption, textOrStdin } from "./text_input.ts";

export function registerThread(program: Command): void {
  program.command("edit")
    .description("Replace the text of a message you sent, here and at its peer (or every member of its group)")
    .argument("<id>", "the message's id, or its first 8 or more hex digits (lanchat inbox --ids)")
    .argument("<text>", 'the new text; "-" reads it from standard input')
    .option("--json", "print the message as JSON")
    .addOption(encodingOption())
    .addOption(httpOption())
    .action(async (id: string, text: string, opts: { json?: boolean; encoding?: string; http?: string }) => {
      const body = await textOrStdin(text, opts.encoding);
      if (body.trim() === "") throw new UsageError("The new text is empty: to remove the message, lanchat delete ID");
      const { body: m } = await request<MessageJson>(daemonUrl(opts.http), `/messages/${encodeURIComponent(id)}/edit`, {
        method: "POST",
        body: { text: body },
      });
      console.log(opts.json ? JSON.stringify(m, null, 2) : formatMessage(m));
    });
  program.command("delete")
    .description("Delete a message you sent, here and at its peer (or every member of its group)")
    .argument("<id>", "the message's id, or its first 8 or more hex digits (lanchat inbox --ids)")
    .option("--json", "print the message as JSON")
    .addOption(httpOption())
    .action(async (id: string, opts: { json?: boolean; http?: string }) => {
      const { body: m } = await request<MessageJson>(
        daemonUrl(opts.http),
        `/messages/${encodeURIComponent(id)}/delete`,
        { method: "POST" },
      );
      console.log(opts.json ? JSON.stringify(m, null, 2) : formatMessage(m));
    });
}
