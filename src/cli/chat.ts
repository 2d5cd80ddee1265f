/**
 * `lanchat chat PEER`: a full-duplex conversation. Lines typed (or piped) go
 * out as messages; messages from the peer print as they arrive. At the end
 * of input it waits a little for the last messages to be delivered.
 */
import type { Command } from "commander";
import type { MessageJson } from "../daemon.ts";
import { ApiError, daemonUrl, followEvents, request } from "./client.ts";
import { EXIT, outcome } from "./options.ts";
import { printable, printableLine } from "../printable.ts";

const DRAIN_MS = 5000;

export function registerChat(program: Command): void {
  program.command("chat")
    .description("Talk with a peer: typed lines go out, its messages print as they arrive (Ctrl-D ends)")
    .argument("<peer>", "node id, id prefix, name, user or address")
    .option("--http <host:port>", "the daemon's HTTP endpoint (default: $LANCHAT_HTTP or 127.0.0.1:47476)")
    .action(async (query: string, opts: { http?: string }) => {
      const base = daemonUrl(opts.http);
      const peer = (await request<{ id: string; name: string; online: boolean }>(
        base,
        `/resolve?peer=${encodeURIComponent(query)}`,
      )).body;
      const enc = new TextEncoder();
      const out = (s: string) => Deno.stdout.writeSync(enc.encode(s + "\n"));
      const name = printableLine(peer.name);
      out(`chatting with ${name} (${peer.online ? "online" : "offline: messages will wait"}); Ctrl-D ends`);
      const unacked = new Set<string>();
      // The "delivered" event can come in before the POST that sent the message
      // has answered (the ack races the HTTP reply): remember it for that case.
      const settled = new Set<string>();
      let drained: (() => void) | undefined;
      const ctrl = new AbortController();
      let opened!: () => void;
      const open = new Promise<void>((r) => opened = r);
      const follow = followEvents(base, (type, data) => {
        const m = data as MessageJson;
        if (m?.peer?.id !== peer.id) return;
        if (type === "message") out(`${printableLine(m.peer.name)}: ${printable(m.text)}`);
        else if (type === "delivered" || type === "failed") {
          if (type === "failed") out(`(not delivered: ${printableLine(m.error ?? "refused")}) ${printable(m.text)}`);
          if (!unacked.delete(m.id)) settled.add(m.id);
          if (unacked.size === 0) drained?.();
        }
      }, { signal: ctrl.signal, onOpen: opened }).catch((e) => {
        if (!ctrl.signal.aborted) out(`(${(e as Error).message})`);
      });
      await Promise.race([open, follow]);
      let failed = false;
      for await (const line of Deno.stdin.readable.pipeThrough(new TextDecoderStream()).pipeThrough(lines())) {
        if (line.trim() === "") continue;
        try {
          const { body: m } = await request<MessageJson & { online: boolean }>(base, "/messages", {
            method: "POST",
            body: { to: peer.id, text: line },
          });
          if (m.status !== "delivered" && m.status !== "failed" && !settled.delete(m.id)) unacked.add(m.id);
          if (!m.online) out(`(queued: ${name} is offline)`);
        } catch (e) {
          failed = true;
          out(`(not sent: ${e instanceof ApiError ? e.message : (e as Error).message})`);
        }
      }
      if (unacked.size > 0) {
        await Promise.race([
          new Promise<void>((r) => drained = r),
          new Promise<void>((r) => setTimeout(r, DRAIN_MS)),
        ]);
      }
      ctrl.abort();
      await follow;
      if (unacked.size > 0) {
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

/** Splits a text stream into lines (without their line ends). */
function lines(): TransformStream<string, string> {
  let buf = "";
  return new TransformStream({
    transform(chunk, controller) {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        controller.enqueue(buf.slice(0, i).replace(/\r$/, ""));
        buf = buf.slice(i + 1);
      }
    },
    flush(controller) {
      if (buf) controller.enqueue(buf);
    },
  });
}
