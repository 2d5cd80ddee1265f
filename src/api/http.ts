/**
 * The daemon's HTTP API. {@link createHandler} is a plain `Request → Response`
 * function over an {@link Api}, so tests call it without a socket;
 * the daemon serves it on its own HTTP/1.1 server (node/http_server.ts).
 *
 * | route | answer |
 * |---|---|
 * | `GET /peers[?all=1]` | the roster (with `all`, then the peers seen before that are offline) |
 * | `GET /status` | this node and its counters |
 * | `GET /healthz` | `ok`, or 503 with what is wrong (a damaged database), a line each |
 * | `GET /metrics` | Prometheus text |
 * | `GET /resolve?peer=Q` | the peer Q means, or 404 / 409 with candidates |
 * | `POST /messages[?wait=S]` | send `{to, text}` |
 * | `GET /messages?peer=&before=&after=&limit=` | a page of history, oldest first (before/after: a cursor or a time) |
 * | `GET /messages/search?q=&peer=&before=&limit=` | messages containing q, newest first |
 * | `POST /broadcast[?wait=S]` | send `{text}` to every peer online |
 * | `PUT /presence` | `{presence: online|away|busy, note?}` |
 * | `GET /events` | Server-Sent Events |
 * | `GET /`, `/app.js`, `/app.css` | the web page (web/ in the repository) |
 * | `POST /trust` | `{peer}`: confirm that peer's pinned node key |
 * | `POST /memory/compact` | compact the heap now (at most every 10 s) |
 * | `POST /forget` | `{peer}`: forget its pinned key (pinned anew on its next hello) |
 * | `POST /files` | `{to, paths}`: offer files and folders (paths on the daemon's host) |
 * | `POST /files/upload?to=&name=` | offer the file in the body (the web page's uploads) |
 * | `GET /transfers`, `GET /transfers/ID` | file transfers, both ways |
 * | `POST /transfers/ID/accept` (`{dir}` optional), `/refuse`, `/cancel` | answer or end a transfer |
 *
 * @module
 */
import type { DaemonEvent, GroupJson, GroupLookup, MessageJson, PeerLookup, TransferJson } from "./types.ts";
import { MAX_NOTE_CHARS } from "../wire/packets.ts";
import { groupNameProblem } from "../protocol/groups.ts";
import {
  type HistoryQuery,
  MAX_PAGE,
  MAX_SEARCH_PAGE,
  type Pin,
  type SearchResult,
  SHORT_SEARCH_WINDOW,
  type StoredMessage,
  StoreError,
} from "../storage/store.ts";
import {
  checkText,
  HttpError,
  json,
  jsonError,
  jsonStream,
  MAX_BODY_BYTES,
  MAX_WAIT_SECONDS,
  parseWait,
  peerField,
  readBody,
  readJsonObject,
} from "./request.ts";

export { HttpError, jsonError, MAX_BODY_BYTES, MAX_WAIT_SECONDS, readBody };
import { createHash, timingSafeEqual } from "node:crypto";

/** Most Server-Sent Events clients at once. */
export const MAX_SSE_CLIENTS = 64;
/** Bytes of events queued for one event-stream client that does not read, before it is cut off. */
export const MAX_SSE_BACKLOG_BYTES = 4 * 1024 * 1024;
/** Most messages one `POST /messages` with a `messages` array may carry. */
export const MAX_BATCH = 1000;

