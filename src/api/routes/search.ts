/**
 * Searching history: `GET /messages/search?q=&peer=&group=&before=&limit=`,
 * messages containing a text (literally: no character in it is a wildcard
 * or syntax), newest first, sent a slice at a time, with a note when the
 * answer is not complete (a short text, an index still being built, the
 * most one request looks at reached) and, when there is more to look at,
 * `next` and a `Link` to it.
 *
 * @module
 */
import { MAX_SEARCH_PAGE, SEARCH_SCAN_LIMIT, type SearchResult, SHORT_SEARCH_WINDOW } from "../../storage/store.ts";
import { HttpError, jsonStream } from "../request.ts";
import type { Api } from "../api.ts";
import { Router } from "../router.ts";
import { resolve, resolveGroup } from "./lookup.ts";
import { PAGE_SLICE, pageSize, place, withParam } from "./paging.ts";

/** `GET /messages/search`. */
export function searchRoutes(api: Api): Router {
  return new Router()
    .get("/messages/search", (_req, url) => {
      const text = url.searchParams.get("q") ?? "";
      if (text.trim() === "") throw new HttpError(400, "Query parameter q is required: the text to look for");
      const peer = url.searchParams.get("peer");
      const group = url.searchParams.get("group");
      const before = place(api, url, "before");
      const r = api.search({
        text,
        peer: peer && !group ? resolve(api, peer).id : undefined,
        group: group ? resolveGroup(api, group).id : undefined,
        before: before?.cursor,
        limit: pageSize(url, 50, MAX_SEARCH_PAGE),
      });
      const note = noteOf(r);
      const head = {
        query: text,
        complete: r.complete,
        ...(note === undefined ? {} : { note }),
        ...(r.next === undefined ? {} : { next: r.next }),
      };
      const next: HeadersInit = r.next === undefined
        ? {}
        : { link: `<${withParam(url, "before", String(r.next))}>; rel="next"` };
      let at = 0;
      return jsonStream(() => {
        if (at >= r.messages.length) return undefined;
        return r.messages.slice(at, at += PAGE_SLICE).map((m) => api.messageJson(m));
      }, { head, key: "messages", headers: next });
    });
}

/** Why an answer is not complete, in words. */
function noteOf(r: SearchResult): string | undefined {
  switch (r.partial) {
    case "window":
      return `A text under 3 characters is looked for in the newest ${SHORT_SEARCH_WINDOW} messages only`;
    case "indexing":
      return "Older history is still being indexed for search";
    case "scanned":
      return `Searched back to #${r.next} only (one search looks at ${SEARCH_SCAN_LIMIT} messages that might ` +
        `match at most); ask again with before=${r.next} for older ones`;
    default:
      return r.complete ? undefined : "Part of history was not searched";
  }
}
