/**
 * The messaging section of `deno task bench` (`--only messaging`), two
 * daemons on loopback:
 * - acked throughput: messages posted to the sender's API in batches of
 *   500, from the first post until the receiver has stored them all, beside
 *   the storage floor's ceiling (scripts/store_floor.ts: the daemons' own
 *   Store calls, no network) measured in the same run, alternating floor and
 *   daemons `--messaging-runs` times (target ≥ 70 % of the ceiling); and one
 *   message per request (64 at a time);
 * - latency: one message at a time, the daemon's own round-trip time from
 *   first transmission to the ack (which the receiver sends after its
 *   SQLite commit), p50 and p99 (targets ≤ 1 ms, ≤ 5 ms);
 * - a raw Deno UDP baseline (scripts/udp_baseline.ts: a reused-buffer loop,
 *   the datagram size one message makes);
 * - end-to-end encryption: acked messages/s (batches) between two daemons of
 *   this checkout (encrypted) and two of the last commit without it
 *   (`--plain-rev`, a git worktree), alternating rounds (`--e2e-rounds`, 0
 *   leaves it out), medians compared (scripts/bench_messaging_e2e.ts); the
 *   end-to-end session table (scripts/bench_e2e.ts).
 *
 * Alone: `deno run -A scripts/bench_messaging.ts [--messages 5000] [--e2e-rounds 0]`
 * prints the figures and writes nothing.
 *
 * @module
 */
import { type DaemonProcess, freeUdpPort, killAll, startLoopbackDaemon } from "../tests/support/daemon_process.ts";
import { percentileOf } from "../src/sim/scale_sim.ts";
import type { BenchContext } from "./bench_history.ts";
import { e2eVersusPlain, PLAIN_REV } from "./bench_messaging_e2e.ts";

/** Messages per posted batch (`{"messages": […]}`). */
export const BATCH = 500;
/** Of the storage floor's ceiling, what acked messages/s in batches should reach. */
const FLOOR_TARGET = 0.7;

export interface MessagingOptions {
  /** Messages of the one-per-request row; the batch rows post 4 times as many. */
  messages: number;
  latencySamples: number;
  plainRev?: string;
  e2eRounds: number;
  /** Alternations of storage floor and daemons (batches). */
  runs: number;
  /** Extra daemon flags (e.g. a profiler prefix), for investigation. */
  prefix?: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Acked messages/s from `a` to `b`, until `b` stored all `count`: one
 * message per request with 64 requests at a time (`batch` 1), or `batch`
 * messages per request (`{"messages": […]}`) with two at a time.
 */
export async function throughput(
  a: DaemonProcess,
  b: DaemonProcess,
  count: number,
  text: string,
  batch = 1,
): Promise<number> {
  const received0 = (await (await fetch(`${b.httpUrl}/status`)).json()).messaging.messagesReceived;
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: batch === 1 ? 64 : 2 }, async () => {
    while (next < count) {
      const n = Math.min(batch, count - next);
      next += n;
      const body = batch === 1
        ? { to: b.id, text }
        : { messages: Array.from({ length: n }, () => ({ to: b.id, text })) };
      const r = await fetch(`${a.httpUrl}/messages`, { method: "POST", body: JSON.stringify(body) });
      if (r.status !== 202 && r.status !== 200) throw new Error(`POST /messages: ${r.status} ${await r.text()}`);
      await r.body?.cancel();
    }
  }));
  while ((await (await fetch(`${b.httpUrl}/status`)).json()).messaging.messagesReceived - received0 < count) {
    await sleep(5);
  }
  return Math.round(count / ((performance.now() - t0) / 1000));
}

/** The storage floor (scripts/store_floor.ts) for `count` messages, in a process of its own. */
export async function storeFloor(count: number): Promise<
  { senderUsPerMessage: number; receiverUsPerMessage: number; perSecond: number }
> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      new URL("./store_floor.ts", import.meta.url).pathname,
      String(count),
      String(BATCH),
    ],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("store_floor.ts failed");
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

/** Raw UDP: datagrams/s a reused-buffer Deno loop receives from another Deno process. */
async function rawUdp(count: number, size: number): Promise<number> {
  const port = freeUdpPort();
  const script = new URL("./udp_baseline.ts", import.meta.url).pathname;
  const recv = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", script, "recv", String(port), String(count)],
    stdout: "piped",
  }).spawn();
  const reader = recv.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("ready")) buf += (await reader.read()).value ?? "";
  await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", script, "send", String(port), String(count), String(size)],
  }).output();
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
  }
  await recv.status;
  return JSON.parse(buf.trim().split("\n").at(-1)!).perSecond;
}

