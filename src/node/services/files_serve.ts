/**
 * Serving files: the TCP file port (on the unicast UDP port's number) and,
 * with --ipmsg, the IP Messenger one. A connection to the file port is
 * admitted or refused (file_admission.ts), proves with its node key that
 * it is the peer the offer was made to (files_handshake.ts: end-to-end
 * encrypted with a peer that speaks it, the frames sealed with the keys of
 * that connection; with a previous version, a signed challenge, sealed
 * with the network key when there is one), and then asks for the manifest
 * and for each file from an offset (a resumed fetch asks from where its
 * `.part` ends). A file that changed since it was offered fails the offer.
 * This is the sender's side of progress: bytes served count as
 * transferred.
 *
 * @module
 */
import { SignatureChecker } from "../../security/signing.ts";
import {
  controlPayload,
  DATA_CHUNK,
  FrameType,
  MAX_CONTROL_JSON,
  MAX_FRAME_BODY,
  parseControl,
} from "../../wire/file_frames.ts";
import { manifestBytes, mayFetch } from "../../protocol/files.ts";
import { acceptHandshake } from "./files_handshake.ts";
import { FrameConn, StreamError } from "./file_stream.ts";
import { Admission, PREAUTH_MS, type Ticket } from "./file_admission.ts";
import { type Transfer, type TransferFile, transferKey } from "./files_model.ts";
import type { FilesState } from "./files_state.ts";
import { SMALL_FILE } from "./files_pipeline.ts";
import { endpointOf } from "../transport.ts";

/** Most file-stream connections served at once; more are refused. */
export const MAX_SERVED_CONNECTIONS = 32;
/**
 * Requests a fetcher may send before their answers came, as this sender's
 * welcome says (`pipeline`): they are answered one after the other, in the
 * order asked, each answer's head naming its file. A previous version says
 * nothing, and is asked one file at a time.
 */
export const PIPELINE = 64;
/** Small files' answers queued up to this many bytes before they are written (with fewer, at the next wait). */
const SMALL_BATCH = 256 * 1024;

/** The file port (and IP Messenger's), and every connection served on them. */
export class FileServer {
  #s: FilesState;
  #listener: Deno.TcpListener | undefined;
  #ipmsgListener: Deno.TcpListener | undefined;
  #served = new Set<FrameConn>();
  #connections = 0;
  #checker = new SignatureChecker();
  /** Who may hold a slot on the file port before authenticating (file_admission.ts). */
  readonly admission: Admission;

  constructor(state: FilesState) {
    this.#s = state;
    this.admission = new Admission(MAX_SERVED_CONNECTIONS, (address) => state.d.knownAddress?.(address) ?? false);
  }

  /** Whether the file port is open. */
  get listening(): boolean {
    return this.#listener !== undefined;
  }

