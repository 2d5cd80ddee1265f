/**
 * The web page's files (web/ in the repository), read once at start and
 * served by the daemon itself: no CDN, no build step, nothing fetched from
 * elsewhere (the LAN may have no internet). Every file of web/ and its
 * folders (not hidden ones) whose kind is known is served under its path:
 * the page's ES modules and other files are added by adding them there.
 * The icons and the manifest (installing the page to a phone's home screen)
 * are drawn by scripts/make_icons.ts from web/icons/icon.svg.
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
  webmanifest: "application/manifest+json; charset=utf-8",
};

/** The page's files by path; an empty map (no page, the API only) when they cannot be read. */
export async function loadWebAssets(dir = new URL("../../web/", import.meta.url)): Promise<Map<string, WebAsset>> {
  const out = new Map<string, WebAsset>();
  const walk = async (folder: URL, prefix: string, depth: number) => {
    for await (const entry of Deno.readDir(folder)) {
      if (entry.name.startsWith(".")) continue;
      if (entry.isDirectory && depth < 2) {
        await walk(new URL(`${entry.name}/`, folder), `${prefix}${entry.name}/`, depth + 1);
      }
      const type = TYPES[entry.name.split(".").pop() ?? ""];
      if (!entry.isFile || type === undefined) continue;
      const path = prefix === "/" && entry.name === "index.html" ? "/" : `${prefix}${entry.name}`;
      out.set(path, { body: await Deno.readFile(new URL(entry.name, folder)), type });
    }
  };
  try {
    await walk(dir, "/", 0);
    if (!out.has("/")) out.clear();
  } catch {
    out.clear();
  }
  return out;
}
