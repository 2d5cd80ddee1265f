/**
 * Messages: sending (`POST /messages` to a peer, sealed, to a group, or a
 * batch; `POST /broadcast` to every peer online), reading history
 * (`GET /messages`, a page oldest first, sent a slice at a time), and marking
 * (`POST /messages/read`, `POST /messages/open` for a sealed one), and
 * changing one's own (`POST /messages/:id/edit`, `POST /messages/:id/delete`;
 * a reply is `POST /messages` with `replyTo`). Searching is routes/search.ts.
 *
 * @module
 */
import { type HistoryQuery, type StoredMessage, StoreError } from "../../storage/store.ts";
import { checkText, HttpError, json, jsonStream, parseWait, readJsonObject } from "../request.ts";
import type { Api, ThreadApi } from "../api.ts";
import { Router } from "../router.ts";
import { resolve, resolveGroup } from "./lookup.ts";
import { PAGE_SLICE, pageLinks, pageSize, place } from "./paging.ts";
import { sendAndAnswer, sendAndWait } from "./sending.ts";

/** Most messages one `POST /messages` with a `messages` array may carry. */
export const MAX_BATCH = 1000;

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

/** Replies, edits and deletions, or 501 in a daemon without them. */
function threadOf(api: Api): ThreadApi {
  if (!api.thread) throw new HttpError(501, "This daemon does not edit or delete messages");
  return api.thread;
}

/** `/messages`, `/messages/read`, `/messages/open` and `/broadcast`. */
export function messageRoutes(api: Api): Router {
  return new Router()
    .post("/messages", async (req, url) => {
      const waitS = parseWait(url);
      const body = await readJsonObject(req);
      if (body.messages !== undefined) return await sendBatch(api, body.messages, waitS);
      const groupQuery = typeof body.group === "string"
        ? body.group
        : typeof body.to === "string" && body.to.startsWith("@")
        ? body.to
        : undefined;
      if (body.replyTo !== undefined && typeof body.replyTo !== "string") {
        throw new HttpError(400, 'Field "replyTo" must be the id of a message of this conversation');
      }
      const replyTo = (place: { peer: string } | { group: string }) =>
        typeof body.replyTo === "string" ? threadOf(api).replyTarget(body.replyTo, place) : undefined;
      if (groupQuery !== undefined) {
        const text = checkText(body.text);
        const g = resolveGroup(api, groupQuery);
        const answers = replyTo({ group: g.id });
        return await sendAndAnswer(api, () => api.groups.send(g.id, text, answers), waitS);
      }
      if (typeof body.to !== "string" || body.to.trim() === "") {
        throw new HttpError(400, 'Field "to" must name a peer (id, id prefix, name or address)');
      }
      const text = checkText(body.text);
      const peer = resolve(api, body.to);
      if (body.sealed !== undefined && typeof body.sealed !== "boolean") {
        throw new HttpError(400, 'Field "sealed" must be true or false');
      }
      const answers = replyTo({ peer: peer.id });
      if (body.sealed && answers) throw new HttpError(400, "A sealed message cannot be a reply: leave out replyTo");
      const send = body.sealed ? () => api.sendSealed(peer.id, text) : () => api.sendMessage(peer.id, text, answers);
      return await sendAndAnswer(api, send, waitS, peer.online);
    })
    .get("/messages", (_req, url) => {
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
    })
    .post("/messages/read", async (req) => {
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
    })
    .post("/messages/open", async (req) => {
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
    })
    .post("/messages/:id/edit", async (req, _url, params) => {
      const body = await readJsonObject(req);
      const text = checkText(body.text);
      return json(api.messageJson(await threadOf(api).edit(params.id!, text)));
    })
    .post("/messages/:id/delete", async (_req, _url, params) => {
      return json(api.messageJson(await threadOf(api).delete(params.id!)));
    })
    .post("/broadcast", async (req, url) => {
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
    });
}
