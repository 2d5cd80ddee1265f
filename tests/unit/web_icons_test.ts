/**
 * The page can be installed: `/favicon.ico` is a real icon file, the
 * manifest parses and names icons that are served with their sizes, and
 * index.html links them; all of it to the owner's session only, as the page.
 */
import assert from "node:assert/strict";
import { type Api, createHandler, LOOPBACK_HOSTS, OneTimeCodes } from "../../src/api/http.ts";
import { loadWebAssets } from "../../src/node/web_assets.ts";
import { sessionValue } from "../../src/api/web_link.ts";

const TOKEN = "owner-token-icons";
const api = new Proxy({}, { get: () => () => [] }) as unknown as Api;

async function handler() {
  const web = await loadWebAssets();
  return createHandler(api, { token: TOKEN, codes: new OneTimeCodes(), allowedHosts: LOOPBACK_HOSTS, web });
}
const get = (path: string, cookie = true) =>
  new Request(`http://127.0.0.1:47476${path}`, {
    headers: { host: "127.0.0.1:47476", ...(cookie ? { cookie: `lanchat_session=${sessionValue(TOKEN)}` } : {}) },
  });

/** Width and height of a PNG (its IHDR). */
function pngSize(b: Uint8Array): [number, number] {
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG");
  const v = new DataView(b.buffer, b.byteOffset);
  return [v.getUint32(16), v.getUint32(20)];
}

Deno.test("favicon.ico, the manifest and its icons are served with their types; index.html links them", async () => {
  const h = await handler();
  const ico = await h(get("/favicon.ico"));
  assert.equal(ico.status, 200);
  assert.equal(ico.headers.get("content-type"), "image/x-icon");
  const icoBytes = new Uint8Array(await ico.arrayBuffer());
  const v = new DataView(icoBytes.buffer);
  assert.deepEqual([v.getUint16(0, true), v.getUint16(2, true)], [0, 1], "an ICO header");
  const count = v.getUint16(4, true);
  assert.ok(count >= 2);
  for (let i = 0; i < count; i++) {
    const e = 6 + 16 * i;
    const size = v.getUint8(e) || 256;
    const [len, at] = [v.getUint32(e + 8, true), v.getUint32(e + 12, true)];
    assert.deepEqual(pngSize(icoBytes.subarray(at, at + len)), [size, size]);
  }

  const res = await h(get("/manifest.webmanifest"));
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^application\/manifest\+json/);
  const manifest = await res.json();
  assert.equal(manifest.start_url, "/");
  assert.equal(manifest.display, "standalone");
  const sizes = new Set<string>();
  for (const icon of manifest.icons) {
    const r = await h(get(icon.src));
    assert.equal(r.status, 200, icon.src);
    assert.equal(r.headers.get("content-type"), icon.type);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    const body = new Uint8Array(await r.arrayBuffer());
    if (icon.type === "image/png") assert.equal(pngSize(body).join("x"), icon.sizes, icon.src);
    else assert.match(new TextDecoder().decode(body), /^<svg [^>]*viewBox/);
    sizes.add(icon.sizes);
  }
  assert.ok(sizes.has("192x192") && sizes.has("512x512") && sizes.has("any"));

  const html = await (await h(get("/"))).text();
  assert.match(html, /<link rel="manifest" href="\/manifest\.webmanifest" crossorigin="use-credentials">/);
  assert.match(html, /<link rel="icon" href="\/favicon\.ico"/);
  assert.match(html, /<link rel="icon" href="\/icons\/icon\.svg" type="image\/svg\+xml">/);
  // The page's policy lets it load its own manifest and nothing else.
  assert.match((await h(get("/"))).headers.get("content-security-policy")!, /manifest-src 'self'/);
});

Deno.test("the icons and manifest are the owner's, as the page: 401 without the session", async () => {
  const h = await handler();
  for (const path of ["/favicon.ico", "/manifest.webmanifest", "/icons/icon-192.png", "/icons/icon.svg"]) {
    assert.equal((await h(get(path, false))).status, 401, path);
  }
});
