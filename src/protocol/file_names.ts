/**
 * File names from the network made safe to create on this host. A name a
 * peer sends is never taken as a path: each part of an offered relative
 * path becomes one safe file or folder name inside the transfer's folder.
 * Pure (no file system): the service checks what already exists on disk.
 *
 * What is made safe: `..` and `.`, absolute paths and drive letters (their
 * leading parts are dropped, not obeyed), control characters (C0, C1, DEL,
 * and the bidirectional overrides that make a name read backwards),
 * characters Windows forbids (`<>:"|?*\`), trailing dots and spaces,
 * reserved device names (`CON`, `NUL`, `COM1`…, whatever the extension),
 * names longer than 250 bytes (cut at a character, keeping the extension,
 * so that the `NAME.part` a download is written to fits in 255 too),
 * and names that differ only by case or Unicode normalization (NFC is
 * used; the second of two such names becomes `name (1).ext`).
 *
 * @module
 */

/** Most bytes (UTF-8) of one file or folder name: what Linux, macOS and Windows all take. */
export const MAX_NAME_BYTES = 255;
/** What a download is called while it comes: `NAME.part`. */
export const PART_SUFFIX = ".part";
/**
 * Most bytes of a received name: 255 less `.part`, so that the file being
 * written fits as well as the file it becomes. One rule for every name a
 * peer sends, lanchat's and IP Messenger's alike.
 */
export const RECEIVED_NAME_BYTES = MAX_NAME_BYTES - PART_SUFFIX.length;
/** Most parts (folders deep) an offered path may have. */
export const MAX_DEPTH = 32;
/** Most folders deep an IP Messenger folder stream may go: deeper, it is refused. */
export const MAX_FOLDER_DEPTH = 64;

const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)$/i;
// C0 and C1 controls, DEL, and the bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
// deno-lint-ignore no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069<>:"|?*\\]/g;

/**
 * One safe name for one part of a path: never empty, never `.` or `..`,
 * no separator, no control character, at most {@link RECEIVED_NAME_BYTES}
 * bytes (so that `NAME.part` fits in {@link MAX_NAME_BYTES}).
 */
export function safeName(part: string): string {
  let name = part.normalize("NFC").replace(UNSAFE_CHARS, "_").replaceAll("/", "_");
  // Trailing dots and spaces are dropped by Windows (and hide an extension); leading spaces confuse everyone.
  name = name.replace(/[. ]+$/, "").replace(/^ +/, "");
  if (name === "" || /^\.+$/.test(name)) return "_";
  const stem = name.includes(".") ? name.slice(0, name.indexOf(".")) : name;
  if (RESERVED.test(stem)) name = `_${name}`;
  return fitName(name);
}

/** Cuts a name to {@link RECEIVED_NAME_BYTES} bytes at a character boundary, keeping a short extension. */
export function fitName(name: string, max = RECEIVED_NAME_BYTES): string {
  const enc = new TextEncoder();
  if (enc.encode(name).length <= max) return name;
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : "";
  let stem = ext ? name.slice(0, dot) : name;
  const room = max - enc.encode(ext).length;
  // Cut whole code points (and never half a surrogate pair).
  const chars = [...stem];
  while (chars.length > 0 && enc.encode(chars.join("")).length > room) chars.pop();
  stem = chars.join("");
  return stem + ext;
}

/**
 * The safe parts of an offered relative path: separators (`/` and `\`)
 * split it, empty parts, `.` and `..` and a drive letter are dropped (a
 * path never climbs), and each remaining part goes through
 * {@link safeName}. Undefined when nothing is left (the name was only
 * separators and dots) or it is deeper than {@link MAX_DEPTH}.
 */
export function safeRelativePath(path: string): string[] | undefined {
  const parts = path.split(/[/\\]+/).filter((p, i) =>
    p !== "" && p !== "." && p !== ".." && !(i === 0 && /^[A-Za-z]:$/.test(p))
  );
  if (parts.length === 0 || parts.length > MAX_DEPTH) return undefined;
  return parts.map(safeName);
}

/** `name (n).ext` (the extension kept, as browsers and file managers do). */
export function numbered(name: string, n: number): string {
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  const suffix = ` (${n})${ext}`;
  return fitName(stem, RECEIVED_NAME_BYTES - new TextEncoder().encode(suffix).length) + suffix;
}

/** The key two names collide under on a case-insensitive, normalizing file system. */
export function collisionKey(name: string): string {
  return name.normalize("NFC").toLowerCase();
}

/**
 * Safe, distinct relative paths for the files of one offer, in order: two
 * offered paths that become the same (or differ only by case or
 * normalization) get `name (1).ext`, and so on. A file's path never passes
 * through a name another file uses as a folder. Undefined for a path that
 * has no safe parts left.
 */
export function safePaths(paths: readonly string[]): (string[] | undefined)[] {
  const taken = new Set<string>();
  const folders = new Map<string, string>();
  return paths.map((path) => {
    const parts = safeRelativePath(path);
    if (!parts) return undefined;
    // Folders: the same folder name (by collision key) is the same folder.
    const out: string[] = [];
    for (const part of parts.slice(0, -1)) {
      const key = collisionKey([...out, part].join("/"));
      let name = folders.get(key);
      if (name === undefined) {
        name = part;
        for (let n = 1; taken.has(collisionKey([...out, name].join("/"))); n++) name = numbered(part, n);
        folders.set(key, name);
        folders.set(collisionKey([...out, name].join("/")), name);
      }
      out.push(name);
    }
    const file = parts.at(-1)!;
    let name = file;
    for (
      let n = 1;
      taken.has(collisionKey([...out, name].join("/"))) || folders.has(collisionKey([...out, name].join("/")));
      n++
    ) name = numbered(file, n);
    taken.add(collisionKey([...out, name].join("/")));
    return [...out, name];
  });
}
