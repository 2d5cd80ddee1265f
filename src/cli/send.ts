/** `lanchat send PEER TEXT`: send one message and say whether it was delivered. */
import type { Command } from "commander";
import type { MessageJson } from "../api/types.ts";
import { daemonUrl, followEvents, request } from "./client.ts";
import { MAX_BATCH, MAX_BODY_BYTES } from "../api/http.ts";
import { EXIT, httpOption, outcome, shellWord, UsageError, waitOption } from "./options.ts";
import { printableLine } from "../common/printable.ts";
import { MAX_TEXT_BYTES } from "../wire/mod.ts";
import { MACHINE_LINE } from "../protocol/machine_line.ts";
import { sizeWords } from "./api_words.ts";
import { encodingOption, readStdinText, textOrStdin } from "./text_input.ts";

/**
 * Reads all of standard input as text: strict UTF-8 (bytes that are not are
 * refused with where, exit 2), or from `encoding` (`--encoding`).
 */
export function readStdin(encoding?: string): Promise<string> {
  return readStdinText(encoding);
}

/**
 * A message's text as typed, checked before the daemon is asked: empty, or
 * over what one message carries (then: send it as a file), is a usage
 * error (exit 2).
 */
export function checkMessageText(text: string, peer: string): string {
  if (text.trim() === "") throw new UsageError("The message is empty: nothing to send");
  if (text.includes(MACHINE_LINE)) {
    throw new UsageError(
      'The message holds a line lanchat keeps for itself (U+0001 "lanchat-": a file offer, an automatic reply); ' +
        `offer files with lanchat send-file ${shellWord(peer)} FILE`,
    );
  }
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_TEXT_BYTES) {
    throw new UsageError(
      `The message is ${sizeWords(bytes)}; the limit is ${sizeWords(MAX_TEXT_BYTES)}: send it as a file: ` +
        `lanchat send-file ${shellWord(peer)} FILE`,
    );
  }
  return text;
}

/** The line `send` prints for a message and the exit code it implies. */
export function describeOutcome(m: MessageJson & { online?: boolean }): [string, number] {
  const name = printableLine(m.peer.name);
  if (m.recipients) {
    // Written to a group: how far it got with each member.
    const n = (s: string) => m.recipients!.filter((r) => r.status === s).length;
    const all = m.recipients.length;
    const line = `@${name}: delivered to ${n("delivered")} of ${all}` +
      (n("queued") ? `, queued for ${n("queued")} offline` : "") +
      (n("sent") ? `, ${n("sent")} not acknowledged yet` : "") +
      (n("failed") ? `, refused by ${n("failed")}` : "");
    return [line, n("delivered") === all ? EXIT.ok : n("failed") ? EXIT.error : EXIT.queued];
  }
  switch (m.status) {
    case "delivered":
      return [`delivered to ${name} in ${formatMs(m.rttMs ?? 0)}`, EXIT.ok];
    case "failed":
      return [`failed: ${name} refused it (${printableLine(m.error ?? "no reason")})`, EXIT.error];
    default:
      return m.online === false || m.status === "queued"
        ? [`queued for ${name}: will be delivered when it is back`, EXIT.queued]
        : [`sent to ${name}, not acknowledged yet: will keep trying`, EXIT.queued];
  }
}

function formatMs(ms: number): string {
  return ms < 10 ? `${Math.max(0, Math.round(ms * 10) / 10)} ms` : `${Math.round(ms)} ms`;
}

export function registerSend(program: Command): void {
  program.command("send")
    .description("Send a message to a peer; exit 0 when delivered, 75 when queued")
    .argument("<peer>", "node id, id prefix, name, user or address; @NAME for a group")
    .argument("<text>", 'the message; "-" reads it from standard input')
    .addOption(waitOption("how long to wait for delivery", 5))
    .option("--json", "print the message as JSON")
    .option("--lines", 'with "-": send each non-empty line of standard input as its own message')
    .option("--sealed", "to an IP Messenger user: shown sealed until opened, and you learn when it is")
    .option("--reply <id>", "answer this message of the conversation (its id, or its first 8 or more hex digits)")
    .addOption(encodingOption())
    .addOption(httpOption())
    .action(async (
      peer: string,
      text: string,
      opts: {
        wait: number;
        json?: boolean;
        lines?: boolean;
        sealed?: boolean;
        reply?: string;
        encoding?: string;
        http?: string;
      },
      cmd: Command,
    ) => {
      if (opts.sealed && (opts.lines || peer.startsWith("@"))) {
        cmd.error("error: --sealed sends one message to one IP Messenger user");
      }
      if (opts.reply !== undefined && (opts.lines || opts.sealed)) {
        cmd.error("error: --reply answers with one message: not with --lines or --sealed");
      }
      if (opts.lines) {
        if (text !== "-") cmd.error('error: --lines reads standard input: pass "-" as the text');
        if (peer.startsWith("@")) cmd.error("error: --lines sends to a peer; to a group, send the text as one message");
        const lines = (await readStdin(opts.encoding)).split(/\r?\n/).filter((l) => l.trim() !== "");
        if (lines.length === 0) cmd.error("error: standard input has no line to send");
        for (const line of lines) checkMessageText(line, peer);
        await sendLines(daemonUrl(opts.http), peer, lines, opts);
        return;
      }
      const body = checkMessageText(await textOrStdin(text, opts.encoding), peer);
      const { body: m } = await request<MessageJson & { online: boolean }>(
        daemonUrl(opts.http),
        `/messages?wait=${opts.wait}`,
        {
          method: "POST",
          body: {
            to: peer,
            text: body,
            ...(opts.sealed ? { sealed: true } : {}),
            ...(opts.reply !== undefined ? { replyTo: opts.reply } : {}),
          },
          timeoutMs: opts.wait * 1000 + 5000,
        },
      );
      const [line, code] = describeOutcome(m);
      console.log(opts.json ? JSON.stringify(m, null, 2) : line);
      outcome.code = code;
    });
}

