/**
 * Draws the web page's icons from web/icons/icon.svg: PNGs of 192 and 512
 * pixels (the manifest's) and favicon.ico (16, 32 and 48 pixels, PNG
 * inside, as every browser of the last decade reads it). Run after changing
 * the SVG: `deno run -A scripts/make_icons.ts`. Uses Debian's chromium
 * (through playwright-core) to rasterise, so nothing else is needed.
 *
 * @module
 */
import { chromium } from "playwright-core";

const dir = new URL("../web/icons/", import.meta.url);
const svg = await Deno.readTextFile(new URL("icon.svg", dir));
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  const png = async (size: number) => {
    await page.setViewportSize({ width: size, height: size });
    await page.setContent(
      `<html><body style="margin:0;background:transparent">` +
        svg.replace("<svg ", `<svg width="${size}" height="${size}" `) + `</body></html>`,
    );
    return new Uint8Array(await page.screenshot({ omitBackground: true, type: "png" }));
  };
  for (const size of [192, 512]) await Deno.writeFile(new URL(`icon-${size}.png`, dir), await png(size));
  const small = [16, 32, 48];
  const images = [];
  for (const size of small) images.push(await png(size));
  // ICONDIR (6 bytes), an ICONDIRENTRY (16 bytes) per image, then the PNGs.
  const head = new DataView(new ArrayBuffer(6 + 16 * images.length));
  head.setUint16(2, 1, true);
  head.setUint16(4, images.length, true);
  let offset = head.byteLength;
  images.forEach((img, i) => {
    const e = 6 + 16 * i;
    head.setUint8(e, small[i]!);
    head.setUint8(e + 1, small[i]!);
    head.setUint16(e + 4, 1, true); // colour planes
    head.setUint16(e + 6, 32, true); // bits per pixel
    head.setUint32(e + 8, img.byteLength, true);
    head.setUint32(e + 12, offset, true);
    offset += img.byteLength;
  });
  const ico = new Uint8Array(offset);
  ico.set(new Uint8Array(head.buffer), 0);
  let at = head.byteLength;
  for (const img of images) {
    ico.set(img, at);
    at += img.byteLength;
  }
  await Deno.writeFile(new URL("../favicon.ico", dir), ico);
} finally {
  await browser.close();
}