/** What the HTTP layer needs from the daemon. */
export interface Api {
  /** The roster, already serialized as pretty JSON with a trailing newline, UTF-8. */
  peersBody(): Uint8Array;
  /** The roster, then peers seen before that are offline. */
  allPeers(): unknown[];
  status(): unknown;
  /** What is wrong that a user must act on, in words; none when healthy. */
  problems?(): string[];
  metrics(): string;
  lookupPeer(query: string): PeerLookup;
  /** Peers in the roster now. */
  onlinePeers(): { id: string; name: string }[];
  /** Stores a message to send; resolves once it is durable (committed). */
  sendMessage(to: string, text: string): Promise<StoredMessage>;
  /** Stores messages under one commit: per message, the stored message or why it was not stored. */
  sendMessages(items: { to: string; text: string }[]): Promise<(StoredMessage | Error)[]>;
  waitDelivered(id: string, timeoutMs: number): Promise<StoredMessage | undefined>;
  /** A page of history, oldest first (see Store.history). */
  history(q: HistoryQuery): StoredMessage[];
  /** The first and last cursor of the page `history(q)` would give (see Store.historyRange). */
  historyRange(q: HistoryQuery): { first: number; last: number; count: number } | undefined;
  /** The first cursor of what entered history at or after `time` (ms since the epoch). */
  cursorAt(time: number): number;
  /** Messages containing a text, newest first (see Store.search). */
  search(q: { text: string; peer?: string; before?: number; limit?: number }): SearchResult;
  messageJson(m: StoredMessage): MessageJson;
  onEvent(listener: (e: DaemonEvent) => void): () => void;
  /** Listeners {@link onEvent} holds now (each open event stream has one). */
  eventListeners?(): number;
  peerName(id: string): string;
  /** Confirms a peer's pinned key; throws RangeError when none is pinned. */
  trustPeer(id: string): Pin;
  /** Forgets a peer's pinned key; false when none was pinned. */
  forgetPeer(id: string): boolean;
  /** This node's presence: online, away or busy, with a note; sent to every peer at once. */
  setPresence(presence: "online" | "away" | "busy", note?: string): { presence: string; note?: string };
  /** Sends an IP Messenger user a sealed message; RangeError for a lanchat peer. */
  sendSealed(to: string, text: string): Promise<StoredMessage>;
  /** Opens a sealed message received (id or unique prefix): read, and its sender told; RangeError if none. */
  openSealed(id: string): StoredMessage;
  /** Marks what came from a peer read up to a cursor (default: all); a read receipt tells the peer. */
  markRead(peer: string, upTo?: number): number;
  /** File transfer; absent in a daemon without it. */
  files?: FilesApi;
  /** Group conversations. */
  groups: GroupsApi;
  /** Compacts the heap now; undefined when the daemon cannot (V8's gc not exposed). */
  compactMemory(): { ok: true } | { ok: false; retryAfterMs: number } | undefined;
}

/** Group conversations. RangeError: refused (400); StoreError: not stored (507). */
export interface GroupsApi {
  list(): GroupJson[];
  lookup(query: string): GroupLookup;
  create(name: string, members: string[]): Promise<{ group: GroupJson; message: StoredMessage }>;
  add(id: string, members: string[]): Promise<{ group: GroupJson; message: StoredMessage }>;
  leave(id: string): Promise<{ group: GroupJson; message: StoredMessage }>;
  send(id: string, text: string): Promise<StoredMessage>;
  markRead(id: string, upTo?: number): number;
}

/** File transfer, both ways. Errors are {@link HttpError}s with the status to answer. */
export interface FilesApi {
  /** Offers files and folders (paths on the daemon's host) to a peer; resolves once hashed and stored. */
  offer(to: string, paths: string[]): Promise<TransferJson>;
  /** Offers a file whose bytes come in the request (from the web page), staged in the data directory. */
  offerUpload(to: string, name: string, size: number, body: ReadableStream<Uint8Array>): Promise<TransferJson>;
  list(): TransferJson[];
  /** A transfer by id or id prefix. */
  get(id: string): TransferJson;
  accept(id: string, dir?: string): TransferJson;
  refuse(id: string): TransferJson;
  cancel(id: string): TransferJson;
}

type Handler = (req: Request, url: URL) => Response | Promise<Response>;
type Route = Partial<Record<"GET" | "POST" | "PUT", Handler>>;

/**
 * A place in history given as a query parameter: a cursor (a whole number)
 * or an ISO 8601 time, which becomes the first cursor at or after it
 * (`exact` false). Undefined when the parameter is absent.
 */
function place(api: Api, url: URL, name: string): { cursor: number; exact: boolean } | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === "") return undefined;
  if (/^\d+$/.test(v)) return { cursor: Number(v), exact: true };
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new HttpError(400, `${name} must be a cursor (a number) or an ISO 8601 time`);
  return { cursor: api.cursorAt(t), exact: false };
}

/** `limit`, 1 to `max`. */
function pageSize(url: URL, fallback: number, max = MAX_PAGE): number {
  const limit = url.searchParams.get("limit");
  if (limit === null) return fallback;
  if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > max) {
    throw new HttpError(400, `limit must be a whole number from 1 to ${max}`);
  }
  return Number(limit);
}

