/**
 * Reads the QR codes `lanchat web --lan` prints back into pictures and
 * decodes them with jsQR (npm, pinned), as a phone's camera would see them
 * on a dark terminal: what proves the printed code opens the printed link.
 */
import jsqr from "jsqr";

/** jsQR's decoder (a CommonJS module: its function is its `default`). */
const jsQR = (jsqr as unknown as {
  default: (data: Uint8ClampedArray, w: number, h: number) => { data: string } | null;
}).default;

/** The QR codes in `text` (half-block lines, a light module as ink), decoded with jsQR. */
export function decodeQrs(text: string): string[] {
  // deno-lint-ignore no-control-regex
  text = text.replace(/\x1b\[[0-9;]*m/g, ""); // the colours of a terminal
  const blocks: string[][] = [];
  let cur: string[] = [];
  for (const line of text.split("\n")) {
    if (/^[█▀▄ ]+$/.test(line) && /[█▀▄]/.test(line)) cur.push(line);
    else if (cur.length) blocks.push(cur), cur = [];
  }
  if (cur.length) blocks.push(cur);
  return blocks.map((lines) => {
    const scale = 4;
    const w = Math.max(...lines.map((l) => [...l].length)) * scale;
    const h = lines.length * 2 * scale;
    const data = new Uint8ClampedArray(w * h * 4);
    lines.forEach((line, row) => {
      [...line].forEach((c, col) => {
        const top = c === "█" || c === "▀";
        const bottom = c === "█" || c === "▄";
        for (let dy = 0; dy < 2 * scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const light = dy < scale ? top : bottom;
            const i = (((row * 2 * scale) + dy) * w + col * scale + dx) * 4;
            data.fill(light ? 255 : 0, i, i + 3);
            data[i + 3] = 255;
          }
        }
      });
    });
    // A dark terminal: ink (light) on black, as a phone's camera sees it.
    return jsQR(data, w, h)?.data ?? "(no QR code found)";
  });
}
