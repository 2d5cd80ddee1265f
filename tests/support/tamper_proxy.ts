/**
 * A TCP proxy on 127.0.0.1 in front of a file port that can alter the
 * stream: for the connection numbered `n` (0 the first), flip one byte at
 * an offset of what goes up (fetcher → server) or down; and it records the
 * first bytes each connection sent up (to replay them).
 */
export type Tamper = { connection: number; direction: "up" | "down"; at: number };

export class TamperProxy {
  readonly port: number;
  #listener: Deno.TcpListener;
  #conns = new Set<Deno.Conn>();
  #done: Promise<void>;
  tamper: Tamper | undefined;
  /** How many connections it took. */
  connections = 0;
  /** The first 4 KiB each connection sent up. */
  readonly up: Uint8Array[] = [];

  constructor(target: number) {
    this.#listener = Deno.listen({ transport: "tcp", hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#done = this.#accept(target);
  }

  async #accept(target: number): Promise<void> {
    for (;;) {
      let a: Deno.TcpConn;
      try {
        a = await this.#listener.accept();
      } catch {
        return;
      }
      const n = this.connections++;
      let b: Deno.TcpConn;
      try {
        b = await Deno.connect({ hostname: "127.0.0.1", port: target });
      } catch {
        a.close();
        continue;
      }
      this.#conns.add(a);
      this.#conns.add(b);
      this.up[n] = new Uint8Array(0);
      const close = () => {
        for (const c of [a, b]) {
          this.#conns.delete(c);
          try {
            c.close();
          } catch { /* closed */ }
        }
      };
      void Promise.all([this.#pipe(a, b, n, "up"), this.#pipe(b, a, n, "down")]).finally(close);
    }
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, n: number, direction: "up" | "down"): Promise<void> {
    const buf = new Uint8Array(256 * 1024);
    let offset = 0;
    try {
      for (;;) {
        const k = await from.read(buf);
        if (k === null) break;
        const chunk = buf.subarray(0, k);
        const t = this.tamper;
        if (t && t.connection === n && t.direction === direction && t.at >= offset && t.at < offset + k) {
          chunk[t.at - offset]! ^= 0x01;
        }
        if (direction === "up" && this.up[n]!.length < 4096) {
          const rec = new Uint8Array(Math.min(4096, this.up[n]!.length + k));
          rec.set(this.up[n]!);
          rec.set(chunk.subarray(0, rec.length - this.up[n]!.length), this.up[n]!.length);
          this.up[n] = rec;
        }
        offset += k;
        let w = 0;
        while (w < k) w += await to.write(chunk.subarray(w));
      }
    } catch { /* either side went away */ }
    try {
      to.close();
    } catch { /* closed */ }
    try {
      from.close();
    } catch { /* closed */ }
  }

  async close(): Promise<void> {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await this.#done;
  }
}
