/**
 * What a received or sent file may be shown as, from its first bytes only:
 * PNG, JPEG, GIF and WebP are pictures a browser may draw inline; anything
 * else (SVG, HTML, text, unknown) is bytes to save, never a type a browser
 * would run. A file's name or a peer's word is never asked. Also how an
 * offer is told to be pictures before its bytes come (by name, for the
 * auto-accept setting, whose files are sniffed once they are here), and the
 * `Content-Disposition` a file is served with.
 *
 * @module
 */
import { safeName } from "./file_names.ts";

/** The raster types served inline. */
export type ImageType = "image/png" | "image/jpeg" | "image/gif" | "image/webp";

/** Bytes of a file's head {@link sniffImage} needs. */
export const SNIFF_BYTES = 12;

const ascii = (b: Uint8Array, at: number, s: string) => [...s].every((c, i) => b[at + i] === c.charCodeAt(0));

/**
 * The raster type a file's first bytes say it is, or undefined for anything
 * else (an SVG, HTML or text file named `.png` is undefined).
 */
export function sniffImage(head: Uint8Array): ImageType | undefined {
  const b = head;
  if (b.length >= 8 && [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((x, i) => b[i] === x)) {
    return "image/png";
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
  if (b.length >= 6 && (ascii(b, 0, "GIF87a") || ascii(b, 0, "GIF89a"))) return "image/gif";
  if (b.length >= 12 && ascii(b, 0, "RIFF") && ascii(b, 8, "WEBP")) return "image/webp";
  return undefined;
}

/** Bytes of a file's head {@link imageSize} looks in (a JPEG's size may come after its EXIF, up to 64 KiB). */
export const HEAD_BYTES = 128 * 1024;

/**
 * A picture's width and height in pixels, as its header says (nothing is
 * decoded), so that a page can leave alone a picture that would take
 * gigabytes to draw (a "decompression bomb": a few kilobytes of PNG that
 * say 50,000 × 50,000); undefined when the head does not say.
 */
export function imageSize(head: Uint8Array, type: ImageType): { width: number; height: number } | undefined {
  const b = head;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ok = (width: number, height: number) => width > 0 && height > 0 ? { width, height } : undefined;
  try {
    switch (type) {
      case "image/png":
        return ascii(b, 12, "IHDR") ? ok(dv.getUint32(16), dv.getUint32(20)) : undefined;
      case "image/gif":
        return ok(dv.getUint16(6, true), dv.getUint16(8, true));
      case "image/webp": {
        if (ascii(b, 12, "VP8 ")) return ok(dv.getUint16(26, true) & 0x3fff, dv.getUint16(28, true) & 0x3fff);
        if (ascii(b, 12, "VP8L") && b[20] === 0x2f) {
          const bits = dv.getUint32(21, true);
          return ok((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
        }
        if (ascii(b, 12, "VP8X")) {
          const le24 = (at: number) => b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16);
          return ok(le24(24) + 1, le24(27) + 1);
        }
        return undefined;
      }
      case "image/jpeg": {
        // Segments after SOI until a start of frame (SOF0–SOF15 but DHT C4, JPG C8, DAC CC).
        let at = 2;
        while (at + 9 <= b.length) {
          if (b[at] !== 0xff) return undefined;
          const marker = b[at + 1]!;
          if (marker === 0xff) {
            at++;
            continue;
          }
          if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
            return ok(dv.getUint16(at + 7), dv.getUint16(at + 5));
          }
          if (marker === 0xd9 || marker === 0xda) return undefined;
          at += 2 + (marker >= 0xd0 && marker <= 0xd7 || marker === 0x01 ? 0 : dv.getUint16(at + 2));
        }
        return undefined;
      }
    }
  } catch {
    return undefined; // a head cut short
  }
}

/** A name that says it is a PNG, JPEG, GIF or WebP (what an offer's note shows before the bytes come). */
export function imageName(name: string): boolean {
  return /\.(png|jpe?g|gif|webp)$/i.test(name);
}

/** The auto-accept-images setting. */
export interface AutoAcceptImages {
  enabled: boolean;
  maxBytes: number;
}

/** The setting's default: off, 10 MiB when turned on. */
export const AUTO_ACCEPT_IMAGES_DEFAULT: AutoAcceptImages = { enabled: false, maxBytes: 10 * 1024 * 1024 };
/** The largest `maxBytes` the setting takes. */
export const AUTO_ACCEPT_IMAGES_MAX = 64 * 1024 * 1024;

/**
 * Whether an offer is accepted without asking under the auto-accept-images
 * setting: the setting on, the sender's key verified by a person (not first
 * seen, not a changed key), at most `maxBytes` in all, and every file named
 * a picture at the top level (no folder; every name listed).
 */
export function autoAcceptsImages(
  setting: AutoAcceptImages,
  offer: { count: number; bytes: number; names: string[] },
  senderTrust: "trusted" | "tofu" | "conflict" | "replaced" | undefined,
): boolean {
  return setting.enabled && senderTrust === "trusted" && offer.count > 0 && offer.bytes <= setting.maxBytes &&
    offer.names.length === offer.count && offer.names.every((n) => !n.endsWith("/") && imageName(n));
}

/**
 * Why a file of an offer accepted under the auto-accept-images setting is
 * not one the setting takes, or undefined when it is: its manifest path (and
 * the name it is written under) a picture's name at the top level, its size
 * within `maxBytes`. What the decision was taken on (the note) is checked
 * again on what comes (the manifest), so a note that lies takes nothing.
 */
export function notAutoAccepted(path: string, size: number, maxBytes: number, dest = path): string | undefined {
  const q = JSON.stringify(path).slice(0, 100);
  if (path.includes("/") || dest.includes("/")) return `${q} is in a folder, not a picture at the top level`;
  if (!imageName(path) || !imageName(dest)) return `${q} is not named as a picture (PNG, JPEG, GIF or WebP)`;
  if (size > maxBytes) return `${q} is larger (${size} bytes) than pictures taken without asking (${maxBytes})`;
  return undefined;
}

/** Characters RFC 8187's `attr-char` lets through unencoded. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

/**
 * `inline` or `attachment` with the file's name as `filename*=UTF-8''…`
 * (RFC 6266 / 8187): the name made safe as a received file's is (no
 * control, bidi or path characters), then every byte outside `attr-char`
 * percent-encoded, so no quote, CR or LF ever reaches the header.
 */
export function contentDisposition(kind: "inline" | "attachment", name: string): string {
  const safe = safeName(name.slice(name.lastIndexOf("/") + 1));
  let out = "";
  for (const byte of new TextEncoder().encode(safe)) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && ATTR_CHAR.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return `${kind}; filename*=UTF-8''${out}`;
}
