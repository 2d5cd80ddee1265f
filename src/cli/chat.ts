/**
 * `lanchat chat PEER`: a full-duplex conversation. Lines typed (or piped) go
 * out as messages; messages from the peer print as they arrive. When the
 * daemon restarts, it reconnects: what the peer sent meanwhile is printed
 * from history, and lines typed meanwhile are sent once it is back. At the
 * end of input it waits a little for the last messages to be delivered.
 *
 * It opens with the last few messages of the conversation (`--last`), yours
 * with their state; each later step of a message of yours (sent, `✓`
 * delivered, `✓✓` read, `!` not delivered) is a short line of its own, in a
 * terminal as in a pipe: nothing printed is redrawn, so a line being typed
 * is never overwritten and a log of the session reads the same.
 */
import type { Command } from "commander";
import type { MessageJson, TransferJson } from "../api/types.ts";
import {
  ApiError,
  daemonUrl,
  followEventsForever,
  getJson,
  messageBody,
  messageText,
  NoDaemonError,
  readMarker,
  replyLine,
  request,
  updateLine,
} from "./client.ts";
import { EXIT, httpOption, outcome } from "./options.ts";
import { printableLine } from "../common/printable.ts";
import { resolveGroup } from "./group.ts";
import {
  marksTail,
  offeredLine,
  shownGroup,
  shownName,
  ShownStates,
  stateLine,
  stateMark,
  stateRank,
} from "./marks.ts";
import { OfferTransfers } from "./offers.ts";
import { InvalidArgumentError } from "commander";
import { encodingOption, inputLines } from "./text_input.ts";
import { apiErrorWords } from "./api_words.ts";

const DRAIN_MS = 5000;

/** How many of the last messages `chat` shows when it opens, by default. */
export const CHAT_LAST = 10;

/** `--last N`: 0 (none) to 1000. */
function parseLast(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) > 1000) {
    throw new InvalidArgumentError(`"${s}" is not a whole number from 0 to 1000.`);
  }
  return Number(s);
}

/** A message of yours as the conversation shows it: `you: text  ✓✓`. */
function ownLine(m: MessageJson): string {
  const { symbol, words } = stateMark(m);
  if (m.editedAt !== undefined && m.deletedAt === undefined) words.push("edited");
  return `you: ${(replyLine(m) + messageText(m)).replaceAll("\n", "\n    ")}${marksTail(symbol, words)}`;
}

