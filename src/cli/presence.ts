/** `lanchat away [NOTE]`, `lanchat busy [NOTE]`, `lanchat online`: this node's presence, told to every peer at once. */
import type { Command } from "commander";
import { printableLine } from "../common/printable.ts";
import { daemonUrl, request } from "./client.ts";
import { httpOption, UsageError } from "./options.ts";
import { MAX_NOTE_CHARS } from "../wire/packets.ts";

export function registerPresence(program: Command): void {
  for (
    const [name, help] of [
      ["away", 'Say you are away, with an optional note ("at lunch until 14:00"); peers see it at once'],
      ["busy", "Say you are busy (do not disturb), with an optional note"],
      ["online", "Say you are back"],
    ] as const
  ) {
    const cmd = program.command(name).description(help);
    if (name !== "online") cmd.argument("[note...]", "a short note, up to 100 characters");
    cmd.addOption(httpOption()).action(async (...args: unknown[]) => {
      const words = name === "online" ? [] : (args[0] as string[] | undefined) ?? [];
      const opts = args[name === "online" ? 0 : 1] as { http?: string };
      const note = words.join(" ").trim();
      // Checked here, before the daemon is asked: too long whatever the daemon holds (exit 2).
      const chars = [...note].length;
      if (chars > MAX_NOTE_CHARS) {
        throw new UsageError(`NOTE must be a text of at most ${MAX_NOTE_CHARS} characters (it is ${chars})`);
      }
      const { body } = await request<{ presence: string; note?: string }>(daemonUrl(opts.http), "/presence", {
        method: "PUT",
        body: { presence: name, ...(note ? { note } : {}) },
      });
      console.log(`You are ${body.presence}${body.note ? `: ${printableLine(body.note)}` : ""}`);
    });
  }
}
