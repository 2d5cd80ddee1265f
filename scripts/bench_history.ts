/**
 * `deno task bench --only history`: a year of history, measured.
 *
 * - At each size (10k, 100k, 1M messages, grown in one data directory by
 *   scripts/history_fill.ts through the daemon's own Store): bytes per
 *   message, start time (spawn to the "started" line), RSS after start, and
 *   the HTTP latency (median and worst of 21, from this process, body read)
 *   of the newest page, the oldest, a page in the middle by cursor and by
 *   time, a peer's page, and searches: a hit, a rare hit in the oldest
 *   history, CJK, a miss, a two-character miss.
 * - Memory after a burst, at the largest size: RSS before and after six
 *   `limit=10000` reads, and a minute later.
 * - A sustained fill: two daemons, batches of 100 messages (`--fill-batch`)
 *   posted at 7,000/s (`--fill-rate`) for 60 s (`--fill-seconds`): WAL peak of each (sampled every
 *   100 ms), worst and p99 `/healthz` latency of each (polled every 100 ms),
 *   SIGTERM to exit, and RSS a minute after.
 * - An outbox of 100,000 (`--outbox`) for a peer that is offline: `/status`
 *   latency with it, restart time and RSS after restart beside an idle
 *   daemon's, and the drain rate when the peer comes back.
 *
 * Prints figures, asserts nothing.
 */
import { BOB, timeOf } from "./history_fill.ts";
import {
  DaemonProcess,
  freeUdpPort,
  killAll,
  startLoopbackDaemon,
  tempDataDir,
} from "../tests/support/daemon_process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

/** What the bench driver gives a part: where to write results and the summary rows. */
export interface BenchContext {
  started: Date;
  machine: string;
  summary: [string, string, string][];
  writeResult(name: string, json: unknown, md: string): Promise<void>;
}

export interface HistoryOptions {
  sizes: number[];
  fillSeconds: number;
  fillRate: number;
  fillBatch: number;
  outbox: number;
  /** How long memory is watched after a burst ("a minute later"). */
  settleSeconds: number;
  /** Which parts to run: sizes (pages, search, memory after a burst), fill, outbox. */
  parts: Set<string>;
}

/** Resident memory of a process, from `ps` (no request to the daemon, so nothing allocated to answer). */
export async function rssMiB(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).output();
  const kb = Number(new TextDecoder().decode(out.stdout).trim());
  return Math.round((kb / 1024) * 10) / 10;
}

function fileBytes(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/** ms for one GET, body read. */
async function timeGet(url: string): Promise<{ ms: number; status: number; body: string }> {
  const t0 = performance.now();
  const r = await fetch(url);
  const body = await r.text();
  return { ms: performance.now() - t0, status: r.status, body };
}

/**
 * Median and worst of `n` GETs, after one that is timed apart (`first`: the
 * first request of its kind after start prepares its statements and
 * compiles its code).
 */
async function latency(url: string, n = 21): Promise<{ first: number; median: number; max: number; results: number }> {
  const ms: number[] = [];
  let results = 0;
  const first = await timeGet(url);
  for (let i = 0; i < n; i++) {
    const r = await timeGet(url);
    if (r.status !== 200) throw new Error(`GET ${url}: ${r.status} ${r.body}`);
    const j = JSON.parse(r.body);
    results = Array.isArray(j) ? j.length : Array.isArray(j.messages) ? j.messages.length : 1;
    ms.push(r.ms);
  }
  ms.sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 100) / 100;
  return { first: round(first.ms), median: round(ms[n >> 1]!), max: round(ms[n - 1]!), results };
}

async function fill(dir: string, count: number): Promise<{ perSecond: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      new URL("./history_fill.ts", import.meta.url).pathname,
      dir,
      String(count),
    ],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("history_fill.ts failed");
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

/** Starts a daemon on `dir`; returns it with the ms from spawn to its "started" line. */
async function startTimed(port: number, name: string, dir: string): Promise<{ d: DaemonProcess; startMs: number }> {
  const t0 = performance.now();
  const d = await startLoopbackDaemon(port, name, { dataDir: dir, intervalMs: 2000 }).started(60_000);
  return { d, startMs: Math.round(performance.now() - t0) };
}