export function registerChat(program: Command): void {
  program.command("chat")
    .description("Talk with a peer: typed lines go out, its messages print as they arrive (Ctrl-D ends)")
    .argument("<peer>", "node id, id prefix, name, user or address; @NAME for a group")
    .option(
      "--last <n>",
      `show the last N messages of the conversation when it opens (0: none; default ${CHAT_LAST})`,
      parseLast,
      CHAT_LAST,
    )
    .addOption(encodingOption())
    .addOption(httpOption())
    .action(async (query: string, opts: { http?: string; last: number; encoding?: string }) => {
      const base = daemonUrl(opts.http);
      // A group: its messages, from any member, are the conversation; what is typed goes to all of them.
      const group = query.startsWith("@") ? await resolveGroup(base, query) : undefined;
      const peer = group
        ? { id: group.id, name: `@${group.name}`, online: group.members.some((m) => m.online) }
        : (await request<{ id: string; name: string; online: boolean }>(
          base,
          `/resolve?peer=${encodeURIComponent(query)}`,
        )).body;
      /** Whether a message is of this conversation. */
      const ours = (m: MessageJson) => group ? m.group?.id === group.id : m.peer?.id === peer.id && !m.group;
      const enc = new TextEncoder();
      const out = (s: string) => Deno.stdout.writeSync(enc.encode(s + "\n"));
      const name = group ? `@${shownGroup(group.name)}` : shownName(peer.name);
      out(
        group
          ? `chatting in ${name} with ${
            group.members.filter((m) => !m.self).map((m) => shownName(m.name)).join(", ")
          }; Ctrl-D ends`
          : `chatting with ${name} (${peer.online ? "online" : "offline: messages will wait"}); Ctrl-D ends`,
      );
      const unacked = new Set<string>();
      // The "delivered" event can come in before the POST that sent the message
      // has answered (the ack races the HTTP reply): remember it for that case.
      const settled = new Set<string>();
      let drained: (() => void) | undefined;
      // The highest cursor seen: what the peer sent while the daemon was away
      // is fetched from history above it on reconnect, nothing twice.
      let lastCursor = 0;
      // What is shown in the conversation has been read: the peer gets a read receipt.
      const read = readMarker(base);
      // File offers with their transfer (`lanchat accept ID`); your messages' states, told as they change.
      const offers = new OfferTransfers(base);
      const states = new ShownStates();
      // Steps of messages not (yet) shown here: an ack can come before the POST that sent it answers.
      const early = new Map<string, MessageJson>();
      /** A message of the conversation: the peer's always; yours only from history when it opens (`mine`). */
      const show = (m: MessageJson, mine = false) => {
        if (m.cursor <= lastCursor) {
          // Seen before (a page read again after a reconnect): only a step of yours is news.
          if (m.direction === "out" && states.advance(m)) out(stateLine(m));
          return;
        }
        lastCursor = m.cursor;
        if (m.direction === "in") {
          out(`${shownName(m.peer.name)}: ${messageBody(m)}${offers.hint(m)}`);
          read.mark(m);
        } else if (mine) {
          out(`${ownLine(m)}${offers.hint(m)}`);
          states.shown(m);
        } else if (states.advance(m)) out(stateLine(m));
      };
      /** A step of a message of yours (an event, or the POST's answer): a line once, in order. */
      const step = (m: MessageJson) => {
        if (states.advance(m)) return out(stateLine(m));
        if (states.has(m.id)) return;
        // Not delivered, and not typed here (or its POST has not answered yet): said at once, as it always was.
        if (m.status === "failed") {
          states.shown(m);
          return out(stateLine(m));
        }
        const had = early.get(m.id);
        if (!had || stateRank(m) > stateRank(had)) early.set(m.id, m);
        if (early.size > 1000) early.delete(early.keys().next().value!);
      };
      // Lines typed while the daemon is away, sent in order once it is back.
      const backlog: string[] = [];
      let connected = true;
      let reconnected: (() => void) | undefined;
      const ctrl = new AbortController();
      let opened!: () => void;
      const open = new Promise<void>((r) => opened = r);
      let failed = false;
      const post = async (line: string): Promise<boolean> => {
        try {
          const { body: m } = await request<MessageJson & { online: boolean }>(base, "/messages", {
            method: "POST",
            body: group ? { group: group.id, text: line } : { to: peer.id, text: line },
          });
          if (m.status !== "delivered" && m.status !== "failed" && !settled.delete(m.id)) unacked.add(m.id);
          if (group && m.status === "queued") out("(queued: no member is online)");
          else if (!group && !m.online) out(`(queued: ${name} is offline)`);
          // As it stands now: delivered already, or further on by an event that came first (a failure: told).
          if (!states.has(m.id)) {
            if (stateRank(m) >= 3) out(stateLine(m));
            states.shown(m);
          }
          const ahead = early.get(m.id);
          early.delete(m.id);
          if (ahead) step(ahead);
          return true;
        } catch (e) {
          if (e instanceof NoDaemonError) return false;
          failed = true;
          const why = e instanceof ApiError ? apiErrorWords(e, ["chat", query]).lines[0] : (e as Error).message;
          out(`(not sent: ${printableLine(why ?? "")})`);
          return true;
        }
      };
      const follow = followEventsForever(base, (type, data) => {
        if (type === "message-updated") {
          // An edit or a deletion of a message already shown here.
          const changed = (data as { message?: MessageJson }).message;
          if (changed?.peer && ours(changed) && changed.cursor <= lastCursor) out(updateLine(changed));
          return;
        }
        if (type.startsWith("transfer-")) {
          // Files an IP Messenger user sent with a message (shown before its transfer was made): how to take them.
          const t = data as TransferJson;
          if (type === "transfer-offered" && !group && t?.direction === "in" && t.message && t.peer?.id === peer.id) {
            out(offeredLine(t));
          }
          return offers.update(t);
        }
        const m = data as MessageJson;
        if (!m?.peer || !ours(m)) return;
        if (type === "message") show(m);
        else if (
          m.direction === "out" && (type === "sent" || type === "read" || type === "delivered" || type === "failed")
        ) {
          step(m);
          if (type === "delivered" || type === "failed") {
            if (!unacked.delete(m.id)) settled.add(m.id);
            if (unacked.size === 0) drained?.();
          }
        }
      }, {
        signal: ctrl.signal,
        onOpen: async (reconnect) => {
          connected = true;
          if (!reconnect) {
            try {
              await lastFew();
            } finally {
              opened();
            }
            return;
          }
          out("(reconnected to the daemon)");
          // What came meanwhile: every page after the last message shown, and from the oldest of yours that may
          // have gone further (a receipt that came while the stream was down).
          const from = Math.min(lastCursor, (states.pendingFrom() ?? Infinity) - 1);
          for (let after = from;;) {
            const q = new URLSearchParams({
              [group ? "group" : "peer"]: peer.id,
              after: String(after),
              limit: "10000",
            });
            const got = await getJson<MessageJson[]>(base, `/messages?${q}`);
            await offers.load(got.filter((m) => m.cursor > lastCursor));
            for (const m of got) show(m);
            if (got.length < 10_000) break;
            after = got.at(-1)!.cursor;
          }
          while (backlog.length > 0 && await post(backlog[0]!)) backlog.shift();
          reconnected?.();
        },
        onLost: () => {
          connected = false;
          out("(the daemon went away: reconnecting…; lines you type now are sent when it is back)");
        },
      }).catch((e) => {
        if (!ctrl.signal.aborted) out(`(${printableLine((e as Error).message)})`);
      });
      /** The last few messages of the conversation, both ways, before anything new. */
      async function lastFew(): Promise<void> {
        if (opts.last === 0) return;
        const q = new URLSearchParams({ [group ? "group" : "peer"]: peer.id, limit: String(opts.last) });
        try {
          const got = await getJson<MessageJson[]>(base, `/messages?${q}`);
          await offers.load(got);
          for (const m of got) show(m, true);
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          out(`(the last messages cannot be shown: ${printableLine(e.message)})`);
        }
      }
      await Promise.race([open, follow]);
      // A line that is not UTF-8 (and no --encoding) is not sent: said, and the exit code is 2.
      for await (const line of inputLines(Deno.stdin.readable, opts.encoding, (why) => out(`(not sent: ${why})`))) {
        if (line.trim() === "") continue;
        if (!connected || backlog.length > 0 || !(await post(line))) {
          backlog.push(line);
          connected = false;
        }
      }
      const wait = (ms: number, until: (r: () => void) => void) =>
        Promise.race([new Promise<void>((r) => until(r)), new Promise<void>((r) => setTimeout(r, ms))]);
      if (backlog.length > 0) await wait(DRAIN_MS, (r) => reconnected = r);
      if (unacked.size > 0) await wait(DRAIN_MS, (r) => drained = r);
      ctrl.abort();
      await follow;
      if (backlog.length > 0) {
        out(`(${backlog.length} line${backlog.length > 1 ? "s" : ""} not sent: no daemon answers)`);
        outcome.code = EXIT.error;
      } else if (unacked.size > 0) {
        out(
          `(${unacked.size} message${
            unacked.size > 1 ? "s" : ""
          } not delivered yet: queued, will go when ${name} is back)`,
        );
        outcome.code = EXIT.queued;
      } else if (failed) {
        outcome.code = EXIT.error;
      }
    });
}
