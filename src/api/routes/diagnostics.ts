/**
 * `GET /diagnostics`: what the daemon knows that `lanchat doctor` needs to
 * say why someone sees nobody or cannot be reached (node/diagnostics.ts
 * builds it). Read-only, and its owner's: behind the token like every route
 * but `/healthz` (access.ts), since it names the peers and the paths of the
 * key file and the folders.
 *
 * @module
 */
import { HttpError, json } from "../request.ts";
import type { Api } from "../api.ts";
import { Router } from "../router.ts";

export type { DiagnosticsJson } from "../diagnostics_json.ts";

/** `/diagnostics`. */
export function diagnosticsRoutes(api: Api): Router {
  return new Router().get("/diagnostics", () => {
    if (!api.diagnostics) throw new HttpError(501, "This daemon keeps no diagnostics");
    return json(api.diagnostics());
  });
}
