/**
 * The daemon's HTTP API. {@link createHandler} is a plain `Request → Response`
 * function over an {@link Api}, so tests call it without a socket;
 * the daemon serves it on its own HTTP/1.1 server (node/http_server.ts).
 * Here the routes of each resource (routes/) are mounted on one router
 * (router.ts), behind the checks every request passes (access.ts: Host,
 * token, Origin) and the web page (routes/page.ts).
 *
 * | route | answer | in routes/ |
 * |---|---|---|
 * | `GET /peers[?all=1]` | the roster (with `all`, then the peers seen before that are offline) | peers.ts |
 * | `GET /resolve?peer=Q` | the peer Q means, or 404 / 409 with candidates | peers.ts |
 * | `POST /trust` | `{peer}`: confirm that peer's pinned node key | peers.ts |
 * | `POST /forget` | `{peer}`: forget its pinned key (pinned anew on its next hello) | peers.ts |
 * | `GET /status` | this node and its counters | status.ts |
 * | `GET /healthz` | `ok`, or 503 with what is wrong (a damaged database), a line each; the only route open to all | status.ts |
 * | `GET /metrics` | Prometheus text | status.ts |
 * | `GET /diagnostics` | what `lanchat doctor` reads: interfaces, ports, per-peer reachability, clock skew | diagnostics.ts |
 * | `POST /memory/compact` | compact the heap now (at most every 10 s) | status.ts |
 * | `POST /messages[?wait=S]` | send `{to, text, sealed?, replyTo?}`, `{group, text, replyTo?}` or `{messages: [{to, text}, …]}` | messages.ts |
 * | `GET /messages?peer=&group=&before=&after=&limit=` | a page of history, oldest first (before/after: a cursor or a time) | messages.ts |
 * | `POST /messages/read` | `{peer}` or `{group}`, `upTo?`: mark what came in read | messages.ts |
 * | `POST /messages/open` | `{id}`: open a sealed message | messages.ts |
 * | `POST /messages/ID/edit` (`{text}`), `/delete` | change a message this node sent, here and at its peer | messages.ts |
 * | `POST /broadcast[?wait=S]` | send `{text}` to every peer online | messages.ts |
 * | `GET /messages/search?q=&peer=&before=&limit=` | messages containing q, newest first | search.ts |
 * | `GET /groups`, `POST /groups` | the groups; `{name, members}`: make one | groups.ts |
 * | `GET /groups/ID`, `POST /groups/ID/add` (`{members}`), `/leave` | a group; change who is in it | groups.ts |
 * | `POST /files` | `{to, paths}`: offer files and folders (paths on the daemon's host) | files.ts |
 * | `POST /files/upload?to=&name=` | offer the file in the body (the web page's uploads) | files.ts |
 * | `GET /transfers`, `GET /transfers/ID` | file transfers, both ways | files.ts |
 * | `POST /transfers/ID/accept` (`{dir}` optional), `/refuse`, `/cancel` | answer or end a transfer | files.ts |
 * | `GET /transfers/ID/files/N` | file N of a transfer: a picture inline with its type, anything else as bytes to save | files.ts |
 * | `PUT /presence` | `{presence: online|away|busy, note?}` | presence.ts |
 * | `GET /settings`, `PUT /settings` | settings kept across restarts (`{autoAcceptImages: {enabled, maxBytes}}`) | settings.ts |
 * | `GET /events` | Server-Sent Events | events.ts |
 * | `GET /`, `/app.js`, `/app.css`, … | the web page (web/ in the repository); without a session, `/` says how to get one | page.ts |
 * | `POST /session/link` | `{path, expiresInSeconds}`: a one-time link to open the page (`lanchat web`) | page.ts |
 * | `GET /session?code=` | a one-time code traded for the page's session cookie, then on to `/`; the code is the proof | page.ts |
 *
 * Every route but `/healthz` and the one-time link wants the token (or the
 * page's cookie): the API is its owner's (access.ts).
 *
 * @module
 */
import { Router } from "./router.ts";
import type { Api } from "./api.ts";
import { accessChecks, type HttpAccess } from "./access.ts";
import { page, sessionRoutes } from "./routes/page.ts";
import { peerRoutes } from "./routes/peers.ts";
import { statusRoutes } from "./routes/status.ts";
import { messageRoutes } from "./routes/messages.ts";
import { searchRoutes } from "./routes/search.ts";
import { groupRoutes } from "./routes/groups.ts";
import { fileRoutes } from "./routes/files.ts";
import { presenceRoutes } from "./routes/presence.ts";
import { eventRoutes } from "./routes/events.ts";
import { settingsRoutes } from "./routes/settings.ts";
import { diagnosticsRoutes } from "./routes/diagnostics.ts";

export { HttpError, jsonError, MAX_BODY_BYTES, MAX_WAIT_SECONDS, readBody } from "./request.ts";
export type { Api, FilesApi, GroupsApi } from "./api.ts";
export type { DiagnosticsJson } from "./diagnostics_json.ts";
export {
  crossOrigin,
  type HttpAccess,
  isLoopbackBind,
  LOOPBACK_HOSTS,
  SESSION_COOKIE,
  UNAUTHORIZED_TEXT,
  type WebAsset,
} from "./access.ts";
export { PAGE_CSP } from "./routes/page.ts";
export { CODE_TTL_MS, NO_SESSION_TEXT, OneTimeCodes } from "./web_link.ts";
export { MAX_BATCH } from "./routes/messages.ts";
export { MAX_SSE_BACKLOG_BYTES, MAX_SSE_CLIENTS, sseEvent } from "./routes/events.ts";

/** The request handler, and a way to end open event streams (on shutdown). */
export interface HandlerWithStreams {
  (req: Request): Promise<Response>;
  closeStreams(): void;
  /** Every route, as `METHOD /path` (`:name` for a parameter): what the access tests go through. */
  routes(): string[];
  /** Event streams open that a web page opened (with the page's cookie, not the CLI's bearer token). */
  pageStreams(): number;
}

/** Builds the request handler over an {@link Api}. */
export function createHandler(api: Api, access: HttpAccess = {}): HandlerWithStreams {
  // A way to close each event stream open: /status counts them, shutdown closes them.
  const streams = new Set<() => void>();
  const pages = new Set<() => void>();
  const app = new Router()
    .use(accessChecks(access))
    .use(page(access))
    .route(peerRoutes(api))
    .route(statusRoutes(api, streams))
    .route(messageRoutes(api))
    .route(searchRoutes(api))
    .route(groupRoutes(api))
    .route(fileRoutes(api))
    .route(presenceRoutes(api))
    .route(settingsRoutes(api))
    .route(diagnosticsRoutes(api))
    .route(eventRoutes(api, streams, pages))
    .route(sessionRoutes(access));
  const handler = ((req: Request) => app.handle(req)) as HandlerWithStreams;
  handler.closeStreams = () => {
    for (const close of [...streams]) close();
  };
  handler.routes = () => app.routes();
  handler.pageStreams = () => pages.size;
  return handler;
}
