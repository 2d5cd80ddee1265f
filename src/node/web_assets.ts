/**
 * The web page's files (web/ in the repository), read once at start and
 * served by the daemon itself: no CDN, no build step, nothing fetched from
 * elsewhere (the LAN may have no internet). Every file of web/ (not its
 * folders, nor hidden files) whose kind is known is served under its name:
 * the page's ES modules and other files are added by adding them there.
 *
 * @module
 */
import type { WebAsset } from "../api/http.ts";

/** Content types by file extension: a file of another kind in web/ is not served. */
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  webmanifest: "application/manifest+json",
};

/** The page's files by path; an empty map (no page, the API only) when they cannot be read. */
export async function loadWebAssets(dir = new URL("../../web/", import.meta.url)): Promise<Map<string, WebAsset>> {
  const out = new Map<string, WebAsset>();
  try {
    for await (const entry of Deno.readDir(dir)) {
      const type = TYPES[entry.name.split(".").pop() ?? ""];
      if (!entry.isFile || entry.name.startsWith(".") || type === undefined) continue;
      const path = entry.name === "index.html" ? "/" : `/${entry.name}`;
      out.set(path, { body: await Deno.readFile(new URL(entry.name, dir)), type });
    }
    if (!out.has("/")) out.clear();
  } catch {
    out.clear();
  }
  return out;
}
