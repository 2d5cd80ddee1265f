/** `lanchat send PEER TEXT`: send one message and say whether it was delivered. */
import type { Command } from "commander";
import type { MessageJson } from "../daemon.ts";
import { daemonUrl, request } from "./client.ts";
import { EXIT, outcome, parseWaitSeconds } from "./options.ts";

/** Reads all of standard input as text. */
export async function readStdin(): Promise<string> {
  const chunks: string[] = [];
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) chunks.push(chunk);
  return chunks.join("");
}

/** The line `send` prints for a message and the exit code it implies. */
export function describeOutcome(m: MessageJson & { online?: boolean }): [string, number] {
  switch (m.status) {
    case "delivered":
      return [`delivered to ${m.peer.name} in ${formatMs(m.rttMs ?? 0)}`, EXIT.ok];
    case "failed":
      return [`failed: ${m.peer.name} refused it (${m.error ?? "no reason"})`, EXIT.error];
    default:
      return m.online === false || m.status === "queued"
        ? [`queued for ${m.peer.name}: will be delivered when it is back`, EXIT.queued]
        : [`sent to ${m.peer.name}, not acknowledged yet: will keep trying`, EXIT.queued];
  }
}

function formatMs(ms: number): string {
  return ms < 10 ? `${Math.max(0, Math.round(ms * 10) / 10)} ms` : `${Math.round(ms)} ms`;
}

export function registerSend(program: Command): void {
  program.command("send")
    .description("Send a message to a peer; exit 0 when delivered, 75 when queued")
    .argument("<peer>", "node id, id prefix, name, user or address")
    .argument("<text>", 'the message; "-" reads it from standard input')
    .option("--wait <seconds>", "how long to wait for delivery", parseWaitSeconds, 5)
    .option("--json", "print the message as JSON")
    .option("--http <host:port>", "the daemon's HTTP endpoint (default: $LANCHAT_HTTP or 127.0.0.1:47476)")
    .action(async (peer: string, text: string, opts: { wait: number; json?: boolean; http?: string }) => {
      const body = text === "-" ? (await readStdin()).replace(/\n$/, "") : text;
      const { body: m } = await request<MessageJson & { online: boolean }>(
        daemonUrl(opts.http),
        `/messages?wait=${opts.wait}`,
        { method: "POST", body: { to: peer, text: body }, timeoutMs: opts.wait * 1000 + 5000 },
      );
      const [line, code] = describeOutcome(m);
      console.log(opts.json ? JSON.stringify(m, null, 2) : line);
      outcome.code = code;
    });
}
