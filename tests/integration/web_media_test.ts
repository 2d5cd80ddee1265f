/**
 * Pictures served to a real browser (Debian's chromium, headless, through
 * playwright-core): a PNG draws, an SVG or HTML file named .png never
 * renders or runs (opened in a tab it is saved as a download; as an <img> it
 * draws nothing), and a GIF/HTML polyglot opened in a tab is drawn as a
 * picture and runs nothing. Ignored, saying why, where chromium is not
 * installed.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import type { TransferJson } from "../../src/api/types.ts";
import { freeUdpPort, killAll, startLoopbackDaemon, until } from "../support/daemon_process.ts";
import { Buffer } from "node:buffer";

const CHROMIUM = "/usr/bin/chromium";
const unavailable = await Deno.stat(CHROMIUM).then(
  () => undefined,
  () => `${CHROMIUM} is not installed (apt-get install chromium)`,
);

const PNG = new Uint8Array(Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
));

Deno.test({
  name:
    "in a browser a PNG draws, an SVG or HTML named .png is saved and never drawn or run, a GIF/HTML polyglot runs nothing",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const src = Deno.makeTempDirSync({ prefix: "lanchat-src-" });
    const downloads = Deno.makeTempDirSync({ prefix: "lanchat-dl-" });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const port = freeUdpPort();
      const a = await startLoopbackDaemon(port, "alice").started();
      const b = await startLoopbackDaemon(port, "bob", { extra: ["--downloads", downloads] }).started();
      await a.joined(b.id, 5000);
      await b.joined(a.id, 5000);
      const files: Record<string, string | Uint8Array> = {
        "real.png": PNG,
        "svg.png": '<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50" onload="alert(\'svg\')">' +
          '<script>alert("svg script")</script><rect width="50" height="50"/></svg>',
        "page.png": "<!doctype html><html><body><script>alert('html')</script><h1>hi</h1></body></html>",
        "gifar.gif": "GIF89a<html><body><script>alert('polyglot')</script></body></html>",
      };
      for (const [name, body] of Object.entries(files)) {
        await (typeof body === "string"
          ? Deno.writeTextFile(`${src}/${name}`, body)
          : Deno.writeFile(`${src}/${name}`, body));
      }
      const offered = await fetch(`${a.httpUrl}/files`, {
        method: "POST",
        body: JSON.stringify({ to: "bob", paths: Object.keys(files).map((n) => `${src}/${n}`) }),
      });
      const id = ((await offered.json()) as TransferJson).id;
      const stateOf = async () => ((await (await fetch(`${b.httpUrl}/transfers/${id}`)).json()) as TransferJson).state;
      await until("the offer to reach bob", async () => await stateOf() === "offered", 10_000);
      await (await fetch(`${b.httpUrl}/transfers/${id}/accept`, { method: "POST", body: "{}" })).body?.cancel();
      await until("the files to arrive", async () => await stateOf() === "done", 15_000);

      const context = await browser.newContext({ acceptDownloads: true });
      const page = await context.newPage();
      const dialogs: string[] = [];
      page.on("dialog", (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(await b.webLink());
      await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
      const url = (n: number) => `${b.httpUrl}/transfers/${id}/files/${n}`;

      // As <img> in the page (as a thumbnail would be): only the PNG draws.
      const urls = JSON.stringify([0, 1, 2].map(url));
      const widths = await page.evaluate(`Promise.all(${urls}.map((u) => new Promise((resolve) => {
        const img = document.createElement("img");
        img.onload = () => resolve(img.naturalWidth);
        img.onerror = () => resolve(-1);
        img.src = u;
        document.body.append(img);
      })))`);
      assert.deepEqual(widths, [1, -1, -1]);

      // Opened in a tab of their own: the SVG and the HTML are downloads, never documents.
      for (const n of [1, 2]) {
        const tab = await context.newPage();
        tab.on("dialog", (d) => {
          dialogs.push(d.message());
          void d.dismiss();
        });
        const [download] = await Promise.all([
          tab.waitForEvent("download", { timeout: 10_000 }),
          tab.goto(url(n)).catch(() => undefined),
        ]);
        assert.equal(download.suggestedFilename(), n === 1 ? "svg.png" : "page.png");
        await tab.close();
      }
      // The polyglot: a GIF as far as the browser is concerned, sandboxed; its script never runs.
      const tab = await context.newPage();
      tab.on("dialog", (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      const res = await tab.goto(url(3));
      assert.equal(res?.headers()["content-type"], "image/gif");
      await tab.waitForTimeout(500);
      assert.equal(await tab.evaluate("document.contentType"), "image/gif");
      assert.equal(await tab.locator("script").count(), 0);
      assert.deepEqual(dialogs, []);
    } finally {
      await browser.close();
      await killAll();
      for (const d of [src, downloads]) await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  },
});
