/**
 * `deno run --allow-all scripts/bench_sse.ts [--clients 10000] [--parallel 50] [--rounds 1]`:
 * memory and bookkeeping of a daemon after many event-stream (`GET /events`)
 * clients come and go. Each client opens the stream, reads its first line
 * and hangs up. Prints, per round, the resident size and JavaScript heap
 * right after, after the daemon's own compaction check, and after
 * `POST /memory/compact`; and `/status`'s `eventStreams` (streams open,
 * event listeners held). Asserts nothing.
 */
import { freeUdpPort, killAll, startLoopbackDaemon } from "../tests/support/daemon_process.ts";

const arg = (name: string, d: number) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : d;
};
const CLIENTS = arg("clients", 10_000);
const PARALLEL = arg("parallel", 50);
const ROUNDS = arg("rounds", 1);
/** `--hangup`: each client hangs up as soon as its request is written, before any answer. */
const HANGUP = Deno.args.includes("--hangup");
/** `--plain`: each client asks for /healthz instead (a comparison: what any 10,000 connections leave). */
const PATH = Deno.args.includes("--plain") ? "/healthz" : "/events";
const UNTIL = PATH === "/events" ? "lanchat events" : "ok";
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const d = await startLoopbackDaemon(freeUdpPort(), "sse").started();
const url = new URL(d.httpUrl);
const figure = async (label: string) => {
  const s = await (await fetch(`${d.httpUrl}/status`)).json();
  const m = s.memory;
  console.log(
    `${label.padEnd(36)} rss ${(m.rssBytes / MiB).toFixed(1)} MiB, heap ${(m.heapUsedBytes / MiB).toFixed(1)}/${
      (m.heapTotalBytes / MiB).toFixed(1)
    } MiB, http open ${s.http?.open}, eventStreams ${JSON.stringify(s.eventStreams)}`,
  );
};

/** One client: opens /events (or /healthz), reads until the stream's first comment, hangs up. */
async function client(): Promise<void> {
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  try {
    await conn.write(
      new TextEncoder().encode(`GET ${PATH} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${d.token}\r\n\r\n`),
    );
    if (HANGUP) return;
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.includes(UNTIL)) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    conn.close();
  }
}

try {
  await figure("before");
  for (let round = 1; round <= ROUNDS; round++) {
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next < CLIENTS) {
        next++;
        await client();
      }
    }));
    console.log(
      `round ${round}: ${CLIENTS} clients came and went in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    await sleep(1000);
    await figure("1 s after the last one");
    await sleep(25_000);
    await figure("25 s later (the daemon's own check)");
    const r = await fetch(`${d.httpUrl}/memory/compact`, { method: "POST" });
    await r.body?.cancel();
    await figure(`after POST /memory/compact (${r.status})`);
  }
} finally {
  await killAll();
}