/** ms from SIGTERM to exit. */
async function stopTimed(d: DaemonProcess): Promise<number> {
  const t0 = performance.now();
  d.signal("SIGTERM");
  await d.wait();
  return Math.round(performance.now() - t0);
}

type Latency = { first: number; median: number; max: number };
const fmt = (l: Latency) => `${l.median} / ${l.max} (${l.first})`;

export async function benchHistory(ctx: BenchContext, o: HistoryOptions): Promise<void> {
  console.log("history — one data directory grown to each size; two daemons on loopback for the fill and the outbox");
  const port = freeUdpPort();
  const dir = tempDataDir();
  const rows: Record<string, unknown>[] = [];
  let idleRss = 0;
  let idleStartMs = 0;
  let burst: { before: number; after: number; minuteLater: number; series: number[] } | undefined;
  try {
    // An idle daemon on an empty directory: the reference for memory and start time.
    {
      const { d, startMs } = await startTimed(port, "idle", tempDataDir());
      await sleep(3000);
      idleRss = await rssMiB(d.child.pid);
      idleStartMs = startMs;
      await stopTimed(d);
      console.log(`idle daemon: started in ${startMs} ms, RSS ${idleRss} MiB`);
    }
    for (const size of o.parts.has("sizes") ? o.sizes : []) {
      const filled = await fill(dir, size);
      const bytes = fileBytes(`${dir}/lanchat.db`) + fileBytes(`${dir}/lanchat.db-wal`);
      const { d, startMs } = await startTimed(port, "history", dir);
      await sleep(2000);
      const rss = await rssMiB(d.child.pid);
      const base = d.httpUrl;
      const mid = Math.floor(size / 2);
      const iso = encodeURIComponent(new Date(timeOf(mid)).toISOString());
      const q = (s: string) => encodeURIComponent(s);
      const row = {
        messages: size,
        fillPerSecond: filled.perSecond,
        bytesPerMessage: Math.round(bytes / size),
        databaseMiB: Math.round((bytes / MiB) * 10) / 10,
        startMs,
        rssMiB: rss,
        newest: await latency(`${base}/messages?limit=100`),
        oldest: await latency(`${base}/messages?after=0&limit=100`),
        middleByCursor: await latency(`${base}/messages?before=${mid}&limit=100`),
        middleByTime: await latency(`${base}/messages?after=${iso}&limit=100`),
        peerMiddle: await latency(`${base}/messages?peer=${BOB}&before=${mid}&limit=100`),
        searchHit: await latency(`${base}/messages/search?q=deadline&limit=50`),
        searchOldest: await latency(`${base}/messages/search?q=zebracorn&limit=50`),
        searchCjk: await latency(`${base}/messages/search?q=${q("午饭吃什么")}&limit=50`),
        searchMiss: await latency(`${base}/messages/search?q=qxqxqxq&limit=50`),
        searchShortMiss: await latency(`${base}/messages/search?q=qx&limit=50`),
      };
      console.log(JSON.stringify(row));
      rows.push(row);
      if (size === o.sizes.at(-1)) {
        // Memory after a burst of big reads, then a minute of nothing.
        const before = await rssMiB(d.child.pid);
        for (let i = 0; i < 6; i++) {
          await timeGet(`${base}/messages?before=${Math.floor((size * (i + 1)) / 7)}&limit=10000`);
        }
        const after = await rssMiB(d.child.pid);
        const series: number[] = [];
        for (let s = 0; s < 6; s++) {
          await sleep(o.settleSeconds * 1000 / 6);
          series.push(await rssMiB(d.child.pid));
        }
        burst = { before, after, minuteLater: series.at(-1)!, series };
        console.log(
          `six limit=10000 reads: RSS ${before} → ${after} MiB, a minute later ${burst.minuteLater} MiB (${
            series.join(", ")
          })`,
        );
      }
      await stopTimed(d);
    }
    const sustained = o.parts.has("fill") ? await sustainedFill(port, o) : undefined;
    const outbox = o.parts.has("outbox") ? await outboxRestart(port, o.outbox) : undefined;

    const md: string[] = [];
    const sizes = rows.map((r) => r.messages as number);
    const at = `at ${(sizes.at(-1) ?? 0).toLocaleString("en")} messages`;
    if (rows.length > 0) {
      const lat = (key: string, label: string, target: string) =>
        `| ${label} | ${rows.map((r) => fmt(r[key] as Latency)).join(" | ")} | ${target} |`;
      md.push(
        `| at N messages: ms, median / worst of 21 GETs (HTTP included) after a first one (its time in brackets) | ${
          sizes.map((n) => n.toLocaleString("en")).join(" | ")
        } | target |`,
        `|---|${sizes.map(() => "---").join("|")}|---|`,
        `| bytes per message (database + WAL, search index included) | ${
          rows.map((r) => r.bytesPerMessage).join(" | ")
        } | |`,
        `| start, spawn to "started" (ms; idle empty: ${idleStartMs}) | ${
          rows.map((r) => r.startMs).join(" | ")
        } | flat |`,
        `| RSS after start (MiB; idle empty: ${idleRss}) | ${rows.map((r) => r.rssMiB).join(" | ")} | |`,
        lat("newest", "newest page (100)", "≤ 5 ms"),
        lat("oldest", "oldest page", "≤ 5 ms"),
        lat("middleByCursor", "middle page, by cursor", "≤ 5 ms"),
        lat("middleByTime", "middle page, by time", "≤ 5 ms"),
        lat("peerMiddle", "a peer's middle page", "≤ 5 ms"),
        lat("searchHit", "search hit (1 in 1,000; 50 newest)", "≤ 50 ms"),
        lat("searchOldest", "search hit only in the 5 oldest", "≤ 50 ms"),
        lat("searchCjk", "search CJK (1 in 100)", "≤ 50 ms"),
        lat("searchMiss", "search miss", "≤ 50 ms"),
        lat("searchShortMiss", "search miss, 2 characters (newest 100,000 scanned)", "≤ 50 ms"),
        "",
      );
      const last = rows.at(-1)!;
      const worst = (keys: string[]) => Math.max(...keys.map((k) => (last[k] as Latency).max));
      ctx.summary.push(
        [
          `history page, worst of every kind ${at}`,
          `${worst(["newest", "oldest", "middleByCursor", "middleByTime", "peerMiddle"]).toFixed(1)} ms`,
          "≤ 5 ms",
        ],
        [
          `search, worst of every kind ${at}`,
          `${worst(["searchHit", "searchOldest", "searchCjk", "searchMiss", "searchShortMiss"]).toFixed(1)} ms`,
          "≤ 50 ms",
        ],
      );
    }
    if (burst) {
      md.push(
        `Six \`limit=10000\` reads ${at}: RSS ${burst.before} → ${burst.after} MiB, ${burst.minuteLater} MiB a minute later (every 10 s: ${
          burst.series.join(", ")
        }). Target: the lean-daemon RSS (runtime floor + 12 MiB) within a minute; an idle daemon here: ${idleRss} MiB.`,
        "",
      );
      ctx.summary.push([
        "RSS a minute after six limit=10000 reads",
        `${burst.minuteLater} MiB (idle ${idleRss})`,
        "lean daemon",
      ]);
    }
    if (sustained) {
      md.push(
        `Sustained fill, ${sustained.seconds} s at ${o.fillRate}/s offered (batches of ${o.fillBatch}; one such POST holds the event loop for ~${
          Math.round(o.fillBatch * 0.043)
        } ms by itself, at ~43 µs a message): ${sustained.acked} acked (${sustained.ackedPerSecond}/s); WAL peak ${
          sustained.walPeakMiB.join(" / ")
        } MiB (sender / receiver; target ≤ 64), databases ${sustained.dbMiB.join(" / ")} MiB; \`/healthz\` worst ${
          sustained.healthzMax.join(" / ")
        } ms, p99 ${sustained.healthzP99.join(" / ")} ms (target: no pause over 50 ms); SIGTERM to exit ${
          sustained.stopMs.join(" / ")
        } ms; RSS right after ${sustained.rssAfter.join(" / ")} MiB, a minute later ${
          sustained.rssMinuteLater.join(" / ")
        } MiB.`,
        "",
      );
      ctx.summary.push(
        [
          `WAL peak, ${o.fillRate}/s for ${sustained.seconds} s`,
          `${Math.max(...sustained.walPeakMiB)} MiB`,
          "≤ 64 MiB",
        ],
        [`worst /healthz during that fill`, `${Math.max(...sustained.healthzMax)} ms`, "≤ 50 ms"],
      );
    }
    if (outbox) {
      const n = outbox.queued.toLocaleString("en");
      md.push(
        `Outbox of ${n} for an offline peer: \`/status\` ${
          fmt(outbox.status)
        } ms; RSS ${outbox.rssQueued} MiB before the restart; restart (spawn to "started") ${outbox.restartMs} ms (idle empty: ${outbox.idleStartMs} ms; target ≤ 300 ms); RSS after the restart ${outbox.rssAfterRestart} MiB (an idle daemon: ${outbox.rssIdle}; target ≤ idle + 32), ${outbox.rssDrainPeak} MiB at most while draining; drained in ${outbox.drainSeconds} s, ${outbox.drainPerSecond}/s (target ≥ 10,800/s).`,
        "",
      );
      ctx.summary.push(
        [`restart with ${n} queued`, `${outbox.restartMs} ms (idle ${outbox.idleStartMs})`, "≤ 300 ms"],
        [
          `RSS with ${n} queued, after restart`,
          `${outbox.rssAfterRestart} MiB (idle ${outbox.rssIdle})`,
          `≤ idle + 32 MiB`,
        ],
        ["outbox drain", `${outbox.drainPerSecond}/s`, "≥ 10,800/s"],
      );
    }
    md.push(
      `Measured ${ctx.started.toISOString()} on ${ctx.machine}. Reproduce: \`deno task bench --only history\`.`,
      "",
    );
    console.log("\n" + md.join("\n"));
    await ctx.writeResult("history", {
      measuredAt: ctx.started.toISOString(),
      machine: ctx.machine,
      idleRss,
      idleStartMs,
      sizes: rows,
      burst,
      sustained,
      outbox,
    }, md.join("\n"));
  } finally {
    await killAll();
  }
}

