/**
 * Pictures in the page (web/images.js, web/settings.js) between two
 * daemons: an image sent from page A shows as a thumbnail in page B once
 * received (and in A at once), opens full size in a dialog; an SVG, an
 * HTML file and HTML named .png are never shown inline; pasting and
 * dropping an image send it; auto-accept, set in the page, takes a verified
 * peer's image without asking and leaves an unverified peer's waiting.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { type DaemonProcess, freeUdpPort, startLoopbackDaemon } from "../support/daemon_process.ts";
import { axeViolations, browserTest, holds, livePage } from "../support/browser.ts";
import { pngOf as png } from "../support/pictures.ts";

/** Puts files in `page` by an event on `target` (a paste on the composer, a drop on the conversation). */
async function dispatchFiles(
  page: Page,
  target: string,
  kind: "paste" | "drop",
  files: { name: string; type: string; bytes: Uint8Array }[],
): Promise<void> {
  const list = JSON.stringify(
    files.map((f) => ({ name: f.name, type: f.type, b64: btoa(String.fromCharCode(...f.bytes)) })),
  );
  await page.evaluate(`(() => {
    const dt = new DataTransfer();
    for (const f of ${list}) {
      dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
    }
    const init = { bubbles: true, cancelable: true };
    const e = ${JSON.stringify(kind)} === "paste"
      ? new ClipboardEvent("paste", { ...init, clipboardData: dt })
      : new DragEvent("drop", { ...init, dataTransfer: dt });
    document.querySelector(${JSON.stringify(target)}).dispatchEvent(e);
  })()`);
}

/** What the daemon serves for a transfer's file: type, disposition, nosniff. */
async function served(httpUrl: string, url: string): Promise<[string, string, string]> {
  const r = await fetch(`${httpUrl}${url}`);
  await r.body?.cancel();
  return [
    r.headers.get("content-type") ?? "",
    r.headers.get("content-disposition") ?? "",
    r.headers.get("x-content-type-options") ?? "",
  ];
}

/** alice's daemon and bob's (saving into `work`/dl), each knowing the other. */
async function aliceAndBob(work: string): Promise<{ a: DaemonProcess; b: DaemonProcess }> {
  const port = freeUdpPort();
  const a = await startLoopbackDaemon(port, "alice").started();
  const b = await startLoopbackDaemon(port, "bob", { extra: ["--downloads", `${work}/dl`] }).started();
  await a.joined(b.id, 5000);
  await b.joined(a.id, 5000);
  return { a, b };
}

browserTest(
  "an image sent from page A shows as a thumbnail in page B once received and opens full size; SVG and HTML are never shown inline; paste and drop send images",
  async (browser, tempDir) => {
    const work = tempDir();
    const { a, b } = await aliceAndBob(work);
    const pageA = await livePage(browser, `${await a.webLink()}#peer=${b.id}`);
    const pageB = await livePage(browser, `${await b.webLink()}#peer=${a.id}`);
    const errors: string[] = [];
    for (const p of [pageA, pageB]) p.on("pageerror", (e) => errors.push(e.message));
    await pageA.locator("#composer").waitFor({ state: "visible", timeout: 10_000 });
    await pageB.locator("#composer").waitFor({ state: "visible", timeout: 10_000 });

    const photo = await png(pageA, 640, 480);
    await Deno.writeFile(`${work}/photo 照片.png`, photo);
    await pageA.setInputFiles("#file-input", `${work}/photo 照片.png`);
    // A: its own picture at once, on its offer.
    const thumbA = pageA.locator("#messages li.out .thumb img");
    await thumbA.waitFor({ timeout: 15_000 });
    // B: an offer to accept; once received, the thumbnail.
    await pageB.locator("#transfers .transfer", { hasText: "photo 照片.png" }).locator("button", { hasText: "Accept" })
      .click({ timeout: 15_000 });
    const thumbB = pageB.locator("#messages li.in .thumb img");
    await thumbB.waitFor({ timeout: 15_000 });
    await holds(
      pageB,
      `[...document.querySelectorAll("#messages .thumb img")].some((i) => i.complete && i.naturalWidth === 640)`,
      10_000,
    );
    assert.equal(await thumbB.getAttribute("alt"), "photo 照片.png");
    const src = (await thumbB.getAttribute("src"))!;
    assert.match(src, /^\/transfers\/[0-9a-f]+\/files\/0$/);
    assert.deepEqual((await served(b.httpUrl, src)).slice(0, 1), ["image/png"]);
    // A click opens it full size; Esc closes it.
    await thumbB.click();
    await pageB.locator("#image-dialog[open]").waitFor({ timeout: 5000 });
    await holds(pageB, `document.getElementById("image-full").naturalWidth === 640`, 10_000);
    assert.match(await pageB.locator("#image-name").innerText(), /photo 照片\.png/);
    await pageB.screenshot({ path: new URL("../../docs/web-image.png", import.meta.url).pathname });
    assert.deepEqual(await axeViolations(pageB), [], "the picture's dialog");
    await pageB.keyboard.press("Escape");
    await pageB.locator("#image-dialog[open]").waitFor({ state: "detached", timeout: 5000 });

    // Hostile files: an SVG with script, HTML, and HTML named .png. Each arrives; none is shown.
    await Deno.writeTextFile(
      `${work}/evil.svg`,
      `<svg xmlns="http://www.w3.org/2000/svg" onload="parent.pwned=1"><script>parent.pwned=1</script></svg>`,
    );
    await Deno.writeTextFile(`${work}/evil.html`, `<script>parent.pwned=1</script><h1>hi</h1>`);
    await Deno.writeTextFile(`${work}/fake.png`, `<html><script>parent.pwned=1</script></html>`);
    for (const name of ["evil.svg", "evil.html", "fake.png"]) {
      await pageA.setInputFiles("#file-input", `${work}/${name}`);
      await pageB.locator("#transfers .transfer", { hasText: name }).locator("button", { hasText: "Accept" })
        .click({ timeout: 15_000 });
      await pageB.locator("#transfers .transfer", { hasText: name }).filter({ hasText: "done" }).waitFor({
        timeout: 15_000,
      });
    }
    const transfers: { names: string[]; images?: unknown[]; id: string }[] =
      await (await fetch(`${b.httpUrl}/transfers`)).json();
    for (const name of ["evil.svg", "evil.html", "fake.png"]) {
      const t = transfers.find((x) => x.names.includes(name))!;
      assert.equal(t.images, undefined, `${name} is not a picture`);
      const [type, disposition, nosniff] = await served(b.httpUrl, `/transfers/${t.id}/files/0`);
      assert.equal(type, "application/octet-stream");
      assert.match(disposition, /^attachment/);
      assert.equal(nosniff, "nosniff");
    }
    for (const page of [pageA, pageB]) {
      assert.equal(await page.locator("#messages .thumb img").count(), 1, "only the photo is shown");
      assert.equal(await page.locator("iframe, object, embed, svg").count(), 0);
      assert.equal(await page.evaluate(() => (globalThis as { pwned?: number }).pwned), undefined);
    }

    // Paste an image into the composer, drop another on the conversation: both are offered.
    const small = await png(pageA, 32, 24);
    await dispatchFiles(pageA, "#text", "paste", [{ name: "image.png", type: "image/png", bytes: small }]);
    await pageB.locator("#transfers .transfer", { hasText: /Pasted image .*\.png/ }).waitFor({ timeout: 15_000 });
    await dispatchFiles(pageA, "#conversation", "drop", [{ name: "dropped.png", type: "image/png", bytes: small }]);
    await pageB.locator("#transfers .transfer", { hasText: "dropped.png" }).waitFor({ timeout: 15_000 });
    await holds(pageA, `document.querySelectorAll("#messages li.out .thumb img").length === 3`, 15_000);
    assert.deepEqual(errors, []);
  },
);

