/**
 * The web page's files (web/ in the repository), read once at start and
 * served by the daemon itself: no CDN, no build step, nothing fetched from
 * elsewhere (the LAN may have no internet). Every file of web/ and of
 * web/icons/ (not other folders, nor hidden files) whose kind is known is
 * served under its name: the page's ES modules and other files are added by
 * adding them there. The icons and the manifest (installing the page to a
 * phone's home screen) are drawn by scripts/make_icons.ts from
 * web/icons/icon.svg.
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

/** The folders of web/ whose files are served: web/ itself and its icons. */
const FOLDERS = ["", "icons/"];

/** The page's files by path; an empty map (no page, the API only) when they cannot be read. */
export async function loadWebAssets(dir = new URL("../../web/", import.meta.url)): Promise<Map<string, WebAsset>> {
  const out = new Map<string, WebAsset>();
  try {
    for (const folder of FOLDERS) {
      const at = new URL(folder, dir);
      if (folder !== "" && !(await Deno.stat(at).then((s) => s.isDirectory, () => false))) continue;
      for await (const entry of Deno.readDir(at)) {
        const type = TYPES[entry.name.split(".").pop() ?? ""];
        if (!entry.isFile || entry.name.startsWith(".") || type === undefined) continue;
        const path = folder === "" && entry.name === "index.html" ? "/" : `/${folder}${entry.name}`;
        out.set(path, { body: await Deno.readFile(new URL(entry.name, at)), type });
      }
    }
    if (!out.has("/")) out.clear();
  } catch {
    out.clear();
  }
  return out;
}