interface Sustained {
  seconds: number;
  acked: number;
  ackedPerSecond: number;
  walPeakMiB: number[];
  dbMiB: number[];
  healthzMax: number[];
  healthzP99: number[];
  stopMs: number[];
  rssAfter: number[];
  rssMinuteLater: number[];
}

/** Two fresh daemons; `fillRate` messages a second from a to b, `fillBatch` a request, for `fillSeconds`. */
async function sustainedFill(port: number, o: HistoryOptions): Promise<Sustained> {
  const dirs = [tempDataDir(), tempDataDir()];
  const a = await startLoopbackDaemon(port, "fill-a", { dataDir: dirs[0], intervalMs: 2000 }).started();
  const b = await startLoopbackDaemon(port, "fill-b", { dataDir: dirs[1], intervalMs: 2000 }).started();
  await a.joined(b.id, 10_000);
  const text = "x".repeat(100);
  const perTick = o.fillBatch;
  const tickMs = (1000 * perTick) / o.fillRate;
  const received0 = (await (await fetch(`${b.httpUrl}/status`)).json()).messaging.messagesReceived;
  const walPeak = [0, 0];
  const healthz: number[][] = [[], []];
  let running = true;
  const sampler = (async () => {
    while (running) {
      dirs.forEach((d, i) => walPeak[i] = Math.max(walPeak[i]!, fileBytes(`${d}/lanchat.db-wal`)));
      await sleep(100);
    }
  })();
  const pollers = [a, b].map(async (d, i) => {
    while (running) {
      healthz[i]!.push((await timeGet(`${d.httpUrl}/healthz`)).ms);
      await sleep(100);
    }
  });
  const t0 = performance.now();
  let posted = 0;
  const body = JSON.stringify({ messages: Array.from({ length: perTick }, () => ({ to: b.id, text })) });
  for (let tick = 0; tick < (o.fillSeconds * 1000) / tickMs; tick++) {
    const due = t0 + tick * tickMs;
    if (performance.now() < due) await sleep(due - performance.now());
    const r = await fetch(`${a.httpUrl}/messages`, { method: "POST", body });
    if (r.status !== 200 && r.status !== 202) throw new Error(`POST /messages: ${r.status} ${await r.text()}`);
    await r.body?.cancel();
    posted += perTick;
  }
  // Until every one is stored by b.
  while ((await (await fetch(`${b.httpUrl}/status`)).json()).messaging.messagesReceived - received0 < posted) {
    await sleep(50);
  }
  const seconds = (performance.now() - t0) / 1000;
  running = false;
  await Promise.all([sampler, ...pollers]);
  const rssAfter = [await rssMiB(a.child.pid), await rssMiB(b.child.pid)];
  await sleep(o.settleSeconds * 1000);
  const rssMinuteLater = [await rssMiB(a.child.pid), await rssMiB(b.child.pid)];
  const dbMiB = dirs.map((d) => Math.round(fileBytes(`${d}/lanchat.db`) / MiB));
  const stopMs = [await stopTimed(a), await stopTimed(b)];
  const p99 = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length * 0.99)]!;
  const r1 = (x: number) => Math.round(x * 10) / 10;
  const out = {
    seconds: Math.round(seconds),
    acked: posted,
    ackedPerSecond: Math.round(posted / seconds),
    walPeakMiB: walPeak.map((w) => r1(w / MiB)),
    dbMiB,
    healthzMax: healthz.map((h) => r1(Math.max(...h))),
    healthzP99: healthz.map((h) => r1(p99(h))),
    stopMs,
    rssAfter,
    rssMinuteLater,
  };
  console.log(`sustained fill: ${JSON.stringify(out)}`);
  return out;
}

