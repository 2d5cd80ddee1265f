/**
 * Settings kept across restarts: `GET /settings`, and `PUT /settings` with
 * the ones to change — today `autoAcceptImages: {enabled, maxBytes?}`
 * (offers of pictures only, up to maxBytes in all, from peers whose key is
 * verified, accepted without asking). 501 in a daemon without file transfer.
 *
 * @module
 */
import { AUTO_ACCEPT_IMAGES_MAX } from "../../protocol/media_type.ts";
import { StoreError } from "../../storage/store.ts";
import { HttpError, json, readJsonObject } from "../request.ts";
import type { Api } from "../api.ts";
import type { SettingsJson } from "../types.ts";
import { Router } from "../router.ts";

function settingsOf(api: Api): SettingsJson {
  if (!api.files) throw new HttpError(501, "This daemon does not transfer files: it has no settings to show");
  return { autoAcceptImages: api.files.autoAcceptImages };
}

/** `GET /settings`, `PUT /settings`. */
export function settingsRoutes(api: Api): Router {
  return new Router()
    .get("/settings", () => json(settingsOf(api)))
    .put("/settings", async (req) => {
      const now = settingsOf(api);
      const body = await readJsonObject(req);
      const unknown = Object.keys(body).filter((k) => k !== "autoAcceptImages");
      if (unknown.length > 0) {
        throw new HttpError(400, `Unknown setting ${JSON.stringify(unknown[0])}: the settings are autoAcceptImages`);
      }
      const v = body.autoAcceptImages as Record<string, unknown> | undefined;
      if (v === undefined) return json(now);
      if (typeof v !== "object" || v === null || Array.isArray(v)) {
        throw new HttpError(400, 'Field "autoAcceptImages" must be an object {enabled, maxBytes}');
      }
      const extra = Object.keys(v).filter((k) => k !== "enabled" && k !== "maxBytes");
      if (extra.length > 0) {
        throw new HttpError(
          400,
          `Unknown field ${JSON.stringify(extra[0])} in autoAcceptImages: it has enabled and maxBytes`,
        );
      }
      if (typeof v.enabled !== "boolean") {
        throw new HttpError(400, 'Field "autoAcceptImages.enabled" must be true or false');
      }
      const maxBytes = v.maxBytes ?? now.autoAcceptImages.maxBytes;
      if (
        !Number.isSafeInteger(maxBytes) || (maxBytes as number) < 1 || (maxBytes as number) > AUTO_ACCEPT_IMAGES_MAX
      ) {
        throw new HttpError(
          400,
          `Field "autoAcceptImages.maxBytes" must be a whole number of bytes from 1 to ${AUTO_ACCEPT_IMAGES_MAX} (64 MiB)`,
        );
      }
      try {
        api.files!.setAutoAcceptImages({ enabled: v.enabled, maxBytes: maxBytes as number });
      } catch (e) {
        if (e instanceof StoreError) throw new HttpError(507, `${e.message}; the setting was not changed`);
        throw e;
      }
      return json(settingsOf(api));
    });
}
