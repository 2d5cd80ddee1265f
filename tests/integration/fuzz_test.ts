/**
 * Fuzzing a running daemon over real sockets: 100,000 random and mutated
 * datagrams (mutations of a captured real hello and of real goodbyes, pings,
 * pongs, message fragments and acks) at its discovery and unicast ports, from
 * 40 loopback source addresses. Afterwards it still answers, still lists its
 * real peer, its memory stayed bounded, and its counters account for every
 * datagram: received = Σ by kind + Σ dropped by reason.
 *
 * The seed is printed; set LANCHAT_FUZZ_SEED to replay a run.
 */
import assert from "node:assert/strict";
import type { PeerJson } from "../../src/api/types.ts";
import { type DaemonProcess, freeUdpPort, killAll, startLoopbackDaemon } from "../support/daemon_process.ts";
import { encodeSigned, helloFor, newNodeKey } from "../support/hostile.ts";
import { decodePacket, type Packet } from "../../src/wire/mod.ts";
import { seededRandom } from "../../src/sim/sim.ts";

const TOTAL = Number(Deno.env.get("LANCHAT_FUZZ_COUNT") ?? 100_000);
/** Datagrams in flight at once: well under a loopback socket's receive buffer, so the kernel drops none. */
const BATCH = 40;
const SOURCES = 200;

// deno-lint-ignore no-explicit-any
const status = async (d: DaemonProcess): Promise<any> => await (await fetch(`${d.httpUrl}/status`)).json();

/** The daemon's resident set size, as it reports it. */
const rssBytes = async (d: DaemonProcess): Promise<number> => (await status(d)).memory.rssBytes;

const WEIRD_VALUES: unknown[] = [
  -1,
  0,
  2 ** 53,
  1e308,
  -1e308,
  1.5,
  "",
  "x".repeat(300),
  "\u0000\u001f",
  "\ud800",
  null,
  true,
  [],
  {},
  { nested: { deep: [1, 2, 3] } },
  "ffffffffffffffffffffffffffffffff",
];

/** One mutated datagram from `seeds`, or random bytes. */
function mutate(seeds: Uint8Array[], r: () => number): Uint8Array {
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  const op = Math.floor(r() * 7);
  const seed = pick(seeds);
  switch (op) {
    case 0: // random bytes, any length up to beyond the limit
      return Uint8Array.from({ length: Math.floor(r() * 1400) }, () => Math.floor(r() * 256));
    case 1: { // flip a few bytes
      const b = seed.slice();
      for (let k = 0, n = 1 + Math.floor(r() * 4); k < n; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      return b;
    }
    case 2: // truncate
      return seed.slice(0, Math.floor(r() * seed.length));
    case 3: { // append junk
      const extra = Uint8Array.from({ length: 1 + Math.floor(r() * 200) }, () => Math.floor(r() * 256));
      return new Uint8Array([...seed, ...extra]);
    }
    case 4: { // splice two seeds
      const other = pick(seeds);
      const cut = Math.floor(r() * seed.length);
      return new Uint8Array([...seed.subarray(0, cut), ...other.subarray(Math.floor(r() * other.length))]);
    }
    case 5: { // a field of the JSON body set to a weird value (valid JSON, wrong content)
      const text = new TextDecoder().decode(seed);
      const start = text.indexOf("{");
      const end = text.lastIndexOf("}");
      if (start < 0 || end < start) return seed;
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(text.slice(start, end + 1));
      } catch {
        return seed;
      }
      const keys = Object.keys(body);
      body[r() < 0.8 && keys.length ? pick(keys) : `unknown${Math.floor(r() * 9)}`] = pick(WEIRD_VALUES);
      const json = new TextEncoder().encode(JSON.stringify(body));
      const head = seed.subarray(0, 6);
      const hasLen = start === 8;
      const len = hasLen ? [json.length >> 8, json.length & 0xff] : [];
      return new Uint8Array([...head, ...len, ...json, ...seed.subarray(Math.min(seed.length, end + 1))]);
    }
    default: // an intact seed: a replay of something real
      return seed;
  }
}

/** Captures one real hello that node `id` broadcasts on the discovery port. */
async function captureHello(port: number, id: Promise<string>): Promise<Uint8Array> {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port, reuseAddress: true });
  try {
    while (true) {
      const [bytes] = await s.receive();
      const p = decodePacket(bytes);
      if (p.ok && p.value.kind === "hello" && p.value.id === await id) return bytes;
    }
  } finally {
    s.close();
  }
}