/** CPU seconds (user + system) a daemon has used, from /proc. */
function cpuSeconds(d: DaemonProcess): number {
  const f = Deno.readTextFileSync(`/proc/${d.child.pid}/stat`).split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/** Runs the messaging section: prints its figures, adds its summary rows, writes bench/results/messaging.*. */
export async function benchMessaging(ctx: BenchContext, o: MessagingOptions): Promise<void> {
  console.log(`messaging — two daemons on loopback`);
  const port = freeUdpPort();
  const text = "lunch at noon? ".repeat(6).trim(); // 89 bytes of text
  const batched = o.messages * 4;
  try {
    const a = await startLoopbackDaemon(port, "bench-a", { intervalMs: 2000, prefix: o.prefix }).started();
    const b = await startLoopbackDaemon(port, "bench-b", { intervalMs: 2000, prefix: o.prefix }).started();
    await a.joined(b.id, 5000);
    const post = (wait: boolean) =>
      fetch(`${a.httpUrl}/messages${wait ? "?wait=5" : ""}`, {
        method: "POST",
        body: JSON.stringify({ to: b.id, text }),
      }).then((r) => r.json());
    await throughput(a, b, 1000, text, BATCH); // warm-up: the session, the JIT
    // Latency, one at a time.
    const rtts: number[] = [];
    for (let i = 0; i < o.latencySamples; i++) rtts.push((await post(true)).rttMs);
    // Throughput in batches beside the storage floor, alternated so the load of the machine falls on both.
    // The CPU each daemon spends per message, beside the floor's µs per message: less moved by the machine's load.
    const rounds: {
      floor: Awaited<ReturnType<typeof storeFloor>>;
      perSecond: number;
      ratio: number;
      cpuUsPerMessage: { sender: number; receiver: number };
    }[] = [];
    for (let r = 0; r < o.runs; r++) {
      const floor = await storeFloor(batched);
      const c0 = [cpuSeconds(a), cpuSeconds(b)];
      const perSecond = await throughput(a, b, batched, text, BATCH);
      const us = (d: DaemonProcess, i: number) => Math.round(((cpuSeconds(d) - c0[i]!) / batched) * 1e6);
      const cpuUsPerMessage = { sender: us(a, 0), receiver: us(b, 1) };
      rounds.push({
        floor,
        perSecond,
        ratio: Math.round((perSecond / floor.perSecond) * 1000) / 1000,
        cpuUsPerMessage,
      });
      console.log(
        `  round ${r + 1}: ${perSecond}/s acked, storage floor ${floor.perSecond}/s: ${
          pct(perSecond / floor.perSecond)
        }; ` +
          `CPU µs per message sender / receiver ${cpuUsPerMessage.sender} / ${cpuUsPerMessage.receiver}, ` +
          `floor ${floor.senderUsPerMessage} / ${floor.receiverUsPerMessage}`,
      );
    }
    const single = await throughput(a, b, o.messages, text);
    // The datagram a message of this text makes, for the raw baseline.
    const size = 6 + 2 + 220 + new TextEncoder().encode(text).length;
    const raw = await rawUdp(Math.max(50_000, o.messages * 10), size);
    const last = rounds.at(-1)!;
    const latencyMs = {
      p50: percentileOf(rtts, 50),
      p99: percentileOf(rtts, 99),
      max: Math.max(...rtts),
      samples: rtts.length,
    };
    const md = [
      `| figure | measured | target |`,
      `|---|---|---|`,
      ...rounds.map((r, i) =>
        `| round ${
          i + 1
        }: acked messages/s, posted in batches of ${BATCH} (API → stored at the receiver, ${batched} messages) / the storage floor's ceiling, same run | ${r.perSecond} / ${r.floor.perSecond} = ${
          pct(r.ratio)
        } | ≥ ${FLOOR_TARGET * 100} % |`
      ),
      ...rounds.map((r, i) =>
        `| round ${
          i + 1
        }: CPU µs per acked message, sender / receiver daemon; the storage floor's µs, same run | ${r.cpuUsPerMessage.sender} / ${r.cpuUsPerMessage.receiver}; ${r.floor.senderUsPerMessage} / ${r.floor.receiverUsPerMessage} | |`
      ),
      `| acked messages/s, one message per request, 64 requests at a time (${o.messages} messages) | ${single} | |`,
      `| raw Deno UDP datagrams/s, same size (${size} B), same run | ${raw} | |`,
      `| acked messages/s in batches / raw UDP | ${pct(last.perSecond / raw)} | ≥ 50 % |`,
      `| storage alone (scripts/store_floor.ts, the daemon's own Store calls, no network): µs per message, sender / receiver (last round) | ${last.floor.senderUsPerMessage} / ${last.floor.receiverUsPerMessage} µs | |`,
      `| latency p50 (first send → ack after the receiver's commit, ${rtts.length} samples) | ${
        latencyMs.p50.toFixed(2)
      } ms | ≤ 1 ms |`,
      `| latency p99 | ${latencyMs.p99.toFixed(2)} ms | ≤ 5 ms |`,
    ];
    ctx.summary.push(
      ...rounds.map((r, i): [string, string, string] => [
        `acked messages/s in batches of ${BATCH} / storage floor's ceiling, same run (round ${i + 1})`,
        `${r.perSecond} / ${r.floor.perSecond}: ${pct(r.ratio)}`,
        `≥ ${FLOOR_TARGET * 100} %`,
      ]),
      [
        "acked messages/s vs raw Deno UDP, same run",
        `${last.perSecond} vs ${raw}: ${pct(last.perSecond / raw)}`,
        "≥ 50 %",
      ],
      [
        "message latency p50 / p99, loopback",
        `${latencyMs.p50.toFixed(2)} / ${latencyMs.p99.toFixed(2)} ms`,
        "≤ 1 / ≤ 5 ms",
      ],
    );
    let e2e: Awaited<ReturnType<typeof e2eVersusPlain>> | undefined;
    if (o.e2eRounds > 0) {
      // Every message above went end-to-end encrypted; the same figure beside daemons without it.
      e2e = await e2eVersusPlain({
        rev: o.plainRev ?? PLAIN_REV,
        rounds: o.e2eRounds,
        messages: batched,
        throughput: (x, y) => throughput(x, y, batched, text, BATCH),
      });
      md.push(
        `| acked messages/s in batches, end-to-end encrypted / unencrypted (${e2e.rev}), medians of ${e2e.rounds} alternating rounds, same run | ${e2e.medians.encrypted} / ${e2e.medians.plain} = ${
          pct(e2e.ratio)
        } | ≥ 90 % |`,
        `| CPU both daemons spend per acked message, end-to-end encrypted / unencrypted (${e2e.rev}), medians | ${e2e.cpuMicrosPerMessage.medians.encrypted} / ${e2e.cpuMicrosPerMessage.medians.plain} µs | |`,
      );
      ctx.summary.push(
        [
          `acked messages/s end-to-end encrypted vs unencrypted (${e2e.rev}), same run`,
          `${e2e.medians.encrypted} vs ${e2e.medians.plain}: ${pct(e2e.ratio)}`,
          "≥ 90 %",
        ],
        [
          `CPU both daemons spend per acked message, end-to-end encrypted vs unencrypted (${e2e.rev})`,
          `${e2e.cpuMicrosPerMessage.medians.encrypted} vs ${e2e.cpuMicrosPerMessage.medians.plain} µs`,
          "",
        ],
      );
    }
    md.push("", `Measured ${ctx.started.toISOString()} on ${ctx.machine}, loopback.`, "");
    console.log(md.join("\n"));
    if (o.e2eRounds > 0) await sessionTable(ctx);
    await ctx.writeResult("messaging", {
      measuredAt: ctx.started.toISOString(),
      machine: ctx.machine,
      messages: batched,
      acked: { rounds, oneMessagePerRequest: { perSecond: single, messages: o.messages } },
      rawUdp: { perSecond: raw, datagramBytes: size },
      ratio: Math.round((last.perSecond / raw) * 1000) / 1000,
      latencyMs,
      e2e,
    }, md.join("\n"));
    // Under a profiler (`--prefix`), the daemons end on their own so that it writes its profile.
    if (o.prefix) { for (const d of [a, b]) d.signal("SIGTERM"), await d.wait(); }
  } finally {
    await killAll();
  }
}

/** The session table alone (scripts/bench_e2e.ts, its own process so its memory is its own): 1,000 sessions, a handshake. */
async function sessionTable(ctx: BenchContext): Promise<void> {
  const table = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--v8-flags=--expose-gc", "--allow-all", new URL("./bench_e2e.ts", import.meta.url).pathname],
    stdout: "piped",
  }).output();
  const tableOut = new TextDecoder().decode(table.stdout);
  console.log(tableOut);
  const memory = [...tableOut.matchAll(/memory: (\d+) peers .*? (initiator|responder): ([\d.]+) MiB/g)];
  const handshake = /handshake: ([\d.]+) ms per new peer/.exec(tableOut);
  if (memory.length > 0) {
    ctx.summary.push([
      `memory of ${memory[0]![1]} end-to-end sessions (initiator / responder)`,
      memory.map((m) => `${m[3]} MiB`).join(" / "),
      "≤ 4 MiB",
    ]);
  }
  if (handshake) ctx.summary.push(["end-to-end handshake per new peer, both sides", `${handshake[1]} ms`, ""]);
}

if (import.meta.main) {
  const arg = (name: string, fallback: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 && Deno.args[i + 1] ? Deno.args[i + 1]! : fallback;
  };
  const prefix = arg("prefix", "");
  await benchMessaging({
    started: new Date(),
    machine: `${Deno.build.target}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
    summary: [],
    writeResult: () => Promise.resolve(),
  }, {
    messages: Number(arg("messages", "5000")),
    latencySamples: Number(arg("latency-samples", "500")),
    plainRev: arg("plain-rev", PLAIN_REV),
    e2eRounds: Number(arg("e2e-rounds", "0")),
    runs: Number(arg("messaging-runs", "2")),
    prefix: prefix ? prefix.split(" ") : undefined,
  });
}
