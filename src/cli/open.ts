/** `lanchat open ID`: open a sealed message (IP Messenger's): print it, and its sender learns it was opened. */
import type { Command } from "commander";
import type { MessageJson } from "../api/types.ts";
import { daemonUrl, formatMessage, request } from "./client.ts";
import { httpOption } from "./options.ts";

export function registerOpen(program: Command): void {
  program.command("open")
    .description("Open a sealed message from an IP Messenger user (its sender is told); inbox shows its id")
    .argument("<id>", "the message's id, or its first 8 or more hex digits")
    .option("--json", "print the message as JSON")
    .addOption(httpOption())
    .action(async (id: string, opts: { json?: boolean; http?: string }) => {
      const { body } = await request<MessageJson>(daemonUrl(opts.http), "/messages/open", {
        method: "POST",
        body: { id },
      });
      console.log(opts.json ? JSON.stringify(body, null, 2) : formatMessage(body));
    });
}