/** The request's URL with one query parameter set and the paging ones it replaces removed. */
function withParam(url: URL, name: string, value: string): string {
  const u = new URL(url);
  for (const p of ["before", "after", "since"]) u.searchParams.delete(p);
  u.searchParams.set(name, value);
  return `${u.pathname}${u.search}`;
}

/** A `Link` header to the pages before and after the page from cursor `first` to `last`. */
function pageLinks(url: URL, first: number, last: number): HeadersInit {
  return {
    link: `<${withParam(url, "before", String(first))}>; rel="prev", <${
      withParam(url, "after", String(last))
    }>; rel="next"`,
  };
}

/** Messages of a page read and sent this many at a time: a page of 10,000 never exists whole as objects or text. */
const PAGE_SLICE = 250;

/** Resolves a peer query or throws 404 / 409 with the candidates. */
function resolve(api: Api, query: string): { id: string; name: string; hostname: string; online: boolean } {
  const r = api.lookupPeer(query);
  if (r.ok) return r.peer;
  if (r.reason === "conflict") {
    throw new HttpError(
      409,
      `"${query}" is claimed by more than one node key (a possible impersonation); compare fingerprints ` +
        `(lanchat peers), then "lanchat trust ID" the right one, or address it by id`,
      { candidates: r.candidates },
    );
  }
  if (r.reason === "ambiguous") {
    throw new HttpError(409, `"${query}" matches ${r.candidates.length} peers; say which`, {
      candidates: r.candidates,
    });
  }
  throw new HttpError(404, `No peer matches "${query}"`, { candidates: r.candidates });
}

/** The group a user means (`@NAME`, a name, an id or id prefix), or a 404/409 saying why not. */
function resolveGroup(api: Api, query: string): GroupJson {
  const r = api.groups.lookup(query);
  if (r.ok) return r.group;
  if (r.reason === "ambiguous") {
    throw new HttpError(409, `"${query}" matches ${r.candidates.length} groups; say which (by id)`, {
      candidates: r.candidates,
    });
  }
  throw new HttpError(404, `No group matches "${query}" (see GET /groups)`);
}

/**
 * Runs a call that stores something (a message, a group), its errors as
 * HTTP errors: refused (RangeError) 400, not stored (StoreError) 507, saying
 * what was not.
 */
async function storing<T>(fn: () => Promise<T> | T, notStored = "nothing was stored or sent"): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof StoreError) throw new HttpError(507, `${e.message}; ${notStored}`);
    if (e instanceof RangeError) throw new HttpError(400, e.message);
    throw e;
  }
}

/** Field `members`: peers as a user names them, resolved to node ids. */
function memberIds(api: Api, raw: unknown): string[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.some((m) => typeof m !== "string" || m.trim() === "")) {
    throw new HttpError(400, 'Field "members" must be a list of peers (ids, names or addresses)');
  }
  return raw.map((m) => resolve(api, m as string).id);
}

/** A path segment percent-decoded (a group's name may be in it); as it came when that is malformed. */
function decodedSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** `/groups/ID` and `/groups/ID/add|leave`. */
function groupRoute(api: Api, query: string, action: string | undefined): Route {
  if (!action) return { GET: () => json(resolveGroup(api, query)) };
  return {
    POST: async (req) => {
      const g = resolveGroup(api, query);
      const members = action === "add" ? memberIds(api, (await readJsonObject(req)).members) : [];
      const r = await storing(() => action === "leave" ? api.groups.leave(g.id) : api.groups.add(g.id, members));
      return json({ group: r.group, message: api.messageJson(r.message) });
    },
  };
}

/**
 * Stores and sends a message (`send`: to a peer, sealed, to a group), then
 * waits up to `waitS` for its delivery: not at all when the peer is known to
 * be offline (it is queued, and says so at once).
 */
async function sendAndWait(api: Api, send: () => Promise<StoredMessage>, waitS: number, online = true) {
  const stored = await storing(send, "the message was not stored or sent");
  const done = waitS > 0 && online ? await api.waitDelivered(stored.id, waitS * 1000) : undefined;
  return done ?? stored;
}

/**
 * {@link sendAndWait}, answered: 200 delivered, 502 refused, 202 on its way;
 * `online` (a peer's, not a group's) in the answer when given.
 */