interface OutboxResult {
  queued: number;
  status: Latency;
  rssQueued: number;
  restartMs: number;
  idleStartMs: number;
  rssIdle: number;
  rssAfterRestart: number;
  rssDrainPeak: number;
  drainSeconds: number;
  drainPerSecond: number;
}

/** `count` messages queued for b while it is away; a restarts with them; b comes back and they drain. */
async function outboxRestart(port: number, count: number): Promise<OutboxResult> {
  const dirs = [tempDataDir(), tempDataDir()];
  let a = await startLoopbackDaemon(port, "outbox-a", { dataDir: dirs[0], intervalMs: 2000 }).started();
  let b = await startLoopbackDaemon(port, "outbox-b", { dataDir: dirs[1], intervalMs: 2000 }).started();
  await a.joined(b.id, 10_000);
  const bId = b.id;
  await stopTimed(b);
  await a.left(bId, 10_000);
  const text = "x".repeat(100);
  // 500 a request: 1,000 of these would pass the 128 KiB body limit.
  for (let i = 0; i < count; i += 500) {
    const n = Math.min(500, count - i);
    const r = await fetch(`${a.httpUrl}/messages`, {
      method: "POST",
      body: JSON.stringify({ messages: Array.from({ length: n }, () => ({ to: bId, text })) }),
    });
    if (r.status !== 202 && r.status !== 200) throw new Error(`POST /messages: ${r.status} ${await r.text()}`);
    await r.body?.cancel();
  }
  const status = await latency(`${a.httpUrl}/status`);
  const rssQueued = await rssMiB(a.child.pid);
  await stopTimed(a);
  // The same restart on an empty directory, for the cost of the outbox alone.
  const idle = await startTimed(port, "outbox-idle", tempDataDir());
  await sleep(2000);
  const rssIdle = await rssMiB(idle.d.child.pid);
  await stopTimed(idle.d);
  const restarted = await startTimed(port, "outbox-a", dirs[0]!);
  a = restarted.d;
  await sleep(2000);
  const queuedNow = (await (await fetch(`${a.httpUrl}/status`)).json()).messaging;
  const rssAfterRestart = await rssMiB(a.child.pid);
  let rssDrainPeak = rssAfterRestart;
  const t0 = performance.now();
  b = await startLoopbackDaemon(port, "outbox-b", { dataDir: dirs[1], intervalMs: 2000 }).started();
  while ((await (await fetch(`${b.httpUrl}/status`)).json()).messaging.messagesReceived < count) {
    rssDrainPeak = Math.max(rssDrainPeak, await rssMiB(a.child.pid));
    await sleep(100);
  }
  const drainSeconds = (performance.now() - t0) / 1000;
  await stopTimed(a);
  await stopTimed(b);
  const out = {
    queued: count,
    outboxAfterRestart: queuedNow.outbox ?? queuedNow,
    status,
    rssQueued,
    restartMs: restarted.startMs,
    idleStartMs: idle.startMs,
    rssIdle,
    rssAfterRestart,
    rssDrainPeak,
    drainSeconds: Math.round(drainSeconds * 10) / 10,
    drainPerSecond: Math.round(count / drainSeconds),
  };
  console.log(`outbox: ${JSON.stringify(out)}`);
  return out;
}
