/**
 * IP Messenger's file transfer, the bytes: the attachment list a `SENDMSG`
 * with `FILEATTACHOPT` carries after its text, the `GETFILEDATA` and
 * `GETDIRFILES` requests (sent over TCP to the sender's port 2425), and the
 * headers of a folder's stream. Pure: no I/O; malformed input is a returned
 * undefined, never a throw.
 *
 * ```
 * attachment  fileID(decimal):name:size(hex):mtime(hex):attr(hex)[:ext=val…]:\a   (":" in a name is written "::")
 * GETFILEDATA packetNo(hex):fileID(hex):offset(hex)  → the file's bytes from offset, then close
 * GETDIRFILES packetNo(hex):fileID(hex)               → entries: header, then a regular file's bytes
 * header      headerSize(4 hex, counting itself):name:size(hex):attr(hex)[:ext=val…]:
 * ```
 *
 * As iptux does, the file id is written in decimal in the offer and read as
 * hexadecimal in a request (then as decimal when no such id exists).
 *
 * @module
 */

/** Modes of a file attribute (its low 8 bits). */
export const IPMSG_FILE = { REGULAR: 1, DIR: 2, RETPARENT: 3 } as const;
/** Extended attributes: modification and creation time. */
export const IPMSG_FILE_MTIME = 0x14;
export const IPMSG_FILE_CREATETIME = 0x16;
/** More attachments than this in one message are ignored. */
export const MAX_ATTACHMENTS = 1000;

export interface IpmsgAttachment {
  id: number;
  name: string;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** IPMSG_FILE.REGULAR or IPMSG_FILE.DIR (the mode; option bits dropped). */
  kind: number;
}

const HEX = /^[0-9a-fA-F]{1,16}$/;
const DEC = /^\d{1,10}$/;

/** Splits on single ":" (a doubled "::" is a ":" in a name). */
function fields(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === ":" && s[i + 1] === ":") {
      cur += ":";
      i++;
    } else if (c === ":") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** The attachments of a message's second extra part; the malformed ones are left out. */
export function parseAttachments(part: string): IpmsgAttachment[] {
  const out: IpmsgAttachment[] = [];
  for (let entry of part.split("\u0007")) {
    if (out.length >= MAX_ATTACHMENTS) break;
    entry = entry.replace(/^:/, "");
    if (entry.trim() === "") continue;
    const f = fields(entry);
    const [id, name, size, mtime, attr] = f;
    if (!id || !DEC.test(id) || !name || !size || !HEX.test(size) || !attr || !HEX.test(attr)) continue;
    const kind = parseInt(attr, 16) & 0xff;
    if (kind !== IPMSG_FILE.REGULAR && kind !== IPMSG_FILE.DIR) continue;
    const bytes = parseInt(size, 16);
    if (!Number.isSafeInteger(bytes)) continue;
    out.push({
      id: Number(id),
      name,
      size: bytes,
      mtime: mtime && HEX.test(mtime) ? parseInt(mtime, 16) : 0,
      kind,
    });
  }
  return out;
}

/** The attachment part of a message offering these (names with ":" doubled). */
export function formatAttachments(files: readonly IpmsgAttachment[]): string {
  return files.map((f) =>
    `${f.id}:${f.name.replaceAll(":", "::")}:${f.size.toString(16)}:${f.mtime.toString(16)}:${
      f.kind.toString(16)
    }:\u0007`
  ).join("");
}

/** The extra field of a GETFILEDATA request. */
export function getFileDataExtra(packetNo: number, fileId: number, offset: number): string {
  return `${packetNo.toString(16)}:${fileId.toString(16)}:${offset.toString(16)}`;
}

/** The extra field of a GETDIRFILES request. */
export function getDirFilesExtra(packetNo: number, fileId: number): string {
  return `${packetNo.toString(16)}:${fileId.toString(16)}:0`;
}

/**
 * A request's packet number, file id(s) and offset, from its extra field:
 * `ids` holds the id read as hexadecimal, then as decimal (see the module).
 */
