/**
 * File transfer with IP Messenger, FeiQ and iptux users, the half of the
 * file service that speaks their protocol: their attachments as incoming
 * offers fetched with GETFILEDATA and GETDIRFILES, and files attached to a
 * SENDMSG, served on TCP at the IP Messenger port to that user alone. The
 * state (transfers, events, the store) stays the file service's; this
 * side reaches it through {@link FilesHost}. IP Messenger has no checksum:
 * a file is done when its size has arrived.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { TransferJson } from "../../api/types.ts";
import { safeName } from "../../protocol/file_names.ts";
import { finished, formatBytes, MAX_NOTE_NAMES, OFFER_TTL_MS } from "../../protocol/files.ts";
import type { StoredMessage } from "../../storage/store.ts";
import { decodeIpmsg } from "../../wire/ipmsg.ts";
import { IPMSG } from "../../wire/ipmsg_command.ts";
import { formatAttachments, IPMSG_FILE, type IpmsgAttachment, parseFileRequest } from "../../wire/ipmsg_files.ts";
import {
  FileError,
  type FilesHost,
  HANDSHAKE_MS,
  hashFile,
  onDisk,
  partlyWritten,
  type Transfer,
  transferKey,
} from "./files_model.ts";
import { StreamError } from "./file_stream.ts";
import {
  folderBytes,
  freeName,
  ipmsgRequest,
  RawReader,
  receiveFolder,
  sendFolder,
  sendRaw,
} from "./ipmsg_file_stream.ts";
import { fetchIpmsgFile, TooMuchError } from "./ipmsg_resume.ts";
import { HASH_CHECK_MAX_BYTES, noteImage } from "./files_images.ts";
import { makeFolder } from "./files_folder.ts";

export class IpmsgFiles {
  #h: FilesHost;
  /** Packet numbers of our file requests. */
  #packetNo = Math.floor(Date.now() / 1000);

  constructor(host: FilesHost) {
    this.#h = host;
  }

  /**
   * Offers files and folders to an IP Messenger user: a message with them
   * attached (its text says what, for the history), served on TCP at the IP
   * Messenger port to that user's address alone. IP Messenger has no
   * checksum: the files are not hashed.
   */
  async offer(to: string, paths: string[]): Promise<TransferJson> {
    const files: IpmsgAttachment[] = [];
    const sources: string[] = [];
    for (const [i, p] of paths.entries()) {
      let info: Deno.FileInfo;
      try {
        info = await Deno.stat(p);
      } catch (e) {
        const why = e instanceof Deno.errors.NotFound ? "no such file or folder" : (e as Error).message;
        throw new FileError(`Cannot send ${p}: ${why}`);
      }
      const name = p.replace(/\/+$/, "").split("/").pop() || p;
      if (info.isDirectory) {
        // Built (sendFolder answers GETDIRFILES as iptux's own sender does), but iptux 0.8.3 dies
        // receiving it (a recursion in its AnalogFS::mkdir): refused until that is understood.
        throw new FileError(
          `Folders cannot be sent to IP Messenger users yet (iptux 0.8.3 crashes receiving one): send the files in ${p}, or an archive of it`,
        );
      }
      if (!info.isFile) throw new FileError(`Cannot send ${p}: not a file or folder`);
      const size = info.isFile ? info.size : await folderBytes(p);
      const mtime = Math.floor((info.mtime?.getTime() ?? 0) / 1000);
      files.push({ id: i, name, size, mtime, kind: info.isFile ? IPMSG_FILE.REGULAR : IPMSG_FILE.DIR });
      sources.push(p);
    }
    const wall = this.#h.wallNow();
    const names = files.map((f) => f.kind === IPMSG_FILE.DIR ? `${f.name}/` : f.name);
    const bytes = files.reduce((n, f) => n + f.size, 0);
    const text = `Files offered: ${names.slice(0, 3).join(", ")}${names.length > 3 ? ", …" : ""} (${
      files.length === 1 ? "1 file" : `${files.length} files`
    }, ${formatBytes(bytes)})`;
    const attach = formatAttachments(files);
    if (new TextEncoder().encode(text + attach).length > 7000) {
      throw new FileError(
        "Too many files, or names too long, for one IP Messenger message: send a folder instead",
        413,
      );
    }
    let sent: { message: StoredMessage; packetNo: number };
    try {
      sent = this.#h.d.ipmsg!.offer(to, text, attach);
    } catch (e) {
      throw new FileError(`Cannot offer these files: ${(e as Error).message}`, 413);
    }
    await this.#h.ctx.durable();
    const t: Transfer = {
      id: createHash("sha256").update(`ipmsg-out:${to}:${sent.packetNo}:${wall}`).digest("hex").slice(0, 32),
      direction: "out",
      peer: to,
      state: "waiting",
      createdAt: wall,
      updatedAt: wall,
      expires: wall + OFFER_TTL_MS,
      count: files.length,
      bytes,
      names: names.slice(0, MAX_NOTE_NAMES),
      manifest: "",
      message: sent.message.id,
      transferred: 0,
      filesDone: 0,
      ipmsg: { packetNo: sent.packetNo, files, dest: files.map(() => null), done: files.map(() => false), sources },
    };
    this.#h.transfers.set(transferKey("out", t.id), t);
    this.#h.save(t);
    this.#h.counters.offersSent++;
    this.#h.emit("transfer-updated", t);
    return this.#h.json(t);
  }

  /** Offers to IP Messenger users still in the outbox get their files back (at start). */
  reattach(): void {
    for (const t of this.#h.transfers.values()) {
      if (t.direction === "out" && t.ipmsg && t.message && t.state === "waiting") {
        this.#h.d.ipmsg!.reattach(t.message, t.ipmsg.packetNo, formatAttachments(t.ipmsg.files));
      }
    }
  }

  /** Serves an IP Messenger user's GETFILEDATA or GETDIRFILES request, if it names an offer made to it. */
  async serve(conn: Deno.TcpConn): Promise<void> {
    const remote = (conn.remoteAddr as Deno.NetAddr).hostname;
    const reader = new RawReader(conn, HANDSHAKE_MS);
    let head: Uint8Array = new Uint8Array();
    // The request is one packet ending in NUL; a client that sends none and waits gets an answer to what came.
    let pending: Promise<Uint8Array | null> | undefined;
    while (!head.includes(0) && head.length < 8192) {
      pending ??= reader.read();
      const chunk = await Promise.race([pending, new Promise<"quiet">((r) => setTimeout(() => r("quiet"), 500))]);
      if (chunk === "quiet") {
        if (head.length > 0) break;
        continue;
      }
      pending = undefined;
      if (chunk === null) return;
      const joined = new Uint8Array(head.length + chunk.length);
      joined.set(head);
      joined.set(chunk, head.length);
      head = joined;
    }
    pending?.catch(() => {});
    const end = head.indexOf(0);
    const decoded = decodeIpmsg(end >= 0 ? head.subarray(0, end + 1) : head);
    if (!decoded.ok) return;
    const p = decoded.value;
    if (p.mode !== IPMSG.GETFILEDATA && p.mode !== IPMSG.GETDIRFILES) return;
    const req = parseFileRequest(p.extra[0] ?? "");
    const t = req &&
      [...this.#h.transfers.values()].find((x) =>
        x.direction === "out" && x.ipmsg?.packetNo === req.packetNo && this.#h.d.ipmsg?.peer(x.peer)?.address === remote
      );
    const refuse = (why: string) => {
      this.#h.counters.refusedFetches++;
      this.#h.log.info("Refused an IP Messenger file request from {address}: {why}", { address: remote, why });
    };
    if (!req || !t) return refuse("it names no offer made to that address");
    if (finished(t.state) && t.state !== "done") return refuse(`the offer was ${t.state}`);
    if (this.#h.wallNow() > t.expires) return refuse("the offer has expired");
    const im = t.ipmsg!;
    const idx = req.ids.map((id) => im.files.findIndex((f) => f.id === id)).find((i) => i >= 0);
    if (idx === undefined) return refuse("no such file in the offer");
    const f = im.files[idx]!;
    const source = im.sources![idx]!;
    const sender = this.#h.d.ipmsg!.peer(t.peer)!;
    if (t.state !== "active") {
      t.state = "active";
      this.#h.save(t);
      this.#h.emit("transfer-updated", t);
    }
    const write = async (bytes: Uint8Array) => {
      let w = 0;
      while (w < bytes.length) w += await conn.write(bytes.subarray(w));
    };
    const count = (n: number) => {
      this.#h.counters.bytesServed += n;
      t.transferred = Math.min(t.bytes, t.transferred + n);
      this.#h.progress(t);
    };
    if (p.mode === IPMSG.GETFILEDATA && f.kind === IPMSG_FILE.REGULAR) {
      if (req.offset > f.size) return refuse("an offset past the end of the file");
      await sendRaw(source, req.offset, f.size - req.offset, write, count);
    } else if (p.mode === IPMSG.GETDIRFILES && f.kind === IPMSG_FILE.DIR) {
      await sendFolder(source, f.name, sender.encoding, write, count);
    } else return refuse("a file asked for as a folder, or the reverse");
    im.done[idx] = true;
    t.filesDone = im.done.filter(Boolean).length;
    this.#h.counters.filesServed++;
    if (im.done.every(Boolean)) {
      t.transferred = t.bytes;
      this.#h.end(t, "done");
    } else this.#h.save(t);
  }

  /** An IP Messenger user's attachments: an incoming offer like any other (`message`: the one they came with). */
  onOffer(peer: string, packetNo: number, files: IpmsgAttachment[], message?: string): void {
    if (files.length === 0) return;
    // A restarted client numbers its packets from the start again: its packet 21 offers other files than the
    // first instance's packet 21 did (the message layer told them apart), so the second is a new offer too.
    const idOf = (n: number) =>
      createHash("sha256").update(`ipmsg:${peer}:${packetNo}${n ? `:${n}` : ""}`).digest("hex").slice(0, 32);
    let n = 0;
    while (this.#h.transfers.has(transferKey("in", idOf(n)))) n++;
    const id = idOf(n);
    const key = transferKey("in", id);
    const wall = this.#h.wallNow();
    const t: Transfer = {
      id,
      direction: "in",
      peer,
      state: "offered",
      createdAt: wall,
      updatedAt: wall,
      expires: wall + OFFER_TTL_MS,
      count: files.length,
      bytes: files.reduce((n, f) => n + f.size, 0),
      names: files.slice(0, MAX_NOTE_NAMES).map((f) => f.kind === IPMSG_FILE.DIR ? `${f.name}/` : f.name),
      manifest: "",
      transferred: 0,
      filesDone: 0,
      ipmsg: { packetNo, files, dest: files.map(() => null), done: files.map(() => false) },
      ...(message ? { message } : {}),
    };
    this.#h.transfers.set(key, t);
    this.#h.counters.offersReceived++;
    this.#h.save(t);
    this.#h.emit("transfer-offered", t);
    this.#h.log.info("{name} (IP Messenger) offers {count} files ({size}): lanchat accept {id}", {
      name: this.#h.d.peerName(peer),
      count: t.count,
      size: formatBytes(t.bytes),
      id: t.id.slice(0, 8),
    });
    // IP Messenger users have no node key: only --accept-files always takes their offers unasked.
    if (this.#h.d.options.accept === "always" && t.bytes <= (this.#h.d.options.autoAcceptMaxBytes ?? 1024 ** 3)) {
      try {
        this.#h.accept(t.id);
      } catch (e) {
        this.#h.log.warn("Could not accept {id}: {error}", { id: t.id, error: (e as Error).message });
      }
    }
  }

  /**
   * Fetches an IP Messenger offer: each file from the length of its .part
   * (GETFILEDATA), each folder whole into NAME.part/ (GETDIRFILES has no
   * offset), then renamed. No checksum exists in IP Messenger: a file is
   * done when its size has arrived.
   */
  async fetch(t: Transfer, signal: AbortSignal): Promise<void> {
    const im = t.ipmsg!;
    const sender = this.#h.d.ipmsg?.peer(t.peer);
    if (!sender) throw new StreamError(`${this.#h.d.peerName(t.peer)} is not online`);
    this.#h.activate(t);
    await makeFolder(t.dir!);
    t.transferred = im.files.reduce((n, f, i) => n + (im.done[i] ? f.size : 0), 0);
    const onBytes = (n: number) => {
      // Bytes came: the sender still has the offer (see MAX_FRUITLESS_TRIES).
      t.progressed = true;
      this.#h.counters.bytesReceived += n;
      t.transferred += n;
      this.#h.progress(t);
    };
    // A file that could not be written (OneFileError) is marked failed by the service, which then
    // calls this again: the files are taken in order, the failed ones skipped.
    for (const [i, f] of im.files.entries()) {
      if (im.done[i] || im.failed?.[i]) continue;
      if (signal.aborted) return;
      im.dest[i] ??= await freeName(t.dir!, safeName(f.name));
      this.#h.save(t);
      const part = `${t.dir}/${im.dest[i]}.part`;
      const self = { ...this.#h.d.ipmsg!.self(), packetNo: this.#packetNo++ };
      if (f.kind === IPMSG_FILE.REGULAR) {
        const base = t.transferred;
        const name = im.dest[i]!;
        try {
          const how = await fetchIpmsgFile({
            part,
            size: f.size,
            request: async (offset) => {
              if (offset > 0) {
                this.#h.log.info("Resuming {file} at {offset} of {size}", { file: name, offset, size: f.size });
              }
              const conn = await ipmsgRequest(this.#h.d.connectTcp, sender, self, "file", im.packetNo, f.id, offset);
              signal.addEventListener("abort", () => conn.close());
              return { reader: new RawReader(conn), close: () => conn.close() };
            },
            position: (bytes) => {
              t.transferred = base + bytes;
              this.#h.progress(t);
            },
            onBytes,
            onIgnoredOffset: (offset) =>
              this.#h.log.info(
                "{name} sent {file} from its start when asked from {offset} (it ignores offsets): writing it again from the start",
                { name: this.#h.d.peerName(t.peer), file: name, offset },
              ),
            onMismatch: (offset) =>
              this.#h.log.info(
                "{name} sent other bytes than {file}.part holds at {offset} (the file changed?): fetching it again from the start",
                { name: this.#h.d.peerName(t.peer), file: name, offset },
              ),
          });
          if (how === "resumed") this.#h.counters.resumed++;
        } catch (e) {
          if (e instanceof TooMuchError) throw new FileError(`${name}: ${e.message}`);
          throw e;
        }
        const mtime = f.mtime;
        if (mtime) {
          using out = await Deno.open(part, { write: true });
          await out.utime(new Date(), new Date(mtime * 1000)).catch(() => {});
        }
      } else {
        // A folder comes whole: what an earlier attempt left is started over.
        await Deno.remove(part, { recursive: true }).catch(() => {});
        const conn = await ipmsgRequest(this.#h.d.connectTcp, sender, self, "dir", im.packetNo, f.id, 0);
        signal.addEventListener("abort", () => conn.close());
        try {
          await receiveFolder(new RawReader(conn), part, sender.encoding, onBytes);
        } finally {
          try {
            conn.close();
          } catch { /* closed */ }
        }
      }
      const final = await freeName(t.dir!, im.dest[i]!, false);
      await onDisk(() => Deno.rename(part, `${t.dir}/${final}`));
      im.dest[i] = final;
      im.done[i] = true;
      if (f.kind === IPMSG_FILE.REGULAR) await this.#picture(t, i, `${t.dir}/${final}`, f.size);
      t.filesDone++;
      this.#h.counters.filesReceived++;
      this.#h.save(t);
    }
    const failed = (im.failed ?? []).filter((x): x is string => !!x);
    if (failed.length > 0) return this.#h.end(t, "failed", partlyWritten(failed, t.count));
    t.bytes = Math.max(t.bytes, t.transferred);
    t.transferred = t.bytes;
    this.#h.end(t, "done");
  }

  /**
   * A regular file that came: its SHA-256 taken now (up to 64 MiB; IP Messenger sends none), so that it is served
   * later only while unchanged, and listed among the transfer's pictures if its first bytes say so.
   */
  async #picture(t: Transfer, i: number, path: string, size: number): Promise<void> {
    const im = t.ipmsg!;
    if (size > HASH_CHECK_MAX_BYTES) return;
    let head: Uint8Array = new Uint8Array();
    try {
      (im.sha256 ??= im.files.map(() => null))[i] = await hashFile(path, (h) => head = h);
    } catch {
      return;
    }
    noteImage(t, i, path.slice(path.lastIndexOf("/") + 1), size, head);
  }
}
