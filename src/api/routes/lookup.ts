/**
 * What a request names, found or refused: a peer (id, id prefix, name or
 * address) and a group (`@NAME`, a name, an id or id prefix), each a 404 or
 * 409 with the candidates when it is not one, and a `code` saying which
 * (`unknown_peer`, `ambiguous_peer`, `name_conflict`, `unknown_group`,
 * `ambiguous_group`) for clients that word it themselves (the CLI).
 *
 * @module
 */
import type { GroupJson } from "../types.ts";
import { HttpError } from "../request.ts";
import type { Api } from "../api.ts";

/** Resolves a peer query or throws 404 / 409 with the candidates. */
export function resolve(api: Api, query: string): { id: string; name: string; hostname: string; online: boolean } {
  const r = api.lookupPeer(query);
  if (r.ok) return r.peer;
  if (r.reason === "conflict") {
    throw new HttpError(
      409,
      `"${query}" is claimed by more than one node key (a possible impersonation); compare fingerprints ` +
        `(lanchat peers), then "lanchat trust ID" the right one, or address it by id`,
      { code: "name_conflict", candidates: r.candidates },
    );
  }
  if (r.reason === "ambiguous") {
    throw new HttpError(409, `"${query}" matches ${r.candidates.length} peers; say which`, {
      code: "ambiguous_peer",
      candidates: r.candidates,
    });
  }
  throw new HttpError(404, `No peer matches "${query}"`, { code: "unknown_peer", candidates: r.candidates });
}

/** The group a user means (`@NAME`, a name, an id or id prefix), or a 404/409 saying why not. */
export function resolveGroup(api: Api, query: string): GroupJson {
  const r = api.groups.lookup(query);
  if (r.ok) return r.group;
  if (r.reason === "ambiguous") {
    throw new HttpError(409, `"${query}" matches ${r.candidates.length} groups; say which (by id)`, {
      code: "ambiguous_group",
      candidates: r.candidates,
    });
  }
  throw new HttpError(404, `No group matches "${query}" (see GET /groups)`, { code: "unknown_group" });
}

/** A path segment percent-decoded (a group's name may be in it); as it came when that is malformed. */
export function decodedSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