Deno.test({
  name: "a daemon under 100,000 random and mutated datagrams keeps running, keeps its peers and counts every one",
  sanitizeResources: false,
  fn: async () => {
    const seed = Number(Deno.env.get("LANCHAT_FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`fuzz seed ${seed}`);
    const r = seededRandom(seed);
    const port = freeUdpPort();
    const sockets: Deno.DatagramConn[] = [];
    try {
      const a = await startLoopbackDaemon(port, "target").started();
      const bProcess = startLoopbackDaemon(port, "real-peer");
      const capture = captureHello(port, bProcess.started().then((d) => d.id));
      const b = await bProcess.started();
      await a.joined(b.id, 2000);
      const realHello = await capture;
      const me = newNodeKey();
      const text = new TextEncoder().encode("fuzz ".repeat(100));
      const packets: Packet[] = [
        helloFor(me.id, "fuzzer", 40000),
        { kind: "goodbye", id: me.id, incarnation: 1 },
        { kind: "ping", id: me.id, incarnation: 1, nonce: 7 },
        { kind: "pong", id: me.id, incarnation: 1, nonce: 7 },
        ...[0, 1].map((index): Packet => ({
          kind: "msg",
          id: me.id,
          incarnation: 1,
          to: a.id,
          messageId: "cd".repeat(16),
          seq: 1,
          base: 1,
          sentAt: Date.now(),
          length: text.length,
          count: 2,
          index,
          retry: 0,
          end: index === 1,
          payload: text.subarray(index * 250, index * 250 + 250),
        })),
        {
          kind: "ack",
          id: me.id,
          incarnation: 1,
          messageId: "ef".repeat(16),
          count: 9,
          received: new Uint8Array(2),
          done: false,
        },
        {
          kind: "ack",
          id: me.id,
          incarnation: 1,
          messageId: "ef".repeat(16),
          count: 1,
          received: new Uint8Array(1),
          done: true,
        },
      ];
      const seeds = [realHello, ...packets.map((p) => encodeSigned(p, me.signer))];
      for (let i = 0; i < SOURCES; i++) {
        sockets.push(Deno.listenDatagram({ transport: "udp", hostname: `127.0.0.${2 + i}`, port: 0 }));
      }
      const rssBefore = await rssBytes(a);
      const before = (await status(a)).counters;
      let sent = 0;
      const started = performance.now();
      while (sent < TOTAL) {
        const n = Math.min(BATCH, TOTAL - sent);
        for (let k = 0; k < n; k++) {
          // The shared discovery port gets broadcasts (a unicast datagram there would reach only the
          // daemon that bound it last); the unicast port gets the rest.
          const broadcast = r() < 0.15;
          await sockets[(sent + k) % SOURCES]!.send(mutate(seeds, r), {
            transport: "udp",
            hostname: broadcast ? "127.255.255.255" : "127.0.0.1",
            port: broadcast ? port : a.unicastPort,
          });
        }
        sent += n;
        // Wait until the daemon has read them all: no datagram is left to the kernel to drop.
        for (let tries = 0;; tries++) {
          const c = (await status(a)).counters;
          if (c.datagramsIn - before.datagramsIn >= sent) break;
          if (tries > 500) throw new Error(`daemon stopped reading: ${c.datagramsIn - before.datagramsIn} of ${sent}`);
          await new Promise((res) => setTimeout(res, 1));
        }
      }
      const seconds = (performance.now() - started) / 1000;
      const after = (await status(a)).counters;
      const rssAfter = await rssBytes(a);
      const sum = (o: Record<string, number>) => Object.values(o).reduce((x, y) => x + y, 0);
      const dropped = Object.fromEntries(
        Object.entries(after.dropped as Record<string, number>).map(([k, v]) => [k, v - before.dropped[k]])
          .filter(([, v]) => (v as number) > 0),
      );
      console.log(
        `fuzz: ${sent} datagrams in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s); RSS ${
          (rssBefore / 2 ** 20).toFixed(0)
        } → ${(rssAfter / 2 ** 20).toFixed(0)} MiB; dropped ${JSON.stringify(dropped)}; received ${
          JSON.stringify(after.received)
        }`,
      );
      // Every datagram counted exactly once: by kind when taken, by reason when dropped.
      assert.equal(after.datagramsIn, sum(after.received) + sum(after.dropped));
      // All of ours arrived and were counted; the rest is the real peer's own traffic meanwhile.
      const extra = after.datagramsIn - before.datagramsIn - sent;
      assert.ok(extra >= 0 && extra < 20 + 8 * seconds, `${extra} datagrams beyond the fuzz`);
      // Still alive, still knows the real peer, memory bounded.
      assert.equal(await (await fetch(`${a.httpUrl}/healthz`)).text(), "ok\n");
      const peers: PeerJson[] = await (await fetch(`${a.httpUrl}/peers`)).json();
      assert.ok(peers.some((p) => p.id === b.id && p.state === "alive"), "the real peer is still listed");
      assert.ok(peers.length <= 1 + 16, `roster ${peers.length}`);
      assert.ok(rssAfter < rssBefore + 64 * 2 ** 20, `RSS grew from ${rssBefore} to ${rssAfter}`);
      // And it still works: a real message goes through.
      const res = await fetch(`${b.httpUrl}/messages?wait=5`, {
        method: "POST",
        body: JSON.stringify({ to: a.id, text: "still there?" }),
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    } finally {
      for (const s of sockets) s.close();
      await killAll();
    }
  },
});