browserTest(
  "auto-accept set in the page's Settings: a verified peer's image arrives without asking, an unverified peer's waits",
  async (browser, tempDir) => {
    const work = tempDir();
    const { a, b } = await aliceAndBob(work);
    const pageB = await livePage(browser, `${await b.webLink()}#peer=${a.id}`);
    const errors: string[] = [];
    pageB.on("pageerror", (e) => errors.push(e.message));
    await pageB.click("#settings-button");
    await pageB.locator("#settings-dialog[open]").waitFor({ timeout: 5000 });
    assert.equal(await pageB.isChecked("#auto-accept"), false, "off by default");
    assert.deepEqual(await axeViolations(pageB), [], "the settings dialog");
    await pageB.check("#auto-accept");
    await pageB.fill("#auto-accept-mb", "2");
    await pageB.click("#settings-form button[type='submit']");
    await pageB.locator("#settings-dialog[open]").waitFor({ state: "detached", timeout: 5000 });
    assert.deepEqual((await (await fetch(`${b.httpUrl}/settings`)).json()).autoAcceptImages, {
      enabled: true,
      maxBytes: 2_000_000,
    });
    // A size the daemon refuses: the dialog says why and stays open.
    await pageB.click("#settings-button");
    await pageB.locator("#settings-dialog[open]").waitFor({ timeout: 5000 });
    await pageB.fill("#auto-accept-mb", "500");
    await pageB.click("#settings-form button[type='submit']");
    await pageB.locator("#settings-error", { hasText: /Not saved: .*maxBytes/ }).waitFor({ timeout: 5000 });
    await pageB.keyboard.press("Escape");

    const photo = await png(pageB, 200, 100);
    await Deno.writeFile(`${work}/one.png`, photo);
    const send = (name: string) =>
      fetch(`${a.httpUrl}/files`, {
        method: "POST",
        body: JSON.stringify({ to: b.id, paths: [`${work}/${name}`] }),
      }).then((r) => r.json());
    // Alice's key is not verified at bob's: her picture waits for Accept.
    await send("one.png");
    await pageB.locator("#transfers .transfer", { hasText: "one.png" }).locator("button", { hasText: "Accept" })
      .waitFor({ timeout: 15_000 });
    assert.equal(await pageB.locator("#messages .thumb img").count(), 0);
    // Verified: the next one comes in by itself and shows.
    const trusted = await fetch(`${b.httpUrl}/trust`, { method: "POST", body: JSON.stringify({ peer: a.id }) });
    assert.equal(trusted.status, 200);
    await Deno.copyFile(`${work}/one.png`, `${work}/two.png`);
    await send("two.png");
    const thumb = pageB.locator("#messages li.in .thumb img[alt='two.png']");
    await thumb.waitFor({ timeout: 15_000 });
    assert.deepEqual(await Deno.readFile(`${work}/dl/two.png`), photo);
    // The setting is kept: the dialog shows it again (it opens once the daemon has answered).
    await pageB.click("#settings-button");
    await pageB.locator("#settings-dialog[open]").waitFor({ timeout: 5000 });
    assert.equal(await pageB.isChecked("#auto-accept"), true);
    assert.equal(await pageB.inputValue("#auto-accept-mb"), "2");
    assert.deepEqual(errors, []);
  },
);
