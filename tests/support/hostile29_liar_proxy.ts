/**
 * A lying sender (hostile29): a proxy in front of a real file port whose
 * stream is in the clear (a previous-version sender, e2e off), that cuts
 * what goes down into frames and groups them into answers (a `file` head
 * naming its file, its `data` frames, its `end`), then lets a policy decide
 * what the fetcher gets: answers out of order, twice, one not asked, none,
 * more bytes than the file's size, a frame cut in half, a stall.
 */

export interface Answer {
  /** The file the head names. */
  file: number;
  head: Record<string, unknown>;
  /** The raw frames (length header included), head first, end last. */
  frames: Uint8Array[];
}

/** What the policy does with each answer of a connection: returns the bytes to send now (possibly none). */
export type Policy = (
  conn: number,
  a: Answer,
  state: Map<string, unknown>,
) => Uint8Array[] | "stall" | "close" | Promise<Uint8Array[]>;

/** In what a policy returns: the bytes before it go out, then nothing more ever (the connection stays open). */
export const STALL = new Uint8Array(0);

export function frame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  new DataView(out.buffer).setUint32(0, 1 + payload.length);
  out[4] = type;
  out.set(payload, 5);
  return out;
}

export function control(type: number, v: Record<string, unknown>): Uint8Array {
  return frame(type, new TextEncoder().encode(JSON.stringify(v)));
}

export class LiarProxy {
  readonly port: number;
  #listener: Deno.TcpListener;
  #conns = new Set<Deno.Conn>();
  #done: Promise<void>;
  connections = 0;
  /** `get` requests seen, per connection: [file, offset]. */
  readonly gets: [number, number][][] = [];
  policy: Policy;

  constructor(target: number, policy: Policy) {
    this.policy = policy;
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
      this.gets[n] = [];
      let b: Deno.TcpConn;
      try {
        b = await Deno.connect({ hostname: "127.0.0.1", port: target });
      } catch {
        a.close();
        continue;
      }
      this.#conns.add(a);
      this.#conns.add(b);
      const close = () => {
        for (const c of [a, b]) {
          this.#conns.delete(c);
          try {
            c.close();
          } catch { /* closed */ }
        }
      };
      void Promise.all([this.#up(a, b, n), this.#down(b, a, n)]).finally(close);
    }
  }

  async *#frames(from: Deno.Conn): AsyncGenerator<Uint8Array> {
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(256 * 1024);
    for (;;) {
      while (buf.length >= 4) {
        const len = new DataView(buf.buffer, buf.byteOffset).getUint32(0);
        if (buf.length < 4 + len) break;
        yield buf.slice(0, 4 + len);
        buf = buf.subarray(4 + len);
      }
      const k = await from.read(chunk);
      if (k === null) return;
      const next = new Uint8Array(buf.length + k);
      next.set(buf);
      next.set(chunk.subarray(0, k), buf.length);
      buf = next;
    }
  }

  async #write(to: Deno.Conn, bytes: Uint8Array): Promise<void> {
    for (let w = 0; w < bytes.length;) w += await to.write(bytes.subarray(w));
  }

  async #up(from: Deno.Conn, to: Deno.Conn, n: number): Promise<void> {
    try {
      for await (const f of this.#frames(from)) {
        if (f[4] === 4) {
          try {
            const v = JSON.parse(new TextDecoder().decode(f.subarray(5)));
            this.gets[n]!.push([v.file, v.offset]);
          } catch { /* not json */ }
        }
        await this.#write(to, f);
      }
    } catch { /* gone */ }
    try {
      to.close();
    } catch { /* closed */ }
  }

  async #down(from: Deno.Conn, to: Deno.Conn, n: number): Promise<void> {
    const state = new Map<string, unknown>();
    let cur: Answer | undefined;
    try {
      for await (const f of this.#frames(from)) {
        const type = f[4];
        if (!cur && type === 5) {
          const head = JSON.parse(new TextDecoder().decode(f.subarray(5)));
          if (typeof head.file === "number") {
            cur = { file: head.file, head, frames: [f] };
            continue;
          }
        }
        if (cur) {
          cur.frames.push(f);
          if (type !== 7) continue;
          const a = cur;
          cur = undefined;
          const out = await this.policy(n, a, state);
          if (out === "stall") {
            await new Promise(() => {}); // never: the fetcher must give up on its own
          }
          if (out === "close") break;
          for (const b of out as Uint8Array[]) {
            if (b === STALL) await new Promise(() => {});
            await this.#write(to, b);
          }
          continue;
        }
        await this.#write(to, f);
      }
    } catch { /* gone */ }
    try {
      to.close();
    } catch { /* closed */ }
  }

  async close(): Promise<void> {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await Promise.race([this.#done, new Promise((r) => setTimeout(r, 1000))]);
  }
}
