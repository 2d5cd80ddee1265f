/**
 * The software version, from deno.json: in hellos, `/status`, `--version`.
 *
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };

export const VERSION: string = denoJson.version;
