/**
 * The `lanchat` command: one commander program with a subcommand per file.
 * {@link run} returns the exit code instead of exiting, so tests can call it.
 *
 * Exit codes: 0 success (delivered), 1 error, 2 bad usage (unknown flag, bad
 * value), 3 no daemon answers, 75 accepted but not delivered yet (queued).
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { VERSION } from "../common/version.ts";
import { NoDaemonError } from "./client.ts";
import { registerDaemon } from "./daemon.ts";
import { ApiError } from "./client.ts";
import { registerBroadcast } from "./broadcast.ts";
import { registerChat } from "./chat.ts";
import { registerInbox } from "./inbox.ts";
import { registerSearch } from "./search.ts";
import { registerFiles } from "./files.ts";
import { registerPresence } from "./presence.ts";
import { registerGroup } from "./group.ts";
import { registerOpen } from "./open.ts";
import { registerKeygen } from "./keygen.ts";
import { EXIT, outcome, refuseEmpty, UsageError } from "./options.ts";
import { registerSend } from "./send.ts";
import { registerThread } from "./thread.ts";
import { registerPeers } from "./peers.ts";
import { registerStatus } from "./status.ts";
import { registerTrust } from "./trust.ts";
import { registerVerify } from "./verify.ts";
import { registerWeb } from "./web.ts";
import { registerService } from "./service.ts";
import { registerInstall } from "./install.ts";
import { registerCompletion } from "./completion.ts";
import { registerDoctor } from "./doctor.ts";
import { apiErrorWords } from "./api_words.ts";
import { checkedArgs } from "./text_input.ts";

/** Builds the program. */
export function buildProgram(): Command {
  const program = new Command("lanchat")
    .description("Find the other hosts on your LAN and message them from the command line.")
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      "\nExit codes: 0 ok (delivered), 1 error, 2 bad usage, 3 no daemon answers, 75 queued (not delivered yet).\nCommands other than daemon find it by --http, else $LANCHAT_HTTP, else 127.0.0.1:47476.",
    );
  registerDaemon(program);
  registerPeers(program);
  registerStatus(program);
  registerSend(program);
  registerThread(program);
  registerBroadcast(program);
  registerInbox(program);
  registerSearch(program);
  registerFiles(program);
  registerPresence(program);
  registerGroup(program);
  registerOpen(program);
  registerChat(program);
  registerKeygen(program);
  registerTrust(program);
  registerVerify(program);
  registerWeb(program);
  registerService(program);
  registerInstall(program);
  registerCompletion(program);
  registerDoctor(program);
  // An empty PEER, ID, GROUP or option value is a usage error (exit 2), said before the daemon is asked.
  program.hook("preAction", (_program, action) => refuseEmpty(action));
  program.exitOverride();
  for (const c of program.commands) {
    c.exitOverride();
    for (const sub of c.commands) sub.exitOverride();
  }
  return program;
}

/** Runs the CLI with `args` (without the program name); resolves to the exit code. */
export async function run(args: string[]): Promise<number> {
  const program = buildProgram();
  if (args.length === 0) {
    program.outputHelp();
    return EXIT.usage;
  }
  outcome.code = EXIT.ok;
  try {
    // Arguments that are not UTF-8: refused with where (text_input.ts).
    args = await checkedArgs(args);
    await program.parseAsync(args, { from: "user" });
    return outcome.code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed the message (or the help / version).
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (e instanceof ApiError) {
      // The API's error as it came for scripts (--json), in the CLI's words for people.
      const { lines, code } = apiErrorWords(e, args);
      if (args.includes("--json")) console.error(JSON.stringify(e.body));
      else for (const [i, line] of lines.entries()) console.error(i === 0 ? `lanchat: ${line}` : line);
      return code;
    }
    if (e instanceof UsageError) {
      console.error(`lanchat: ${e.message}`);
      return EXIT.usage;
    }
    if (e instanceof NoDaemonError) {
      console.error(`lanchat: ${e.message}`);
      return EXIT.noDaemon;
    }
    console.error(`lanchat: ${(e as Error)?.message ?? String(e)}`);
    return EXIT.error;
  }
}
