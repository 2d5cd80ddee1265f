/**
 * The `lanchat` command: one commander program with a subcommand per file.
 * {@link run} returns the exit code instead of exiting, so tests can call it.
 *
 * Exit codes: 0 success, 1 error, 2 bad usage (unknown flag, bad value),
 * 3 no daemon answers.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { VERSION } from "../daemon.ts";
import { NoDaemonError } from "./client.ts";
import { registerDaemon } from "./daemon.ts";
import { EXIT } from "./options.ts";
import { registerPeers } from "./peers.ts";
import { registerStatus } from "./status.ts";

/** Builds the program. */
export function buildProgram(): Command {
  const program = new Command("lanchat")
    .description("Find the other hosts on your LAN and message them from the command line.")
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      "\nExit codes: 0 ok, 1 error, 2 bad usage, 3 no daemon answers.\nRead commands find the daemon by --http, else $LANCHAT_HTTP, else 127.0.0.1:47476.",
    );
  registerDaemon(program);
  registerPeers(program);
  registerStatus(program);
  program.exitOverride();
  for (const c of program.commands) c.exitOverride();
  return program;
}

/** Runs the CLI with `args` (without the program name); resolves to the exit code. */
export async function run(args: string[]): Promise<number> {
  const program = buildProgram();
  if (args.length === 0) {
    program.outputHelp();
    return EXIT.usage;
  }
  try {
    await program.parseAsync(args, { from: "user" });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed the message (or the help / version).
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (e instanceof NoDaemonError) {
      console.error(`lanchat: ${e.message}`);
      return EXIT.noDaemon;
    }
    console.error(`lanchat: ${(e as Error)?.message ?? String(e)}`);
    return EXIT.error;
  }
}