  /** Opens the file port, and with --ipmsg IP Messenger's; one that cannot be opened is logged. */
  start(): void {
    try {
      this.#listener = this.#s.d.listenTcp(this.#s.d.listenHost ?? "0.0.0.0", this.#s.d.port);
      void this.#acceptLoop(this.#listener, (conn) => {
        const ticket = this.admission.admit(endpointOf(conn.remoteAddr).address, this.#connections);
        if (!ticket) return;
        return () => this.#serveConn(conn, ticket);
      });
    } catch (e) {
      this.#s.log.warn("Cannot serve files: {error}; peers cannot fetch what this node offers", {
        error: (e as Error).message,
      });
    }
    if (this.#s.d.ipmsg) {
      try {
        const l = this.#ipmsgListener = this.#s.d.listenTcp("0.0.0.0", this.#s.d.ipmsg.port);
        void this.#acceptLoop(
          l,
          () => this.#connections < MAX_SERVED_CONNECTIONS ? (conn) => this.#s.ipmsg!.serve(conn) : undefined,
        );
      } catch (e) {
        this.#s.log.warn("Cannot serve files to IP Messenger users: {error}", { error: (e as Error).message });
      }
    }
  }

  /** Cuts the connections fetching an offer (it was cancelled). */
  closeOffer(id: string): void {
    for (const c of this.#served) if ((c as ServedConn).offer === id) c.close();
  }

  shutdown(): void {
    for (const l of [this.#listener, this.#ipmsgListener]) {
      try {
        l?.close();
      } catch { /* closed */ }
    }
    for (const c of this.#served) c.close();
  }

  /**
   * Accepts connections; `admit` says, for each, how to serve it (or that it is refused: closed at once).
   * Every handler's failure is caught here.
   */
  async #acceptLoop(
    listener: Deno.TcpListener,
    admit: (conn: Deno.TcpConn) => ((conn: Deno.TcpConn) => Promise<void>) | undefined,
  ): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (this.#s.stopped || e instanceof Deno.errors.BadResource) return;
        // Out of file descriptors and the like: keep listening after a breath.
        this.#s.log.warn("File port: {error}", { error: (e as Error).message });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const handle = admit(conn);
      if (!handle) {
        conn.close();
        continue;
      }
      conn.setNoDelay(true);
      this.#connections++;
      handle(conn).catch((e) => {
        if (!(e instanceof StreamError) && !this.#s.stopped) {
          this.#s.log.debug("File connection ended: {error}", { error: (e as Error).message });
        }
      }).finally(() => {
        this.#connections--;
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  }

  /**
   * One connection to the file port: it has PREAUTH_MS in all to authenticate (then it is cut, and counted),
   * and whatever ends it before that is counted by kind (file_admission.ts).
   */
  async #serveConn(conn: Deno.TcpConn, ticket: Ticket): Promise<void> {
    const fc = new FrameConn(conn, PREAUTH_MS) as ServedConn;
    fc.ticket = ticket;
    fc.maxBody = MAX_CONTROL_JSON + 1;
    this.#served.add(fc);
    const deadline = setTimeout(() => {
      if (ticket.authed) return;
      ticket.timedOut = true;
      fc.close();
    }, PREAUTH_MS);
    let error: unknown;
    try {
      await this.#serve(fc);
    } catch (e) {
      error = e;
      throw e;
    } finally {
      clearTimeout(deadline);
      this.admission.release(ticket, error);
      this.#served.delete(fc);
      fc.close();
    }
  }

  async #serve(c: ServedConn): Promise<void> {
    const refuse = async (code: string, error: string) => {
      this.#s.counters.refusedFetches++;
      if (c.ticket && (code === "malformed" || code === "handshake")) this.admission.count(c.ticket, "junk");
      await c.sendControl(FrameType.error, { code, error }).catch(() => {});
    };
    const who = await acceptHandshake(c, this.#s.d, this.#checker, refuse);
    if (!who) return;
    const { offer, requester } = who;
    const t = this.#s.transfers.get(transferKey("out", offer));
    const wall = this.#s.wallNow();
    const first = mayFetch(
      t && { to: t.peer, state: t.state, expires: t.expires, count: t.count },
      requester,
      -1,
      wall,
    );
    if (!first.ok) {
      this.#s.log.info("Refused a fetch of offer {offer} by {requester}: {error}", {
        offer,
        requester,
        error: first.error,
      });
      // An offer that failed here says why (a file cut short while it was sent), for the receiver to show.
      return refuse(
        first.code,
        first.code === "ended" && t?.state === "failed" && t.error ? `${first.error}: ${t.error}` : first.error,
      );
    }
    c.offer = offer;
    if (who.cipher) c.cipher = who.cipher;
    if (c.ticket) this.admission.authed(c.ticket);
    c.maxBody = MAX_FRAME_BODY;
    await c.sendControl(FrameType.welcome, { ok: true, pipeline: PIPELINE });
    c.stallMs = 60_000;
    const files = this.#s.files(t!);
    t!.filesDone = files.filter((x) => x.done).length;
    this.#s.markEncrypted(t!, who.encrypted);
    if (t!.state === "offered" || t!.state === "waiting") {
      t!.state = "active";
      this.#s.save(t!);
      this.#s.emit("transfer-updated", t!);
    }
    for (;;) {
      // Small files' answers wait while more requests are read already: they go out together, in one write.
      if (!c.hasFrame()) await c.flush();
      const f = await c.next();
      if (f.type === FrameType.verified) {
        const v = parseVerified(f.payload);
        if (v !== undefined && files[v] && !files[v]!.done) {
          // Counted as it comes (a filter over 10,000 files per file was a tenth of the sender's time).
          files[v]!.done = true;
          t!.filesDone = Math.min(t!.count, t!.filesDone + 1);
          this.#s.counters.filesServed++;
        }
        continue;
      }
      if (f.type !== FrameType.get) return refuse("malformed", "expected a request");
      const req = parseGet(f.payload);
      const again = mayFetch(
        { to: t!.peer, state: t!.state, expires: t!.expires, count: t!.count },
        requester,
        req?.file ?? -2,
        this.#s.wallNow(),
      );
      if (!req || !again.ok) {
        return refuse(again.ok ? "malformed" : again.code, again.ok ? "a malformed request" : again.error);
      }
      if (req.file === -1) {
        const bytes = manifestBytes(files.map(({ path, size, mtime, sha256 }) => ({ path, size, mtime, sha256 })));
        await c.sendControl(FrameType.file, { size: bytes.length, offset: 0 });
        for (let at = 0; at < bytes.length; at += DATA_CHUNK) {
          await c.send(FrameType.data, bytes.subarray(at, at + DATA_CHUNK));
        }
        await c.sendControl(FrameType.end, { bytes: bytes.length });
        continue;
      }
      const file = files[req.file]!;
      if (req.offset > file.size) return refuse("malformed", "an offset past the end of the file");
      // A small file is read whole, with calls that do not wait on Deno's I/O threads (each wait cost more than
      // the read), and goes out in one write: its head, its bytes and its end.
      const small = file.size <= SMALL_FILE ? readSmall(file, req.offset) : undefined;
      const problem = small === undefined ? await unchanged(file) : typeof small === "string" ? small : undefined;
      if (problem) {
        if (req.each) {
          // This file alone: the fetcher said it goes on with the others (and tells the outcome in its note).
          this.#s.counters.refusedFetches++;
          await c.sendControl(FrameType.error, { code: "changed", error: problem, file: req.file });
          continue;
        }
        this.#s.end(t!, "failed", problem);
        return refuse("changed", problem);
      }
      if (small instanceof Uint8Array) await this.#sendSmall(c, t!, file, req.offset, req.file, small);
      else await this.#sendFile(c, t!, file, req.offset, req.file);
    }
  }

  async #sendSmall(
    c: ServedConn,
    t: Transfer,
    file: TransferFile,
    offset: number,
    idx: number,
    bytes: Uint8Array,
  ): Promise<void> {
    const frames: { type: number; payload: Uint8Array }[] = [{
      type: FrameType.file,
      payload: controlPayload({ size: file.size, offset, file: idx }),
    }];
    if (bytes.length > 0) frames.push({ type: FrameType.data, payload: bytes });
    frames.push({ type: FrameType.end, payload: controlPayload({ bytes: bytes.length }) });
    c.queue(frames);
    if (c.queuedBytes >= SMALL_BATCH) await c.flush();
    this.#s.counters.bytesServed += bytes.length;
    t.transferred = Math.min(t.bytes, t.transferred + bytes.length);
    this.#s.progress(t);
  }

  async #sendFile(c: ServedConn, t: Transfer, file: TransferFile, offset: number, idx: number): Promise<void> {
    using f = await Deno.open(file.source!, { read: true });
    if (offset > 0) await f.seek(offset, Deno.SeekMode.Start);
    await c.sendControl(FrameType.file, { size: file.size, offset, file: idx });
    let left = file.size - offset;
    // Two buffers, each with room for the frame header, read into in place: the next chunk is read
    // from the file while this one goes out on the socket. No larger than the file (two zeroed MiB per
    // 4 KiB file were a quarter of the sender's time serving 10,000 of them).
    const room = 5 + Math.min(DATA_CHUNK, Math.max(left, 1));
    const bufs = [new Uint8Array(room), new Uint8Array(room)];
    const read = async (buf: Uint8Array, want: number): Promise<number> => {
      const n = await f.read(buf.subarray(5, 5 + want));
      if (n === null || n === 0) {
        throw new SourceChanged(`${file.path} changed while it was being sent (it ended early)`);
      }
      return n;
    };
    const send = (buf: Uint8Array, n: number): Promise<void> => c.sendInPlace(FrameType.data, buf, n);
    // A read and a send are under way at once, and either may fail while the other is awaited (the receiver
    // went away while a disk read was awaited; the file was cut short while a send was): each has a handler from
    // the start, is awaited where its result is needed, and both have settled before the file is closed.
    const handled = <T>(p: Promise<T>): Promise<T> => {
      p.catch(() => {});
      return p;
    };
    let k = 0;
    let reading = left > 0 ? handled(read(bufs[0]!, Math.min(DATA_CHUNK, left))) : undefined;
    let sending: Promise<void> = Promise.resolve();
    try {
      while (reading) {
        const n = await reading;
        left -= n;
        await sending;
        reading = left > 0 ? handled(read(bufs[1 - k]!, Math.min(DATA_CHUNK, left))) : undefined;
        sending = handled(send(bufs[k]!, n));
        k = 1 - k;
        this.#s.counters.bytesServed += n;
        t.transferred = Math.min(t.bytes, t.transferred + n);
        this.#s.progress(t);
      }
      await sending;
    } catch (e) {
      if (!(e instanceof SourceChanged)) throw e;
      // The file changed under us: the receiver is told why (after the data already on its way), and the
      // transfer has failed: the bytes offered are no longer there to send.
      await sending.catch(() => {});
      this.#s.end(t, "failed", e.message);
      await c.sendControl(FrameType.error, { code: "changed", error: e.message }).catch(() => {});
      throw e;
    } finally {
      // The file is closed (by `using`) only once no read of it is under way.
      await reading?.catch(() => {});
    }
    await c.sendControl(FrameType.end, { bytes: file.size - offset });
  }
}

