/**
 * `lanchat chat PEER`: a full-duplex conversation. Lines typed (or piped) go
 * out as messages; messages from the peer print as they arrive. When the
 * daemon restarts, it reconnects: what the peer sent meanwhile is printed
 * from history, and lines typed meanwhile are sent once it is back. At the
 * end of input it waits a little for the last messages to be delivered.
 */
import type { Command } from "commander";
import type { MessageJson } from "../api/types.ts";
import {
  ApiError,
  daemonUrl,
  followEventsForever,
  getJson,
  messageBody,
  NoDaemonError,
  readMarker,
  request,
  updateLine,
} from "./client.ts";
import { EXIT, httpOption, outcome } from "./options.ts";
import { printable, printableLine } from "../common/printable.ts";
import { resolveGroup } from "./group.ts";
import { encodingOption, inputLines } from "./text_input.ts";
import { apiErrorWords } from "./api_words.ts";

const DRAIN_MS = 5000;

export function registerChat(program: Command): void {
  program.command("chat")
    .description("Talk with a peer: typed lines go out, its messages print as they arrive (Ctrl-D ends)")
    .argument("<peer>", "node id, id prefix, name, user or address; @NAME for a group")
    .addOption(encodingOption())
    .addOption(httpOption())
    .action(async (query: string, opts: { encoding?: string; http?: string }) => {
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
      const name = printableLine(peer.name);
      out(
        group
          ? `chatting in ${name} with ${
            group.members.filter((m) => !m.self).map((m) => printableLine(m.name)).join(", ")
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
      const show = (m: MessageJson) => {
        if (m.cursor <= lastCursor) return;
        lastCursor = m.cursor;
        if (m.direction === "in") {
          out(`${printableLine(m.peer.name)}: ${messageBody(m)}`);
          read.mark(m);
        }
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
        const m = data as MessageJson;
        if (!m?.peer || !ours(m)) return;
        if (type === "message") show(m);
        else if (type === "delivered" || type === "failed") {
          if (type === "failed") out(`(not delivered: ${printableLine(m.error ?? "refused")}) ${printable(m.text)}`);
          if (!unacked.delete(m.id)) settled.add(m.id);
          if (unacked.size === 0) drained?.();
        }
      }, {
        signal: ctrl.signal,
        onOpen: async (reconnect) => {
          connected = true;
          if (!reconnect) return opened();
          out("(reconnected to the daemon)");
          // What came meanwhile: every page after the last message shown.
          for (let after = lastCursor;;) {
            const q = new URLSearchParams({
              [group ? "group" : "peer"]: peer.id,
              after: String(after),
              limit: "10000",
            });
            const got = await getJson<MessageJson[]>(base, `/messages?${q}`);
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
