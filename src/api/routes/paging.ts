/**
 * Paging through history for the routes that read it: a place given as a
 * cursor or a time, the page size, and the `Link` header to the pages
 * around it.
 *
 * @module
 */
import { MAX_PAGE } from "../../storage/store.ts";
import { HttpError } from "../request.ts";
import type { Api } from "../api.ts";

/**
 * A place in history given as a query parameter: a cursor (a whole number)
 * or an ISO 8601 time, which becomes the first cursor at or after it
 * (`exact` false). Undefined when the parameter is absent.
 */
export function place(api: Api, url: URL, name: string): { cursor: number; exact: boolean } | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === "") return undefined;
  if (/^\d+$/.test(v)) return { cursor: Number(v), exact: true };
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new HttpError(400, `${name} must be a cursor (a number) or an ISO 8601 time`);
  return { cursor: api.cursorAt(t), exact: false };
}

/** `limit`, 1 to `max`. */
export function pageSize(url: URL, fallback: number, max = MAX_PAGE): number {
  const limit = url.searchParams.get("limit");
  if (limit === null) return fallback;
  if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > max) {
    throw new HttpError(400, `limit must be a whole number from 1 to ${max}`);
  }
  return Number(limit);
}

/** The request's URL with one query parameter set and the paging ones it replaces removed. */
export function withParam(url: URL, name: string, value: string): string {
  const u = new URL(url);
  for (const p of ["before", "after", "since"]) u.searchParams.delete(p);
  u.searchParams.set(name, value);
  return `${u.pathname}${u.search}`;
}

/** A `Link` header to the pages before and after the page from cursor `first` to `last`. */
export function pageLinks(url: URL, first: number, last: number): HeadersInit {
  return {
    link: `<${withParam(url, "before", String(first))}>; rel="prev", <${
      withParam(url, "after", String(last))
    }>; rel="next"`,
  };
}

/** Messages of a page read and sent this many at a time: a page of 10,000 never exists whole as objects or text. */
export const PAGE_SLICE = 250;