async function sendAndAnswer(api: Api, send: () => Promise<StoredMessage>, waitS: number, online?: boolean) {
  const m = await sendAndWait(api, send, waitS, online ?? true);
  // The status as the API shows it: a group's message adds up its members' copies.
  const out = { ...api.messageJson(m), ...(online === undefined ? {} : { online }) };
  return json(out, out.status === "delivered" ? 200 : out.status === "failed" ? 502 : 202);
}

/**
 * `POST /messages` with `{"messages": [{"to", "text"}, …]}`: every item is
 * checked and its peer resolved before anything is stored (a bad one is a
 * 4xx naming its index, and nothing is sent); then all are stored under one
 * commit. 202 with the stored messages (200 when `?wait=` saw all
 * delivered); an item that could not be stored carries `error`, and the
 * status is then 207 (507 when none was stored).
 */
async function sendBatch(api: Api, raw: unknown, waitS: number): Promise<Response> {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_BATCH) {
    throw new HttpError(400, `Field "messages" must be an array of 1 to ${MAX_BATCH} {"to", "text"} objects`);
  }
  const peers = new Map<string, ReturnType<typeof resolve>>();
  const items = raw.map((item, index) => {
    try {
      if (item === null || typeof item !== "object" || typeof item.to !== "string" || item.to.trim() === "") {
        throw new HttpError(400, 'Field "to" must name a peer (id, id prefix, name or address)');
      }
      const text = checkText(item.text);
      let peer = peers.get(item.to);
      if (!peer) peers.set(item.to, peer = resolve(api, item.to));
      return { to: peer.id, text, peer };
    } catch (e) {
      if (e instanceof HttpError) {
        throw new HttpError(e.status, `messages[${index}]: ${e.message}`, { index, ...e.extra });
      }
      throw e;
    }
  });
  let results: (StoredMessage | Error)[];
  try {
    results = await api.sendMessages(items.map(({ to, text }) => ({ to, text })));
  } catch (e) {
    if (e instanceof StoreError) throw new HttpError(507, `${e.message}; no message was stored or sent`);
    throw e;
  }
  const done = await Promise.all(
    results.map((r, i) =>
      r instanceof Error || waitS === 0 || !items[i]!.peer.online
        ? r
        : api.waitDelivered(r.id, waitS * 1000).then((d) => d ?? r)
    ),
  );
  const messages = done.map((r, i) =>
    r instanceof Error
      ? { error: r.message, status: r instanceof StoreError ? 507 : 400 }
      : { ...api.messageJson(r), online: items[i]!.peer.online }
  );
  const failed = done.filter((r) => r instanceof Error).length;
  const status = failed === done.length
    ? (done.some((r) => r instanceof StoreError) ? 507 : 400)
    : failed > 0
    ? 207
    : done.every((r) => !(r instanceof Error) && r.status === "delivered")
    ? 200
    : 202;
  return json({ messages }, status);
}

function filesOf(api: Api): FilesApi {
  if (!api.files) throw new HttpError(501, "This daemon does not transfer files");
  return api.files;
}

function transferId(raw: string): string {
  if (!/^[0-9a-f]{4,32}$/.test(raw)) {
    throw new HttpError(400, "A transfer id is 4 to 32 hex digits (see GET /transfers)");
  }
  return raw;
}

/** `/transfers/ID` and `/transfers/ID/accept|refuse|cancel`. */
function transferRoute(api: Api, id: string, action: string | undefined): Route {
  if (!action) return { GET: () => json(filesOf(api).get(transferId(id))) };
  return {
    POST: async (req) => {
      const files = filesOf(api);
      const tid = transferId(id);
      if (action === "accept") {
        const text = await readBody(req);
        let dir: string | undefined;
        if (text.trim() !== "") {
          const body = await readJsonObject(new Request("http://x/", { method: "POST", body: text }));
          if (body.dir !== undefined && (typeof body.dir !== "string" || body.dir === "")) {
            throw new HttpError(400, 'Field "dir" must be a folder on the daemon\'s host');
          }
          dir = body.dir;
        }
        return json(files.accept(tid, dir));
      }
      return json(action === "refuse" ? files.refuse(tid) : files.cancel(tid));
    },
  };
}

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
      // A member's copy of a group message is not history: its group message's event says what it did.
      return e.message.copyOf ? undefined : [e.type, api.messageJson(e.message)];
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

/** The request handler, and a way to end open event streams (on shutdown). */
export interface HandlerWithStreams {
  (req: Request): Promise<Response>;
  closeStreams(): void;
}

