/**
 * lanchat: LAN discovery and messaging. The CLI entry point.
 *
 * @example Run the daemon, then list peers
 * ```sh
 * deno task start
 * deno task lanchat peers
 * ```
 * @module
 */
import { run } from "./src/cli/program.ts";

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
