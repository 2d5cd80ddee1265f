/**
 * IP Messenger's file streams on TCP, both ways (what file_stream.ts is to
 * lanchat's frames): a `GETFILEDATA` or `GETDIRFILES` request to the
 * sender's port, then its raw bytes (a file from an offset, so a broken
 * transfer resumes) or a folder's stream of entries, written under names
 * made safe; and the same answers sent to a user fetching from this node.
 * IP Messenger has no checksum: a file is complete when its size has
 * arrived.
 *
 * @module
 */
import { encodeIpmsg, encodeText, type IpmsgEncoding } from "../../wire/ipmsg.ts";
import { IPMSG, IPMSG_OPT } from "../../wire/ipmsg_command.ts";
import {
  decodeName,
  dirHeader,
  getDirFilesExtra,
  getFileDataExtra,
  IPMSG_FILE,
  parseDirHeader,
} from "../../wire/ipmsg_files.ts";
import { MAX_FOLDER_DEPTH, safeName } from "../../protocol/file_names.ts";
import { STALL_MS, StreamError, withinStall } from "./file_stream.ts";
import {
  freeName,
  type IpmsgSender,
  onDisk,
  OneFileError,
  PRIVATE_DIR,
  PRIVATE_FILE,
  writeAll,
} from "./files_model.ts";

export { freeName, type IpmsgSender };

/** Reads a TCP connection chunk by chunk, giving up after STALL_MS of silence. */
export class RawReader {
  #conn: Deno.Conn;
  #stallMs: number;
  constructor(conn: Deno.Conn, stallMs = STALL_MS) {
    this.#conn = conn;
    this.#stallMs = stallMs;
  }

  #buf = new Uint8Array(256 * 1024);

  /** The next chunk (a copy: the read buffer is reused), or null at the end of the stream. */
  async read(): Promise<Uint8Array | null> {
    const n = await this.readInto(this.#buf);
    return n === null ? null : this.#buf.slice(0, n);
  }

  /** Reads what has come into `buf` (no copy): how many bytes, or null at the end of the stream. */
  readInto(buf: Uint8Array): Promise<number | null> {
    const reading = this.#conn.read(buf).catch((e) => {
      throw new StreamError(`the connection broke: ${(e as Error).message}`);
    });
    return withinStall(reading, this.#stallMs);
  }
}

/** Sends a GETFILEDATA or GETDIRFILES request on a new connection. */
export async function ipmsgRequest(
  connect: (hostname: string, port: number) => Promise<Deno.TcpConn>,
  sender: IpmsgSender,
  self: { user: string; host: string; packetNo: number },
  mode: "file" | "dir",
  packetNo: number,
  fileId: number,
  offset: number,
): Promise<Deno.TcpConn> {
  const conn = await connect(sender.address, sender.port).catch((e) => {
    throw new StreamError(`cannot connect to ${sender.address}:${sender.port}: ${(e as Error).message}`);
  });
  const command = mode === "file"
    ? IPMSG.GETFILEDATA | (/iptux/i.test(sender.version) ? IPMSG_OPT.FILEATTACHOPT : 0)
    : IPMSG.GETDIRFILES | IPMSG_OPT.FILEATTACHOPT;
  const bytes = encodeIpmsg({
    packetNo: String(self.packetNo),
    user: self.user,
    host: self.host,
    command,
    extra: [mode === "file" ? getFileDataExtra(packetNo, fileId, offset) : getDirFilesExtra(packetNo, fileId)],
    encoding: sender.encoding,
  });
  let w = 0;
  try {
    while (w < bytes.length) w += await conn.write(bytes.subarray(w));
  } catch (e) {
    conn.close();
    throw new StreamError(`cannot send the request: ${(e as Error).message}`);
  }
  return conn;
}

/**
 * Receives a folder stream into `root` (created): the first entry is the
 * folder itself; each entry's name becomes a safe name (never a path); the
 * stream ends when it climbs back out of it. A stream deeper than
 * {@link MAX_FOLDER_DEPTH} folders, with more entries than the limit, or
 * malformed is refused, and one that cannot be written fails: that folder
 * alone ({@link OneFileError}).
 */
