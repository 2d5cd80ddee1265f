/**
 * Pictures for the web page's tests and benchmark: real PNGs, drawn by the
 * browser (a canvas gradient), so no encoder is needed here.
 *
 * @module
 */
import type { Page } from "playwright-core";

/** A PNG of w×h drawn in `page` (a gradient from a colour of `hue`, 0–359), as bytes. */
export async function pngOf(page: Page, w: number, h: number, hue = 210): Promise<Uint8Array> {
  const b64 = await page.evaluate(`(() => {
    const c = document.createElement("canvas");
    c.width = ${w};
    c.height = ${h};
    const g = c.getContext("2d");
    const grad = g.createLinearGradient(0, 0, ${w}, ${h});
    grad.addColorStop(0, "hsl(${hue} 80% 45%)");
    grad.addColorStop(1, "hsl(${(hue + 150) % 360} 90% 60%)");
    g.fillStyle = grad;
    g.fillRect(0, 0, ${w}, ${h});
    return c.toDataURL("image/png").split(",")[1];
  })()`) as string;
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}
