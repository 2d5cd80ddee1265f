/**
 * File transfer, both ways: offers (`POST /files {to, paths}` for paths on
 * the daemon's host, `POST /files/upload?to=&name=` for the bytes of the
 * body, from the web page; `to` a peer, or a group: one offer to each member) and the transfers (`GET /transfers`,
 * `GET /transfers/ID`, `POST /transfers/ID/accept {dir?}`, `/refuse`,
 * `/cancel`), and a file of a transfer (`GET /transfers/ID/files/N`: a
 * picture inline with its real type, anything else as an attachment of
 * bytes, never a type a browser would run). 501 in a daemon without file
 * transfer.
 *
 * @module
 */
import { HttpError, json, readBody, readJsonObject } from "../request.ts";
import type { Api, FilesApi, ServedFile } from "../api.ts";
import { type Handler, Router } from "../router.ts";
import { resolve, resolveGroup } from "./lookup.ts";
import type { GroupJson, TransferJson } from "../types.ts";

/**
 * The group a `to` names, if it names one: `@NAME`, or a group's id (32 hex
 * digits, which no peer's id is the same as). Undefined: a peer.
 */
function groupTo(api: Api, to: string): GroupJson | undefined {
  if (to.startsWith("@")) return resolveGroup(api, to);
  if (!/^[0-9a-f]{32}$/.test(to)) return undefined;
  const r = api.groups.lookup(to);
  return r.ok && r.group.id === to ? r.group : undefined;
}

/** The members a file to `g` goes to: all but this node (400 when this node left it, or no one else is in it). */
function membersOf(g: GroupJson): string[] {
  if (g.left) throw new HttpError(400, `You left “${g.name}”: someone in it must add you again`);
  const members = g.members.filter((m) => !m.self).map((m) => m.id);
  if (members.length === 0) throw new HttpError(400, `No one else is in “${g.name}”: add someone first`);
  return members;
}

/**
 * `202 {group, transfers: [TransferJson…]}`, one transfer per member offered;
 * `failed: [{peer: {id, name}, error}]` for members it could not be offered
 * to (an IP Messenger user without --ipmsg…).
 */
function groupAnswer(api: Api, g: GroupJson, members: string[], results: (TransferJson | Error)[]): Response {
  const failed = results.flatMap((r, i) =>
    r instanceof Error ? [{ peer: { id: members[i]!, name: api.peerName(members[i]!) }, error: r.message }] : []
  );
  if (failed.length === results.length) throw results[0];
  const transfers = results.filter((r): r is TransferJson => !(r instanceof Error));
  return json({ group: g.id, transfers, ...(failed.length ? { failed } : {}) }, 202);
}

function filesOf(api: Api): FilesApi {
  if (!api.files) throw new HttpError(501, "This daemon does not transfer files");
  return api.files;
}

function transferId(raw: string): string {
  if (!/^[0-9a-f]{4,32}$/.test(raw)) {
    throw new HttpError(400, "A transfer id is 4 to 32 hex digits (see GET /transfers)", {
      code: "bad_field",
      field: "transfer",
    });
  }
  return raw;
}

/** `/files`, `/files/upload`, `/transfers`, `/transfers/ID`, `/transfers/ID/files/N` and `/transfers/ID/accept|refuse|cancel`. */
export function fileRoutes(api: Api): Router {
  /** `POST /transfers/ID/accept|refuse|cancel`. */
  const answer = (action: "accept" | "refuse" | "cancel"): Handler => async (req, _url, params) => {
    const files = filesOf(api);
    const tid = transferId(params.id!);
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
  };
  return new Router()
    .post("/files", async (req) => {
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
      const group = groupTo(api, body.to);
      if (group) {
        const members = membersOf(group);
        if (!files.offerToEach) throw new HttpError(501, "This daemon does not send files to groups");
        return groupAnswer(api, group, members, await files.offerToEach(members, body.paths as string[]));
      }
      const peer = resolve(api, body.to);
      return json(await files.offer(peer.id, body.paths as string[]), 202);
    })
    .post("/files/upload", async (req, url) => {
      const files = filesOf(api);
      const to = url.searchParams.get("to") ?? "";
      const name = url.searchParams.get("name") ?? "";
      if (to.trim() === "" || name.trim() === "") {
        throw new HttpError(400, "Query parameters to (a peer) and name (the file's name) are required");
      }
      const size = Number(req.headers.get("content-length") ?? NaN);
      if (!Number.isSafeInteger(size) || size < 0) throw new HttpError(411, "Content-Length is required");
      const group = groupTo(api, to);
      if (group) {
        const members = membersOf(group);
        if (!files.offerUploadToEach) throw new HttpError(501, "This daemon does not send files to groups");
        const body = req.body ?? new ReadableStream();
        return groupAnswer(api, group, members, await files.offerUploadToEach(members, name, size, body));
      }
      const peer = resolve(api, to);
      return json(await files.offerUpload(peer.id, name, size, req.body ?? new ReadableStream()), 202);
    })
    .get("/transfers", () => json(filesOf(api).list()))
    .get("/transfers/:id", (_req, _url, params) => json(filesOf(api).get(transferId(params.id!))))
    .get("/transfers/:id/files/:n", async (req, _url, params) => {
      const files = filesOf(api);
      const tid = transferId(params.id!);
      if (!/^\d{1,9}$/.test(params.n!)) {
        throw new HttpError(400, "A file's index is a whole number from 0 (its n in images of GET /transfers/ID)");
      }
      const served = await files.openFile(tid, Number(params.n));
      const headers = servedHeaders(served);
      const fresh = req.headers.get("if-none-match")?.split(/\s*,\s*/).includes(served.etag);
      if (req.method === "HEAD" || fresh) {
        served.file.close();
        return new Response(null, { status: fresh ? 304 : 200, headers });
      }
      return new Response(fileBody(served.file, served.size), { headers });
    })
    .post("/transfers/:id/accept", answer("accept"))
    .post("/transfers/:id/refuse", answer("refuse"))
    .post("/transfers/:id/cancel", answer("cancel"));
}

/**
 * What a file of a transfer is served with: its type (a picture's, or bytes)
 * and name, never sniffed by the browser (`nosniff`), a policy that runs and
 * loads nothing even if opened as a page (`sandbox`), readable by this
 * origin's pages only.
 */
function servedHeaders(s: ServedFile): Record<string, string> {
  return {
    "content-type": s.type,
    "content-length": String(s.size),
    "content-disposition": s.disposition,
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; sandbox",
    "cross-origin-resource-policy": "same-origin",
    "referrer-policy": "no-referrer",
    "cache-control": "private, no-cache",
    etag: s.etag,
  };
}

/** Exactly `size` bytes of an open file, closed at the end or when the client goes. */
function fileBody(file: Deno.FsFile, size: number): ReadableStream<Uint8Array> {
  let left = size;
  const close = () => {
    try {
      file.close();
    } catch { /* closed already */ }
  };
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        const buf = new Uint8Array(Math.min(left, 256 * 1024));
        const n = left > 0 ? await file.read(buf) : null;
        if (n === null) {
          close();
          // Shorter than it was a moment ago: the connection is cut rather than the file padded.
          if (left > 0) ctrl.error(new Error(`the file ended ${left} bytes short`));
          else ctrl.close();
          return;
        }
        left -= n;
        ctrl.enqueue(buf.subarray(0, n));
      } catch (e) {
        close();
        ctrl.error(e);
      }
    },
    cancel: close,
  }, { highWaterMark: 0 });
}