/**
 * Sends `lines` to `peer` as separate messages, in order, in as few
 * requests as the API's batch limits allow (each batch is stored under one
 * commit), then waits up to `--wait` in all (not per batch) for them to be
 * delivered, following the daemon's events. Prints one line of totals (or
 * the messages as JSON); exit 0 when all were delivered, 75 when some wait,
 * 1 when some failed.
 */
async function sendLines(
  base: string,
  peer: string,
  lines: string[],
  opts: { wait: number; json?: boolean },
): Promise<void> {
  type Result = MessageJson & { online?: boolean; error?: string };
  const deadline = Date.now() + opts.wait * 1000;
  // Follow events first, so that no delivery falls between a batch's answer and the wait.
  const settled = new Map<string, MessageJson>();
  let pending = new Set<string>();
  let allSettled: (() => void) | undefined;
  const ctrl = new AbortController();
  let opened!: () => void;
  const open = new Promise<void>((r) => opened = r);
  const follow = opts.wait > 0
    ? followEvents(base, (type, data) => {
      if (type !== "delivered" && type !== "failed") return;
      const m = data as MessageJson;
      settled.set(m.id, m);
      if (pending.delete(m.id) && pending.size === 0) allSettled?.();
    }, { signal: ctrl.signal, onOpen: opened }).catch(() => {})
    : Promise.resolve();
  if (opts.wait > 0) await Promise.race([open, follow]);
  const all: Result[] = [];
  const encoder = new TextEncoder();
  try {
    for (let i = 0; i < lines.length;) {
      const batch: { to: string; text: string }[] = [];
      let bytes = 64;
      while (i < lines.length && batch.length < MAX_BATCH) {
        const size = encoder.encode(JSON.stringify({ to: peer, text: lines[i] })).length + 1;
        if (batch.length > 0 && bytes + size > MAX_BODY_BYTES) break;
        batch.push({ to: peer, text: lines[i++]! });
        bytes += size;
      }
      const { body } = await request<{ messages: Result[] }>(
        base,
        "/messages?wait=0",
        { method: "POST", body: { messages: batch }, timeoutMs: 30_000 },
      );
      all.push(...body.messages);
    }
    pending = new Set(
      all.filter((m) => !m.error && m.online !== false && m.status === "sent" && !settled.has(m.id)).map((m) => m.id),
    );
    if (pending.size > 0 && Date.now() < deadline) {
      await Promise.race([
        new Promise<void>((r) => allSettled = r),
        new Promise<void>((r) => setTimeout(r, deadline - Date.now())),
      ]);
    }
  } finally {
    ctrl.abort();
    await follow;
  }
  const final = all.map((m) => (m.error ? m : { ...m, ...settled.get(m.id) }) as Result);
  const count = (s: string) => final.filter((m) => !m.error && m.status === s).length;
  const notStored = final.filter((m) => m.error).length;
  const failed = count("failed") + notStored;
  if (opts.json) console.log(JSON.stringify(final, null, 2));
  else {
    const name = printableLine(final.find((m) => m.peer)?.peer.name ?? peer);
    console.log(
      `${final.length} messages to ${name}: ${count("delivered")} delivered, ${
        count("sent")
      } sent and not acknowledged ` +
        `yet, ${count("queued")} queued, ${failed} failed`,
    );
  }
  outcome.code = failed > 0 ? EXIT.error : final.every((m) => m.status === "delivered") ? EXIT.ok : EXIT.queued;
}
