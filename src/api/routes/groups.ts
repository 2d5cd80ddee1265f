/**
 * Group conversations: `GET /groups`, `POST /groups {name, members, new?}`
 * (409 `group_name_taken` when this node is in a group of that name already,
 * unless `new`),
 * `GET /groups/ID` (an id, id prefix or name), `POST /groups/ID/add
 * {members}` and `POST /groups/ID/leave`. A group's messages go through
 * `POST /messages` (routes/messages.ts).
 *
 * @module
 */
import { GroupNameTakenError, newGroupNameProblem } from "../../protocol/groups.ts";
import { HttpError, json, readJsonObject } from "../request.ts";
import type { Api } from "../api.ts";
import { type Handler, Router } from "../router.ts";
import { decodedSegment, resolve, resolveGroup } from "./lookup.ts";
import { storing } from "./sending.ts";

/** Field `members`: peers as a user names them, resolved to node ids. */
function memberIds(api: Api, raw: unknown): string[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.some((m) => typeof m !== "string" || m.trim() === "")) {
    throw new HttpError(400, 'Field "members" must be a list of peers (ids, names or addresses)', {
      code: "bad_field",
      field: "members",
    });
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
      if (typeof body.name !== "string") {
        throw new HttpError(400, 'Field "name" must be the group\'s name', { code: "bad_field", field: "name" });
      }
      if (body.new !== undefined && typeof body.new !== "boolean") {
        throw new HttpError(400, 'Field "new" must be true or false', { code: "bad_field", field: "new" });
      }
      const name = body.name;
      const problem = newGroupNameProblem(name);
      if (problem) throw new HttpError(400, problem, { code: "bad_group_name" });
      const members = memberIds(api, body.members);
      const r = await storing(async () => {
        try {
          return await api.groups.create(name, members, { sameName: body.new === true });
        } catch (e) {
          if (!(e instanceof GroupNameTakenError)) throw e;
          const had = api.groups.lookup(e.groupId);
          throw new HttpError(409, e.message, { code: "group_name_taken", ...(had.ok ? { group: had.group } : {}) });
        }
      });
      return json({ group: r.group, message: api.messageJson(r.message) }, 201);
    })
    .get("/groups/:id", (_req, _url, params) => json(resolveGroup(api, decodedSegment(params.id!))))
    .post("/groups/:id/add", change("add"))
    .post("/groups/:id/leave", change("leave"));
}
