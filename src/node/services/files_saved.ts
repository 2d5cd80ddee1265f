/**
 * Where the files of an incoming transfer went: the top-level names they
 * were saved under in its folder, which can differ from the names offered
 * (made safe, `name (1).ext` beside a file of that name), for `lanchat
 * accept` to say where they are.
 *
 * @module
 */
import { IPMSG_FILE } from "../../wire/ipmsg_files.ts";
import type { Transfer } from "./files_model.ts";

/** Most names listed: the rest are in the folder too. */
export const MAX_SAVED_NAMES = 200;

/**
 * The top-level names (a folder ends in "/") an incoming transfer that is
 * done saved its files under, as far as this run of the daemon knows them
 * (undefined when it does not: not done, or its list of files not read
 * since a restart).
 */
export function savedNames(t: Transfer): string[] | undefined {
  if (t.direction !== "in" || t.state !== "done") return undefined;
  const tops = new Set<string>();
  if (t.ipmsg) {
    const im = t.ipmsg;
    for (const [i, d] of im.dest.entries()) {
      if (d && im.done[i] && tops.size < MAX_SAVED_NAMES) tops.add(im.files[i]?.kind === IPMSG_FILE.DIR ? `${d}/` : d);
    }
  } else {
    if (!t.files) return undefined;
    for (const f of t.files) {
      if (!f.done || !f.dest || tops.size >= MAX_SAVED_NAMES) continue;
      const slash = f.dest.indexOf("/");
      tops.add(slash < 0 ? f.dest : f.dest.slice(0, slash + 1));
    }
  }
  return tops.size > 0 || t.count === 0 ? [...tops] : undefined;
}
