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
import { EXIT, outcome, UsageError } from "./options.ts";
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
import { printableLine } from "../common/printable.ts";

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
    await program.parseAsync(args, { from: "user" });
    return outcome.code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed the message (or the help / version).
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (e instanceof ApiError) {
      console.error(`lanchat: ${printableLine(e.message)}`);
      const candidates = e.body.candidates as
        | { name: string; hostname?: string; id: string; online: boolean; trust?: string }[]
        | undefined;
      if (candidates?.length) {
        console.error(e.status === 409 ? "Matching peers:" : "Known peers:");
        for (const c of candidates.slice(0, 20)) {
          const trust = c.trust ? `  key ${c.trust}` : "";
          // The host too: "bob" on host2 and a peer named "bob@host2" elsewhere are told apart by it.
          const host = c.hostname ? ` on ${printableLine(c.hostname)}` : "";
          console.error(
            `  ${printableLine(c.name)}${host}  ${c.id.slice(0, 12)}  ${c.online ? "online" : "offline"}${trust}`,
          );
        }
        if (e.status === 409) {
          console.error(`Name one by its full name or an id prefix, e.g. ${candidates[0]!.id.slice(0, 8)}`);
        }
      }
      return EXIT.error;
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
