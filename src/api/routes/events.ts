/**
 * The event stream: `GET /events`, Server-Sent Events of what the daemon
 * does (peers joining and leaving, messages and their delivery, groups,
 * transfers), at most {@link MAX_SSE_CLIENTS} at once, a client that stops
 * reading cut off past {@link MAX_SSE_BACKLOG_BYTES}.
 *
 * @module
 */
import type { DaemonEvent } from "../types.ts";
import { HttpError } from "../request.ts";
import type { Api } from "../api.ts";
import { Router } from "../router.ts";

/** Most Server-Sent Events clients at once. */
export const MAX_SSE_CLIENTS = 64;
/** Bytes of events queued for one event-stream client that does not read, before it is cut off. */
export const MAX_SSE_BACKLOG_BYTES = 4 * 1024 * 1024;

/** The SSE event name and data for a daemon event. */
export function sseEvent(api: Api, e: DaemonEvent): [string, unknown] | undefined {
  switch (e.type) {
    case "joined":
    case "restarted":
    case "left": {
      const p = e.peer;
      const a = p.addresses[0];
      return [`peer-${e.type}`, {
        id: p.id,
        name: p.name,
        hostname: p.hostname,
        address: a ? `${a.address}:${a.port}` : undefined,
        ...(e.type === "left" ? { reason: e.reason } : {}),
      }];
    }
    case "presence":
      return ["peer-presence", {
        id: e.peer.id,
        name: e.peer.name,
        presence: e.peer.presence ?? "online",
        ...(e.peer.note ? { note: e.peer.note } : {}),
      }];
    case "read":
    case "message":
    case "delivered":
    case "queued":
    case "sent":
    case "failed":
      // A member's copy of a group message is not history: its group message's event says what it did. An
      // edit or a deletion is not either: the message it changed comes as message-updated.
      if (e.message.copyOf || e.message.ref?.kind === "edit" || e.message.ref?.kind === "delete") return undefined;
      return [e.type, api.messageJson(e.message)];
    case "message-updated":
      return [e.type, { type: e.type, message: api.messageJson(e.message) }];
    case "group":
      return ["group", e.group];
    case "store-error":
      return ["error", { error: e.error }];
    case "transfer-offered":
    case "transfer-progress":
    case "transfer-done":
    case "transfer-failed":
    case "transfer-updated":
      return [e.type, e.transfer];
  }
}

/**
 * `GET /events`; `streams` holds a way to close each stream open (the status counts them, shutdown closes them),
 * `pages` those a web page opened: a request without the bearer token got past the access checks with the page's
 * cookie (a browser; the CLI sends the token). While one is open the daemon leaves notifications to the page.
 */
export function eventRoutes(api: Api, streams: Set<() => void>, pages = new Set<() => void>()): Router {
  return new Router()
    .get("/events", (req) => {
      const page = !req.headers.has("authorization");
      if (streams.size >= MAX_SSE_CLIENTS) {
        throw new HttpError(503, `Too many event streams open (${MAX_SSE_CLIENTS}); close one and retry`);
      }
      const enc = new TextEncoder();
      let off = () => {};
      let keepAlive: ReturnType<typeof setInterval> | undefined;
      let close = () => {};
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(enc.encode(": lanchat events\n\n"));
          off = api.onEvent((e) => {
            const ev = sseEvent(api, e);
            if (!ev) return;
            // A client that stops reading is cut off rather than let its
            // backlog grow without bound; it reconnects and pages history.
            if ((controller.desiredSize ?? 0) < -MAX_SSE_BACKLOG_BYTES) return close();
            try {
              controller.enqueue(enc.encode(`event: ${ev[0]}\ndata: ${JSON.stringify(ev[1])}\n\n`));
            } catch { /* stream closed */ }
          });
          keepAlive = setInterval(() => {
            try {
              controller.enqueue(enc.encode(": keep-alive\n\n"));
            } catch { /* stream closed */ }
          }, 15_000);
          close = () => {
            off();
            clearInterval(keepAlive);
            streams.delete(close);
            pages.delete(close);
            try {
              controller.close();
            } catch { /* already closed */ }
          };
          streams.add(close);
          if (page) pages.add(close);
        },
        cancel() {
          close();
        },
      }, { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength });
      return new Response(body, {
        headers: {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-store",
          "x-accel-buffering": "no",
        },
      });
    });
}