/** The file being sent is not what was offered any more (cut short mid-way). */
class SourceChanged extends Error {
  override name = "SourceChanged";
}

interface ServedConn extends FrameConn {
  offer?: string;
  ticket?: Ticket;
}

/**
 * A `get` frame's file and offset, and whether the fetcher takes a file changed at the source as that file's failure
 * alone (`each: 1`; a previous version does not, and the offer fails). Read as wire/file_frames.ts reads them all.
 */
function parseGet(payload: Uint8Array): { file: number; offset: number; each: boolean } | undefined {
  const v = parseControl(payload);
  if (!v || !Number.isSafeInteger(v.file) || !Number.isSafeInteger(v.offset) || (v.offset as number) < 0) {
    return undefined;
  }
  return { file: v.file as number, offset: v.offset as number, each: v.each === 1 };
}

/** A `verified` frame's file. */
function parseVerified(payload: Uint8Array): number | undefined {
  const v = parseControl(payload);
  return v && Number.isSafeInteger(v.file) ? v.file as number : undefined;
}

/**
 * A small file's bytes from `offset`, read whole at once; or why it is not
 * the one offered any more (as {@link unchanged} says, and cut short while
 * read).
 */
function readSmall(f: TransferFile, offset: number): Uint8Array | string {
  try {
    // What it is before opening it: opening a named pipe put in its place would wait for a writer on the daemon's thread.
    const before = Deno.statSync(f.source!);
    if (!before.isFile) return `${f.path} changed since it was offered (it is not a regular file any more)`;
    using h = Deno.openSync(f.source!, { read: true });
    const info = h.statSync();
    if (!info.isFile || info.size !== f.size || (info.mtime?.getTime() ?? 0) !== f.mtime) {
      return `${f.path} changed since it was offered`;
    }
    const out = new Uint8Array(f.size - offset);
    if (offset > 0) h.seekSync(offset, Deno.SeekMode.Start);
    for (let got = 0; got < out.length;) {
      const n = h.readSync(out.subarray(got));
      if (n === null || n === 0) return `${f.path} changed while it was being sent (it ended early)`;
      got += n;
    }
    return out;
  } catch (e) {
    return `${f.path} cannot be read any more: ${(e as Error).message}`;
  }
}

/** Why a served file is not the one offered any more (its size or time changed), or undefined. */
async function unchanged(f: TransferFile): Promise<string | undefined> {
  try {
    const info = await Deno.stat(f.source!);
    if (!info.isFile || info.size !== f.size || (info.mtime?.getTime() ?? 0) !== f.mtime) {
      return `${f.path} changed since it was offered`;
    }
    return undefined;
  } catch (e) {
    return `${f.path} cannot be read any more: ${(e as Error).message}`;
  }
}