/** A file of the web page, as served. */
export interface WebAsset {
  body: Uint8Array;
  type: string;
}

/**
 * The page's policy: its own scripts and styles only, no inline script, no
 * connection but to this server, not framed. Peers' text is never HTML in it.
 */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Who may use the API. */
export interface HttpAccess {
  /**
   * A bearer token every route but `/healthz` requires (compared in
   * constant time). Required whenever the server listens beyond loopback.
   */
  token?: string;
  /**
   * Host names (without port) a request's `Host` header may carry. Set on
   * loopback binds: a web page that rebinds its own DNS name to 127.0.0.1
   * still sends its own name as Host, and is refused.
   */
  allowedHosts?: readonly string[];
  /** The web page's files by path ("/", "/app.js", …). */
  web?: ReadonlyMap<string, WebAsset>;
}

/** Host names accepted on a loopback bind. */
export const LOOPBACK_HOSTS: readonly string[] = ["127.0.0.1", "localhost", "::1", "[::1]"];

/** True when `hostname` (an address to bind) only accepts connections from this host. */
export function isLoopbackBind(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Constant-time check of an `Authorization: Bearer …` header against the token. */
function tokenMatches(header: string | null, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  // Both sides hashed to 32 bytes: timingSafeEqual needs equal lengths, and
  // the time taken then says nothing about the token's length either.
  return timingSafeEqual(digest(m?.[1] ?? ""), digest(token)) && m !== null;
}

function hostAllowed(host: string | null, allowed: readonly string[]): boolean {
  if (!host) return false;
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
  return allowed.includes(name.toLowerCase());
}

/**
 * Why a request that changes something is refused as coming from another
 * site's page (a browser says so: `Origin` not this server, or
 * `Sec-Fetch-Site: cross-site`), or undefined. Any page open in the user's
 * browser can POST to 127.0.0.1 (a form, or `fetch` with `mode: "no-cors"`);
 * the Host check does not see it, as the Host is ours. Reads are safe:
 * without CORS headers the other page cannot read the answer. Clients that
 * are not browsers (the CLI, curl) send neither header.
 */
export function crossOrigin(req: Request): string | undefined {
  if (req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS") return undefined;
  const site = req.headers.get("sec-fetch-site");
  const origin = req.headers.get("origin");
  let sameHost = false;
  try {
    sameHost = origin !== null && new URL(origin).host === req.headers.get("host");
  } catch { /* "null" or malformed: not this server */ }
  if ((origin !== null && !sameHost) || (site !== null && site !== "same-origin" && site !== "none")) {
    return `Cross-origin request refused: a page from ${origin ?? "another site"} may not ${req.method} here`;
  }
  return undefined;
}

/** The cookie the web page's session keeps the token in. */
export const SESSION_COOKIE = "lanchat_token";

/** Whether a `Cookie` header carries the token (compared in constant time). */
function cookieMatches(header: string | null, token: string): boolean {
  const m = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([^;]+)`).exec(header ?? "");
  return m !== null && timingSafeEqual(digest(decodeURIComponent(m[1]!)), digest(token));
}

/**
 * `POST /session {"token": …}`: the page beyond loopback asks for the token
 * once; a right one comes back as an HttpOnly, SameSite=Strict cookie (no
 * script can read it, no other site's request carries it).
 */
async function startSession(req: Request, token: string): Promise<Response> {
  const body = await readJsonObject(req);
  if (typeof body.token !== "string" || !timingSafeEqual(digest(body.token.trim()), digest(token))) {
    return jsonError(401, "Wrong token: it is in the daemon's --http-token-file");
  }
  return json({ ok: true }, 200, {
    "set-cookie": `${SESSION_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=31536000`,
  });
}

/** Builds the request handler over an {@link Api}. */
export function createHandler(api: Api, access: HttpAccess = {}): HandlerWithStreams {
  const streams = new Set<() => void>();
  const routes: Record<string, Route> = {
    "/peers": {
      GET: (_req, url) =>
        /^(1|true|yes)$/.test(url.searchParams.get("all") ?? "")
          ? json(api.allPeers())
          : new Response(api.peersBody() as Uint8Array<ArrayBuffer>, {
            headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
          }),
    },
    "/status": {
      // Event streams open and the listeners they hold: both go back to zero when their clients go.
      GET: () =>
        json({
          ...api.status() as Record<string, unknown>,
          eventStreams: { open: streams.size, listeners: api.eventListeners?.() ?? streams.size },
        }),
    },
    "/healthz": {
      GET: () => {
        const problems = api.problems?.() ?? [];
        return new Response(problems.length ? problems.map((p) => `${p}\n`).join("") : "ok\n", {
          status: problems.length ? 503 : 200,
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
      },
    },
    "/metrics": {
      GET: () =>
        new Response(api.metrics(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } }),
    },
    "/resolve": {
      GET: (_req, url) => {
        const q = url.searchParams.get("peer");
        if (!q) throw new HttpError(400, "Query parameter peer is required");
        return json(resolve(api, q));
      },
    },
    "/messages": {
      POST: async (req, url) => {
        const waitS = parseWait(url);
        const body = await readJsonObject(req);
        if (body.messages !== undefined) return await sendBatch(api, body.messages, waitS);
        const groupQuery = typeof body.group === "string"
          ? body.group
          : typeof body.to === "string" && body.to.startsWith("@")
          ? body.to
          : undefined;
        if (groupQuery !== undefined) {
          const text = checkText(body.text);
          const g = resolveGroup(api, groupQuery);
          return await sendAndAnswer(api, () => api.groups.send(g.id, text), waitS);
        }
        if (typeof body.to !== "string" || body.to.trim() === "") {
          throw new HttpError(400, 'Field "to" must name a peer (id, id prefix, name or address)');
        }
        const text = checkText(body.text);
        const peer = resolve(api, body.to);
        if (body.sealed !== undefined && typeof body.sealed !== "boolean") {
          throw new HttpError(400, 'Field "sealed" must be true or false');
        }
        const send = body.sealed ? () => api.sendSealed(peer.id, text) : () => api.sendMessage(peer.id, text);
        return await sendAndAnswer(api, send, waitS, peer.online);
      },
      GET: (_req, url) => {
        const q: HistoryQuery = {};
        const peer = url.searchParams.get("peer");
        const group = url.searchParams.get("group");
        if (group) q.group = resolveGroup(api, group).id;
        else if (peer) q.peer = resolve(api, peer).id;
        // `since` is the older name of `after`.
        const after = place(api, url, "after") ?? place(api, url, "since");
        if (after !== undefined) q.after = after.cursor - (after.exact ? 0 : 1);
        const before = place(api, url, "before");
        if (before !== undefined) q.before = before.cursor;
        q.limit = pageSize(url, 100);
        const range = api.historyRange(q);
        if (!range) return json([]);
        // The page is the range of cursors found now, read a slice at a time as the client takes it.
        let at = range.first - 1;
        return jsonStream(() => {
          if (at >= range.last) return undefined;
          const slice = api.history({
            peer: q.peer,
            group: q.group,
            after: at,
            before: range.last + 1,
            limit: PAGE_SLICE,
          });
          if (slice.length === 0) return undefined;
          at = slice.at(-1)!.cursor;
          return slice.map((m) => api.messageJson(m));
        }, { headers: pageLinks(url, range.first, range.last) });
      },
    },
    "/messages/read": {
      POST: async (req) => {
        const body = await readJsonObject(req);
        if (body.upTo !== undefined && (!Number.isSafeInteger(body.upTo) || (body.upTo as number) < 0)) {
          throw new HttpError(400, 'Field "upTo" must be a cursor (a whole number)');
        }
        if (typeof body.group === "string" && body.group.trim() !== "") {
          const g = resolveGroup(api, body.group);
          return json({ group: g.id, read: api.groups.markRead(g.id, body.upTo as number | undefined) });
        }
        if (typeof body.peer !== "string" || body.peer.trim() === "") {
          throw new HttpError(
            400,
            'Field "peer" must name a peer (id, id prefix, name or address), or "group" a group',
          );
        }
        const peer = resolve(api, body.peer);
        return json({ peer: peer.id, read: api.markRead(peer.id, body.upTo as number | undefined) });
      },
    },
    "/messages/open": {
      POST: async (req) => {
        const body = await readJsonObject(req);
        if (typeof body.id !== "string" || !/^[0-9a-f]{8,32}$/.test(body.id)) {
          throw new HttpError(400, 'Field "id" must be a message id (or its first 8 or more hex digits)');
        }
        const id = body.id;
        try {
          return json(api.messageJson(api.openSealed(id)));
        } catch (e) {
          if (e instanceof RangeError) throw new HttpError(404, e.message);
          if (e instanceof StoreError) throw new HttpError(507, e.message);
          throw e;
        }
      },
    },
    "/messages/search": {
      GET: (_req, url) => {
        const text = url.searchParams.get("q") ?? "";
        if (text.trim() === "") throw new HttpError(400, "Query parameter q is required: the text to look for");
        const peer = url.searchParams.get("peer");
        const before = place(api, url, "before");
        const r = api.search({
          text,
          peer: peer ? resolve(api, peer).id : undefined,
          before: before?.cursor,
          limit: pageSize(url, 50, MAX_SEARCH_PAGE),
        });
        const head = {
          query: text,
          complete: r.complete,
          ...(r.complete ? {} : {
            note: [...text].length < 3
              ? `A text under 3 characters is looked for in the newest ${SHORT_SEARCH_WINDOW} messages only`
              : "Older history is still being indexed for search",
          }),
        };
        const last = r.messages.at(-1);
        const next: HeadersInit = last
          ? { link: `<${withParam(url, "before", String(last.cursor))}>; rel="next"` }
          : {};
        let at = 0;
        return jsonStream(() => {
          if (at >= r.messages.length) return undefined;
          return r.messages.slice(at, at += PAGE_SLICE).map((m) => api.messageJson(m));
        }, { head, key: "messages", headers: next });
      },
    },
    "/broadcast": {
      POST: async (req, url) => {
        const waitS = parseWait(url);
        const body = await readJsonObject(req);
        const text = checkText(body.text);
        const peers = api.onlinePeers();
        const results = await Promise.all(peers.map(async (p) => {
          const m = await sendAndWait(api, () => api.sendMessage(p.id, text), waitS);
          return { ...api.messageJson(m) };
        }));
        const allDone = results.every((r) => r.status === "delivered");
        return json({ peers: results.length, results }, allDone ? 200 : 202);
      },
    },
    "/trust": {
      POST: async (req) => {
        const peer = resolve(api, await peerField(req));
        try {
          const pin = api.trustPeer(peer.id);
          return json({ id: pin.id, name: pin.name, trust: pin.trust });
        } catch (e) {
          if (e instanceof RangeError) throw new HttpError(404, e.message);
          if (e instanceof StoreError) throw new HttpError(507, e.message);
          throw e;
        }
      },
    },
    "/forget": {
      POST: async (req) => {
        const peer = resolve(api, await peerField(req));
        let forgotten: boolean;
        try {
          forgotten = api.forgetPeer(peer.id);
        } catch (e) {
          if (e instanceof StoreError) throw new HttpError(507, e.message);
          throw e;
        }
        if (!forgotten) throw new HttpError(404, `No key is pinned for ${peer.name} (${peer.id})`);
        return json({ id: peer.id, name: peer.name, forgotten: true });
      },
    },
    "/memory/compact": {
      POST: () => {
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
      },
    },
    "/files": {
      POST: async (req) => {
        const files = filesOf(api);
        const body = await readJsonObject(req);
        if (typeof body.to !== "string" || body.to.trim() === "") {
          throw new HttpError(400, 'Field "to" must name a peer (id, id prefix, name or address)');
        }
        if (
          !Array.isArray(body.paths) || body.paths.length === 0 ||
          body.paths.some((p) => typeof p !== "string" || p === "")
        ) {
          throw new HttpError(400, 'Field "paths" must be a list of files and folders on the daemon\'s host');
        }
        const peer = resolve(api, body.to);
        return json(await files.offer(peer.id, body.paths as string[]), 202);
      },
    },
    "/files/upload": {
      POST: async (req, url) => {
        const files = filesOf(api);
        const to = url.searchParams.get("to") ?? "";
        const name = url.searchParams.get("name") ?? "";
        if (to.trim() === "" || name.trim() === "") {
          throw new HttpError(400, "Query parameters to (a peer) and name (the file's name) are required");
        }
        const size = Number(req.headers.get("content-length") ?? NaN);
        if (!Number.isSafeInteger(size) || size < 0) throw new HttpError(411, "Content-Length is required");
        const peer = resolve(api, to);
        return json(await files.offerUpload(peer.id, name, size, req.body ?? new ReadableStream()), 202);
      },
    },
    "/presence": {
      PUT: async (req) => {
        const body = await readJsonObject(req);
        if (body.presence !== "online" && body.presence !== "away" && body.presence !== "busy") {
          throw new HttpError(400, 'Field "presence" must be "online", "away" or "busy"');
        }
        if (body.note !== undefined && (typeof body.note !== "string" || [...body.note].length > MAX_NOTE_CHARS)) {
          throw new HttpError(400, `Field "note" must be a text of at most ${MAX_NOTE_CHARS} characters`);
        }
        return json(api.setPresence(body.presence, body.note as string | undefined));
      },
    },
    "/transfers": {
      GET: () => json(filesOf(api).list()),
    },
    "/groups": {
      GET: () => json(api.groups.list()),
      POST: async (req) => {
        const body = await readJsonObject(req);
        if (typeof body.name !== "string") throw new HttpError(400, 'Field "name" must be the group\'s name');
        const name = body.name;
        const members = memberIds(api, body.members);
        const r = await storing(() => {
          const problem = groupNameProblem(name);
          if (problem) throw new RangeError(problem);
          return api.groups.create(name, members);
        });
        return json({ group: r.group, message: api.messageJson(r.message) }, 201);
      },
    },
    "/events": {
      GET: () => {
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
              try {
                controller.close();
              } catch { /* already closed */ }
            };
            streams.add(close);
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
      },
    },
  };
  const handler = (async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
    if (access.allowedHosts && !hostAllowed(req.headers.get("host"), access.allowedHosts)) {
      return jsonError(
        403,
        `Host "${req.headers.get("host") ?? ""}" is not allowed: this endpoint answers only to ${
          access.allowedHosts.join(", ")
        }`,
      );
    }
    // The page's own files carry no secret: served to anyone who may reach the server, so that the
    // page can ask for the token. The token then travels in an HttpOnly, SameSite=Strict cookie.
    const asset = access.web?.get(url.pathname);
    const open = path === "/healthz" || (asset !== undefined && (req.method === "GET" || req.method === "HEAD"));
    if (access.token !== undefined && path === "/session" && req.method === "POST") {
      const cross = crossOrigin(req);
      if (cross) return jsonError(403, cross);
      return await startSession(req, access.token);
    }
    if (
      access.token !== undefined && !open && !tokenMatches(req.headers.get("authorization"), access.token) &&
      !cookieMatches(req.headers.get("cookie"), access.token)
    ) {
      return jsonError(
        401,
        "Missing or wrong bearer token: send Authorization: Bearer TOKEN (the daemon's --http-token-file; the CLI reads $LANCHAT_HTTP_TOKEN)",
        { "www-authenticate": 'Bearer realm="lanchat"' },
      );
    }
    const cross = crossOrigin(req);
    if (cross) return jsonError(403, cross);
    const transfer = /^\/transfers\/([^/]+)(?:\/(accept|refuse|cancel))?$/.exec(path);
    const group = /^\/groups\/([^/]+)(?:\/(add|leave))?$/.exec(path);
    if (asset && (req.method === "GET" || req.method === "HEAD")) {
      return new Response(req.method === "HEAD" ? null : asset.body as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": asset.type,
          "cache-control": "no-cache",
          "content-security-policy": PAGE_CSP,
          "x-content-type-options": "nosniff",
          "referrer-policy": "no-referrer",
          "x-frame-options": "DENY",
        },
      });
    }
    const route = routes[path] ??
      (transfer
        ? transferRoute(api, transfer[1]!, transfer[2])
        : group
        ? groupRoute(api, decodedSegment(group[1]!), group[2])
        : undefined);
    if (!route) {
      return jsonError(404, `No such endpoint: ${url.pathname}; try ${Object.keys(routes).join(", ")}`);
    }
    const method = req.method === "HEAD" ? "GET" : req.method;
    const h = route[method as keyof Route];
    if (!h) {
      const allow = Object.keys(route).join(", ");
      return jsonError(405, `Method ${req.method} not allowed on ${path}; use ${allow}`, { allow });
    }
    try {
      const res = await h(req, url);
      return req.method === "HEAD" ? new Response(null, { status: res.status, headers: res.headers }) : res;
    } catch (e) {
      if (e instanceof HttpError) return jsonError(e.status, e.message, {}, e.extra);
      return jsonError(500, `Internal error: ${(e as Error).message}`);
    }
  }) as HandlerWithStreams;
  handler.closeStreams = () => {
    for (const close of [...streams]) close();
  };
  return handler;
}
