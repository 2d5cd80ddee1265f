/**
 * A QR code in the terminal, for `lanchat web --lan`: the symbol from the
 * `qrcode` package (npm, node-qrcode), drawn two modules to a character
 * with half blocks, light modules as ink (what a dark terminal shows as
 * light), in a quiet zone of 4 modules, as the standard asks (the terminal
 * around it is dark). On a terminal (and without NO_COLOR) it is painted
 * bright white on black, so a light theme shows it the right way round too.
 *
 * @module
 */
import QRCode from "qrcode";

/** The QR modules of `text` (true: dark), row by row, with low error correction (the smallest symbol). */
export function qrModules(text: string): boolean[][] {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: "L" }) as {
    modules: { size: number; data: Uint8Array };
  };
  const rows: boolean[][] = [];
  for (let y = 0; y < modules.size; y++) {
    rows.push(Array.from(modules.data.subarray(y * modules.size, (y + 1) * modules.size), (v) => v === 1));
  }
  return rows;
}

const QUIET = 4;

/** `text` as a QR code in lines of half blocks (a light module is ink); `color` paints it white on black. */
export function qrText(text: string, color = false): string {
  const inner = qrModules(text);
  const size = inner.length + 2 * QUIET;
  const dark = (x: number, y: number) => inner[y - QUIET]?.[x - QUIET] ?? false;
  const lines: string[] = [];
  for (let y = 0; y < size; y += 2) {
    let line = "";
    for (let x = 0; x < size; x++) {
      const top = !dark(x, y);
      const bottom = y + 1 < size ? !dark(x, y + 1) : false;
      line += top && bottom ? "█" : top ? "▀" : bottom ? "▄" : " ";
    }
    lines.push(color ? `\x1b[97;40m${line}\x1b[0m` : line);
  }
  return lines.join("\n");
}
