/** `lanchat broadcast TEXT`: one reliable message to every peer online, with each outcome. */
import type { Command } from "commander";
import type { MessageJson } from "../api/types.ts";
import { daemonUrl, request } from "./client.ts";
import { EXIT, httpOption, outcome, waitOption } from "./options.ts";
import { checkMessageText, describeOutcome } from "./send.ts";
import { encodingOption, textOrStdin } from "./text_input.ts";

export function registerBroadcast(program: Command): void {
  program.command("broadcast")
    .description("Send a message to every peer online, each as its own reliable message")
    .argument("<text>", 'the message; "-" reads it from standard input')
    .addOption(waitOption("how long to wait for delivery", 5))
    .option("--json", "print the results as JSON")
    .addOption(encodingOption())
    .addOption(httpOption())
    .action(async (text: string, opts: { wait: number; json?: boolean; encoding?: string; http?: string }) => {
      const body = checkMessageText(await textOrStdin(text, opts.encoding), "PEER");
      const { body: r } = await request<{ peers: number; results: MessageJson[] }>(
        daemonUrl(opts.http),
        `/broadcast?wait=${opts.wait}`,
        { method: "POST", body: { text: body }, timeoutMs: opts.wait * 1000 + 5000 },
      );
      if (opts.json) console.log(JSON.stringify(r, null, 2));
      else if (r.peers === 0) console.log("No peers online: nothing sent.");
      let code: number = EXIT.ok;
      for (const m of r.results) {
        const [line, c] = describeOutcome({ ...m, online: true });
        if (!opts.json) console.log(line);
        code = Math.max(code, c);
      }
      outcome.code = code;
    });
}
