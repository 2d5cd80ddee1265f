/**
 * The daemon's own state: `GET /status` (this node, its counters, the event
 * streams open), `GET /healthz` (for a supervisor; needs no token),
 * `GET /metrics` (Prometheus text), and `POST /memory/compact`.
 *
 * @module
 */
import { HttpError, json, jsonError } from "../request.ts";
import type { Api } from "../api.ts";
import { Router } from "../router.ts";

/** `/status`, `/healthz`, `/metrics`, `/memory/compact`; `streams`: the event streams open (their count is in the status). */
export function statusRoutes(api: Api, streams: ReadonlySet<unknown>): Router {
  return new Router()
    // Event streams open and the listeners they hold: both go back to zero when their clients go.
    .get("/status", () =>
      json({
        ...api.status() as Record<string, unknown>,
        eventStreams: { open: streams.size, listeners: api.eventListeners?.() ?? streams.size },
      }))
    .get("/healthz", () => {
      const problems = api.problems?.() ?? [];
      return new Response(problems.length ? problems.map((p) => `${p}\n`).join("") : "ok\n", {
        status: problems.length ? 503 : 200,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    })
    .get(
      "/metrics",
      () => new Response(api.metrics(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } }),
    )
    .post("/memory/compact", () => {
      const r = api.compactMemory();
      if (r === undefined) {
        throw new HttpError(
          501,
          "This daemon runs without V8's gc exposed (--v8-flags=--expose-gc): it cannot compact",
        );
      }
      if (!r.ok) {
        const s = Math.ceil(r.retryAfterMs / 1000);
        return jsonError(429, `Compacted less than 10 s ago; try again in ${s} s`, { "retry-after": String(s) });
      }
      return json((api.status() as { memory?: unknown }).memory ?? {});
    });
}