export async function receiveFolder(
  reader: RawReader,
  root: string,
  encoding: IpmsgEncoding,
  onBytes: (n: number) => void,
  limits = { maxEntries: 100_000, maxDepth: MAX_FOLDER_DEPTH },
): Promise<{ files: number; bytes: number }> {
  let buf: Uint8Array = new Uint8Array();
  const push = (chunk: Uint8Array) => {
    const joined = new Uint8Array(buf.length + chunk.length);
    joined.set(buf);
    joined.set(chunk, buf.length);
    buf = joined;
  };
  const more = async () => {
    const chunk = await reader.read();
    if (chunk === null) throw new StreamError("the folder stream ended early");
    push(chunk);
  };
  const stack: string[] = [];
  let files = 0;
  let bytes = 0;
  let entries = 0;
  for (;;) {
    let head = parseDirHeader(buf);
    while (head === undefined) {
      await more();
      head = parseDirHeader(buf);
    }
    if ("error" in head) throw new OneFileError(`refused: a malformed folder stream (${head.error})`);
    buf = buf.subarray(head.length);
    if (++entries > limits.maxEntries) {
      throw new OneFileError(`refused: more than ${limits.maxEntries} entries in one folder`);
    }
    const here = stack.length === 0 ? undefined : stack[stack.length - 1]!;
    if (head.kind === IPMSG_FILE.RETPARENT) {
      stack.pop();
      if (stack.length === 0) return { files, bytes };
      continue;
    }
    if (head.kind === IPMSG_FILE.DIR) {
      if (stack.length > limits.maxDepth) {
        throw new OneFileError(`refused: a folder more than ${limits.maxDepth} folders deep`);
      }
      if (here === undefined) {
        await onDisk(() => Deno.mkdir(root, { recursive: true, mode: PRIVATE_DIR }));
        stack.push(root);
      } else {
        const name = await freeName(here, safeName(decodeName(head.name, encoding)));
        await onDisk(() => Deno.mkdir(`${here}/${name}`, { mode: PRIVATE_DIR }), name);
        stack.push(`${here}/${name}`);
      }
      continue;
    }
    if (here === undefined) throw new StreamError("a folder stream that does not start with its folder");
    // A regular file (or anything else, whose bytes are read and dropped).
    const keep = head.kind === IPMSG_FILE.REGULAR;
    const name = keep ? await freeName(here, safeName(decodeName(head.name, encoding))) : undefined;
    using out = name
      ? await onDisk(() => Deno.open(`${here}/${name}`, { write: true, createNew: true, mode: PRIVATE_FILE }), name)
      : undefined;
    let left = head.size;
    while (left > 0) {
      if (buf.length === 0) await more();
      const take = buf.subarray(0, Math.min(buf.length, left));
      if (out) await onDisk(() => writeAll(out, take), name);
      buf = buf.subarray(take.length);
      left -= take.length;
      bytes += take.length;
      onBytes(take.length);
    }
    if (out && head.mtime) await out.utime(new Date(), new Date(head.mtime * 1000)).catch(() => {});
    if (keep) files++;
  }
}

/** Total bytes of the regular files under a folder (symbolic links not followed). */
export async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.isSymlink) continue;
    if (e.isDirectory) n += await folderBytes(`${dir}/${e.name}`);
    else if (e.isFile) n += (await Deno.stat(`${dir}/${e.name}`)).size;
  }
  return n;
}

/** Sends `length` bytes of a file from `offset` (a GETFILEDATA answer: the bytes, nothing else). */
export async function sendRaw(
  path: string,
  offset: number,
  length: number,
  write: (b: Uint8Array) => Promise<void>,
  onBytes: (n: number) => void,
): Promise<void> {
  using f = await Deno.open(path, { read: true });
  if (offset > 0) await f.seek(offset, Deno.SeekMode.Start);
  const buf = new Uint8Array(256 * 1024);
  let left = length;
  while (left > 0) {
    const n = await f.read(buf.subarray(0, Math.min(buf.length, left)));
    if (n === null || n === 0) throw new StreamError(`${path} ended early`);
    await write(buf.subarray(0, n));
    left -= n;
    onBytes(n);
  }
}

/**
 * Sends a folder as a GETDIRFILES answer: its own header, then each entry
 * (a file's header and bytes; a folder's header, its entries, and a
 * return-to-parent), then the return out of it. Names go in the receiver's
 * encoding; symbolic links are left out.
 */
export async function sendFolder(
  dir: string,
  name: string,
  encoding: IpmsgEncoding,
  write: (b: Uint8Array) => Promise<void>,
  onBytes: (n: number) => void,
): Promise<void> {
  const info = await Deno.stat(dir);
  const mtime = Math.floor((info.mtime?.getTime() ?? 0) / 1000);
  await write(dirHeader(encodeText(name, encoding), 0, IPMSG_FILE.DIR, mtime));
  const entries: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(dir)) entries.push(e);
  entries.sort((a, b) => a.name < b.name ? -1 : 1);
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isSymlink) continue;
    if (e.isDirectory) {
      await sendFolder(path, e.name, encoding, write, onBytes);
    } else if (e.isFile) {
      const st = await Deno.stat(path);
      const t = Math.floor((st.mtime?.getTime() ?? 0) / 1000);
      await write(dirHeader(encodeText(e.name, encoding), st.size, IPMSG_FILE.REGULAR, t));
      await sendRaw(path, 0, st.size, write, onBytes);
    }
  }
  await write(dirHeader(new TextEncoder().encode("."), 0, IPMSG_FILE.RETPARENT, mtime));
}
