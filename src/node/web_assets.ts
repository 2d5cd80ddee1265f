/**
 * The web page's files (web/ in the repository), read once at start and
 * served by the daemon itself: no CDN, no build step, nothing fetched from
 * elsewhere (the LAN may have no internet). The icons and the manifest
 * (installing the page to a phone's home screen) are drawn by
 * scripts/make_icons.ts from web/icons/icon.svg.
 *
 * @module
 */
import type { WebAsset } from "../api/http.ts";

const FILES: [string, string, string][] = [
  ["/", "index.html", "text/html; charset=utf-8"],
  ["/app.js", "app.js", "text/javascript; charset=utf-8"],
  ["/app.css", "app.css", "text/css; charset=utf-8"],
  ["/favicon.ico", "favicon.ico", "image/x-icon"],
  ["/manifest.webmanifest", "manifest.webmanifest", "application/manifest+json; charset=utf-8"],
  ["/icons/icon.svg", "icons/icon.svg", "image/svg+xml"],
  ["/icons/icon-192.png", "icons/icon-192.png", "image/png"],
  ["/icons/icon-512.png", "icons/icon-512.png", "image/png"],
];

/** The page's files by path; an empty map (no page, the API only) when they cannot be read. */
export async function loadWebAssets(dir = new URL("../../web/", import.meta.url)): Promise<Map<string, WebAsset>> {
  const out = new Map<string, WebAsset>();
  try {
    for (const [path, file, type] of FILES) out.set(path, { body: await Deno.readFile(new URL(file, dir)), type });
  } catch {
    out.clear();
  }
  return out;
}
