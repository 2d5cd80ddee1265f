/**
 * Group conversations: `GET /groups`, `POST /groups {name, members}`,
 * `GET /groups/ID` (an id, id prefix or name), `POST /groups/ID/add
 * {members}` and `POST /groups/ID/leave`. A group's messages go through
 * `POST /messages` (routes/messages.ts).
 *
 * @module
 */
import { groupNameProblem } from "../../protocol/groups.ts";
import { HttpError, json, readJsonObject } from "../request.ts";
import type { Api } from "../api.ts";
import { type Handler, Router } from "../router.ts";
import { decodedSegment, resolve, resolveGroup } from "./lookup.ts";
import { storing } from "./sending.ts";

/** Field `members`: peers as a user names them, resolved to node ids. */
function memberIds(api: Api, raw: unknown): string[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.some((m) => typeof m !== "string" || m.trim() === "")) {
    throw new HttpError(400, 'Field "members" must be a list of peers (ids, names or addresses)');
  }
  return raw.map((m) => resolve(api, m as string).id);
}

/** `/groups`, `/groups/ID` and `/groups/ID/add|leave`. */
export function groupRoutes(api: Api): Router {
  /** `POST /groups/ID/add|leave`. */
  const change = (action: "add" | "leave"): Handler => async (req, _url, params) => {
    const g = resolveGroup(api, decodedSegment(params.id!));
    const members = action === "add" ? memberIds(api, (await readJsonObject(req)).members) : [];
    const r = await storing(() => action === "leave" ? api.groups.leave(g.id) : api.groups.add(g.id, members));
    return json({ group: r.group, message: api.messageJson(r.message) });
  };
  return new Router()
    .get("/groups", () => json(api.groups.list()))
    .post("/groups", async (req) => {
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
    })
    .get("/groups/:id", (_req, _url, params) => json(resolveGroup(api, decodedSegment(params.id!))))
    .post("/groups/:id/add", change("add"))
    .post("/groups/:id/leave", change("leave"));
}
