/**
 * A crafted IP Messenger file sender on loopback, for fault tests: it
 * enters (BR_ENTRY, UTF-8, named like iptux), offers attachments in a
 * SENDMSG with FILEATTACHOPT, and answers each GETFILEDATA or GETDIRFILES
 * on TCP at its own port number with whatever the test says: the bytes,
 * part of them, nothing (a sender that restarted without the offer closes
 * the connection at once, as iptux does), or a folder stream.
 */
import { decodeIpmsg, encodeIpmsg, IPMSG, IPMSG_OPT } from "../../src/wire/ipmsg.ts";
import { formatAttachments, type IpmsgAttachment, parseFileRequest } from "../../src/wire/ipmsg_files.ts";

/** A request the sender got: the attachment id asked for and the offset. */
export interface FileRequest {
  mode: "file" | "dir";
  fileId: number;
  offset: number;
}

/** What the sender does with a request: writes what `answer` returns (if anything), then closes. */
export type Answer = (req: FileRequest, n: number) => Uint8Array | Uint8Array[] | null;

export class IpmsgSender {
  readonly udp: Deno.DatagramConn;
  readonly tcp: Deno.TcpListener;
  readonly port: number;
  readonly requests: FileRequest[] = [];
  answer: Answer = () => null;
  #packetNo = 1000;

  private constructor(udp: Deno.DatagramConn, tcp: Deno.TcpListener) {
    this.udp = udp;
    this.tcp = tcp;
    this.port = (udp.addr as Deno.NetAddr).port;
    void this.#serve();
    void this.#drain();
  }

  /** A sender on a UDP port whose number is free for TCP too (IP Messenger serves files on the same number). */
  static open(): IpmsgSender {
    for (let i = 0; i < 50; i++) {
      const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
      try {
        const tcp = Deno.listen({ hostname: "127.0.0.1", port: (udp.addr as Deno.NetAddr).port });
        return new IpmsgSender(udp, tcp);
      } catch {
        udp.close();
      }
    }
    throw new Error("no port free for both UDP and TCP");
  }

  async #drain(): Promise<void> {
    try {
      for (;;) await this.udp.receive();
    } catch { /* closed */ }
  }

  async #serve(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.tcp.accept();
      } catch {
        return;
      }
      void this.#one(conn);
    }
  }

  async #one(conn: Deno.TcpConn): Promise<void> {
    try {
      let head = new Uint8Array();
      const buf = new Uint8Array(8192);
      while (!head.includes(0)) {
        const n = await conn.read(buf);
        if (n === null) return;
        head = new Uint8Array([...head, ...buf.subarray(0, n)]);
      }
      const d = decodeIpmsg(head.subarray(0, head.indexOf(0) + 1), "utf-8");
      if (!d.ok) return;
      const req = parseFileRequest(d.value.extra[0] ?? "");
      if (!req) return;
      const r: FileRequest = {
        mode: d.value.mode === IPMSG.GETDIRFILES ? "dir" : "file",
        fileId: req.ids[0]!,
        offset: req.offset,
      };
      this.requests.push(r);
      const out = this.answer(r, this.requests.length);
      for (const chunk of out === null ? [] : Array.isArray(out) ? out : [out]) {
        let w = 0;
        while (w < chunk.length) w += await conn.write(chunk.subarray(w));
      }
    } catch {
      /* the receiver went away */
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }

  async #send(command: number, extra: string[], to: number): Promise<void> {
    const bytes = encodeIpmsg({
      version: "1_iptux 0.8.3",
      packetNo: String(this.#packetNo++),
      user: "tux",
      host: "vm",
      command,
      extra,
      encoding: "utf-8",
    });
    await this.udp.send(bytes, { transport: "udp", hostname: "127.0.0.1", port: to });
  }

  /** Enters (as iptux does, in UTF-8) to the daemon's IP Messenger port. */
  async enter(to: number): Promise<void> {
    await this.#send(IPMSG.BR_ENTRY | IPMSG_OPT.CAPUTF8OPT | IPMSG_OPT.UTF8OPT, ["Tux", "", "icon", "utf-8"], to);
  }

  /** Offers attachments; returns the packet number that names them. */
  async offer(to: number, text: string, files: IpmsgAttachment[]): Promise<number> {
    const packetNo = this.#packetNo;
    await this.#send(
      IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | IPMSG_OPT.FILEATTACHOPT | IPMSG_OPT.UTF8OPT,
      [text, formatAttachments(files)],
      to,
    );
    return packetNo;
  }

  close(): void {
    for (const c of [this.udp, this.tcp]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
}