export function parseFileRequest(extra: string): { packetNo: number; ids: number[]; offset: number } | undefined {
  const [p, f, o] = extra.split(":");
  if (!p || !HEX.test(p) || !f || !HEX.test(f)) return undefined;
  const ids = [parseInt(f, 16)];
  if (DEC.test(f) && Number(f) !== ids[0]) ids.push(Number(f));
  const offset = o && HEX.test(o) ? parseInt(o, 16) : 0;
  if (!Number.isSafeInteger(offset)) return undefined;
  return { packetNo: parseInt(p, 16), ids, offset };
}

/** One entry header of a folder stream, its name still as bytes of the sender's encoding. */
export interface DirHeader {
  /** Bytes of the header, counting its size field. */
  length: number;
  name: Uint8Array;
  size: number;
  kind: number;
  mtime?: number;
}

/**
 * Reads an entry header at the start of `buf`: undefined when more bytes are
 * needed, an error when it is malformed (the stream cannot go on).
 */
export function parseDirHeader(buf: Uint8Array): DirHeader | { error: string } | undefined {
  if (buf.length < 5) return undefined;
  const sizeText = String.fromCharCode(...buf.subarray(0, 4));
  if (!/^[0-9a-fA-F]{4}$/.test(sizeText) || buf[4] !== 0x3a) return { error: "a malformed folder entry header" };
  const length = parseInt(sizeText, 16);
  if (length < 10) return { error: "a folder entry header too short" };
  if (buf.length < length) return undefined;
  // Fields: size:name:size:attr:ext…: — the name may hold "::".
  const head = buf.subarray(5, length);
  let i = 0;
  const name: number[] = [];
  for (; i < head.length; i++) {
    if (head[i] === 0x3a && head[i + 1] === 0x3a) {
      name.push(0x3a);
      i++;
    } else if (head[i] === 0x3a) break;
    else name.push(head[i]!);
  }
  const rest = fields(new TextDecoder("latin1").decode(head.subarray(i + 1)));
  const [size, attr, ...ext] = rest;
  if (!size || !HEX.test(size) || !attr || !HEX.test(attr)) return { error: "a malformed folder entry header" };
  const mt = ext.find((e) => e.toLowerCase().startsWith(`${IPMSG_FILE_MTIME.toString(16)}=`));
  return {
    length,
    name: new Uint8Array(name),
    size: parseInt(size, 16),
    kind: parseInt(attr, 16) & 0xff,
    ...(mt ? { mtime: parseInt(mt.split("=")[1] ?? "0", 16) || 0 } : {}),
  };
}

/** An entry header of a folder stream for a name already encoded in the receiver's encoding. */
export function dirHeader(name: Uint8Array, size: number, kind: number, mtime: number): Uint8Array {
  const escaped: number[] = [];
  for (const b of name) {
    escaped.push(b);
    if (b === 0x3a) escaped.push(0x3a);
  }
  // As iptux writes it: the size in 9 digits at least, then the modification and creation times.
  const t = mtime.toString(16);
  const tail = new TextEncoder().encode(
    `:${size.toString(16).padStart(9, "0")}:${kind.toString(16)}:${IPMSG_FILE_MTIME.toString(16)}=${t}:${
      IPMSG_FILE_CREATETIME.toString(16)
    }=${t}:`,
  );
  const length = 5 + escaped.length + tail.length;
  const out = new Uint8Array(length);
  out.set(new TextEncoder().encode(length.toString(16).padStart(4, "0") + ":"));
  out.set(escaped, 5);
  out.set(tail, 5 + escaped.length);
  return out;
}

/** A name from a folder stream, in the sender's encoding (UTF-8 when it is valid UTF-8, else GB18030). */
export function decodeName(bytes: Uint8Array, encoding: "utf-8" | "gbk"): string {
  if (encoding === "utf-8") {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch { /* read as GB18030 below */ }
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder("gb18030").decode(bytes);
  }
}
