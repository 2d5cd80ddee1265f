/**
 * This node's presence: `PUT /presence {presence: online|away|busy, note?}`,
 * sent to every peer at once.
 *
 * @module
 */
import { MAX_NOTE_CHARS } from "../../wire/packets.ts";
import { HttpError, json, readJsonObject } from "../request.ts";
import type { Api } from "../api.ts";
import { Router } from "../router.ts";

/** `PUT /presence`. */
export function presenceRoutes(api: Api): Router {
  return new Router()
    .put("/presence", async (req) => {
      const body = await readJsonObject(req);
      if (body.presence !== "online" && body.presence !== "away" && body.presence !== "busy") {
        throw new HttpError(400, 'Field "presence" must be "online", "away" or "busy"');
      }
      if (body.note !== undefined && (typeof body.note !== "string" || [...body.note].length > MAX_NOTE_CHARS)) {
        throw new HttpError(400, `Field "note" must be a text of at most ${MAX_NOTE_CHARS} characters`, {
          code: "bad_field",
          field: "note",
        });
      }
      return json(api.setPresence(body.presence, body.note as string | undefined));
    });
}
