/**
 * `deno task bench`: prints figures, asserts nothing.
 *
 * Discovery on the namespace LAN (scripts/lan.ts), default timers (2 s
 * interval, 500 ms probe), for N = 2, 4, 8 hosts:
 * - join: from the newcomer's first hello until every roster (its own
 *   included) lists everyone;
 * - leave: from SIGTERM until every other roster dropped it;
 * - crash: from SIGKILL, at a random phase of the announce cycle, until every
 *   other roster dropped it.
 * Times come from the daemons' own JSON log timestamps (one machine, one
 * clock, millisecond resolution). Results are also written to
 * bench/results/discovery.{json,md}.
 *
 * Messaging, two daemons on loopback (scripts/bench_messaging.ts): acked
 * messages/s in batches of 500 beside the storage floor's ceiling of the same
 * run, one per request, raw UDP, latency p50/p99, encrypted beside unencrypted.
 * Messaging under loss, on the namespace LAN: 1,000 messages at 10 % and
 * 30 % loss on the bridge; time until all are acknowledged, and whether the
 * receiver has every one exactly once and in order.
 *
 * Security, on loopback: message throughput with and without a network key
 * in one run, and a hello flood against a daemon (what it reads, whether it
 * stays responsive).
 *
 * History (scripts/bench_history.ts, `--only history`, not in the default
 * set: it takes about ten minutes): pages and searches at 10k, 100k and 1M
 * messages, a sustained fill, a 100,000-message outbox across a restart.
 *
 * Soak (scripts/bench_soak.ts, `--only soak`, not in the default set: it
 * takes `--minutes`, 30 by default, plus the drain): five hosts on the
 * namespace LAN with loss, restarts and kills, memory sampled over time.
 *
 * Files (scripts/bench_files.ts, `--only files [--files-gib 1]`, not in the
 * default set: it writes ~8 GiB to disk): transfers beside a raw TCP copy,
 * keyed and open, RSS during 4 GiB, resume, 10,000 small files, the LAN at 5 % loss.
 *
 * Results are written to bench/results/*.json and *.md.
 *
 * Options: --only discovery,messaging,loss,security,scale,history  --sizes 2,4,8  --runs 5
 *          --crash-runs 3  --messages 5000  --latency-samples 500  --plain-rev 9af468c  --e2e-rounds 3  --messaging-runs 2
 *          --history-sizes 10000,100000,1000000  --history-parts sizes,fill,outbox
 *          --minutes 30  --warmup-minutes 5  --daemon-repo DIR (soak: daemons from another checkout)
 *          --fill-seconds 60  --fill-rate 7000  --fill-batch 100  --outbox 100000  --settle-seconds 60
 */
import { createLan, type Lan, lanUnavailable } from "./lan.ts";
import {
  DaemonProcess,
  freeUdpPort,
  killAll,
  type LogLine,
  ownerEnv,
  runCli,
  startLoopbackDaemon,
  tempDataDir,
} from "../tests/support/daemon_process.ts";
import { newNetworkKeyText } from "../src/security/seal.ts";
import { percentileOf } from "../src/sim/scale_sim.ts";
import { benchHistory } from "./bench_history.ts";
import { benchSoak } from "./bench_soak.ts";
import { benchFiles, benchSmallFiles } from "./bench_files.ts";
import { benchScale } from "./bench_scale.ts";
import { benchWeb } from "./bench_web.ts";
import { PLAIN_REV } from "./bench_messaging_e2e.ts";
import { benchMessaging, throughput } from "./bench_messaging.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] ? Deno.args[i + 1]! : fallback;
}
const ONLY = new Set(arg("only", "discovery,messaging,loss,security,scale").split(","));
const MESSAGES = Number(arg("messages", "5000"));
const LATENCY_SAMPLES = Number(arg("latency-samples", "500"));
const SIZES = arg("sizes", "2,4,8").split(",").map(Number);
const RUNS = Number(arg("runs", "5"));
const CRASH_RUNS = Number(arg("crash-runs", "3"));
const INTERVAL_MS = 2000;

const ts = (l: LogLine) => Date.parse(l["@timestamp"]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stats(xs: number[]): { median: number; max: number; min: number; n: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { median: mid, max: s[s.length - 1]!, min: s[0]!, n: s.length };
}

function start(lan: Lan, i: number): DaemonProcess {
  const h = lan.hosts[i]!;
  return new DaemonProcess(["--name", `bench@${h.ns}`, "--data-dir", tempDataDir()], { netns: h.ns });
}

async function measure(n: number) {
  const lan = await createLan(n);
  const join: number[] = [];
  const leave: number[] = [];
  const crash: number[] = [];
  try {
    const base = await Promise.all(lan.hosts.slice(0, n - 1).map((_, i) => start(lan, i).started()));
    for (const d of base) for (const o of base) if (o !== d) await d.joined(o.id, 10_000);
    const newcomerIndex = n - 1;
    // Join and leave: a fresh node (new data dir, new id) joins, then stops.
    for (let run = 0; run < RUNS; run++) {
      const nc = await start(lan, newcomerIndex).started();
      const startedAt = ts(nc.lines.find((l) => /started/.test(l.message))!);
      const seen = await Promise.all([
        ...base.map((d) => d.joined(nc.id, 10_000)),
        ...base.map((d) => nc.joined(d.id, 10_000)),
      ]);
      join.push(Math.max(...seen.map(ts)) - startedAt);
      await sleep(200 + Math.random() * INTERVAL_MS);
      const t0 = Date.now();
      nc.signal("SIGTERM");
      const left = await Promise.all(base.map((d) => d.left(nc.id, 5000)));
      leave.push(Math.max(...left.map(ts)) - t0);
      await nc.wait();
    }
    // Crash: a fresh node joins, then is killed at a random phase of its cycle.
    for (let run = 0; run < CRASH_RUNS; run++) {
      const nc = await start(lan, newcomerIndex).started();
      await Promise.all(base.map((d) => d.joined(nc.id, 10_000)));
      await sleep(200 + Math.random() * INTERVAL_MS);
      const t0 = Date.now();
      await nc.kill();
      const left = await Promise.all(base.map((d) => d.left(nc.id, 15_000)));
      crash.push(Math.max(...left.map(ts)) - t0);
    }
  } finally {
    await killAll();
    await lan.destroy();
  }
  return { n, join: stats(join), leave: stats(leave), crash: stats(crash) };
}

async function writeResult(name: string, json: unknown, md: string): Promise<void> {
  await Deno.mkdir(new URL("../bench/results/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(
    new URL(`../bench/results/${name}.json`, import.meta.url),
    JSON.stringify(json, null, 2) + "\n",
  );
  await Deno.writeTextFile(new URL(`../bench/results/${name}.md`, import.meta.url), md);
}

const started = new Date();
/** One row per headline figure of this run: figure, measured, target. Printed and written at the end. */
const summary: [string, string, string][] = [];
const machine = `${Deno.build.target}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`;

async function benchDiscovery(): Promise<void> {
  const why = await lanUnavailable();
  if (why) {
    console.log(`discovery: skipped, cannot build the namespace LAN: ${why}\n`);
    return;
  }
  console.log(
    `discovery — namespace LAN, default timers (interval ${INTERVAL_MS} ms ±25 %, probe 500 ms)`,
  );
  console.log(`${RUNS} join/leave runs and ${CRASH_RUNS} crash runs per size; ms, median (min–max)`);
  const rows = [];
  for (const n of SIZES) {
    const r = await measure(n);
    rows.push(r);
    const f = (s: { median: number; min: number; max: number }) => `${s.median} (${s.min}–${s.max})`;
    console.log(`N=${n}\tjoin ${f(r.join)}\tleave ${f(r.leave)}\tcrash ${f(r.crash)}`);
  }
  const md = [
    `| hosts | join ms, median (max) | leave ms, median (max) | crash detected ms, median (max) |`,
    `|---|---|---|---|`,
    ...rows.map((r) =>
      `| ${r.n} | ${r.join.median} (${r.join.max}) | ${r.leave.median} (${r.leave.max}) | ${r.crash.median} (${r.crash.max}) |`
    ),
    "",
    `Targets: join p99 ≤ 100 ms, leave ≤ 100 ms, crash ≤ 7000 ms. Measured ${started.toISOString()} on ${machine}; ${RUNS} join/leave and ${CRASH_RUNS} crash runs per size.`,
    "",
  ].join("\n");
  console.log("\n" + md);
  for (const r of rows) {
    summary.push(
      [`real namespaces N = ${r.n}: join, max of ${RUNS} (≈ p99)`, `${r.join.max} ms`, "≤ 100 ms"],
      [`real namespaces N = ${r.n}: leave, max`, `${r.leave.max} ms`, "≤ 100 ms"],
      [
        `real namespaces N = ${r.n}: crash detection, max of ${CRASH_RUNS}`,
        `${(r.crash.max / 1000).toFixed(1)} s`,
        "≤ 7 s",
      ],
    );
  }
  await writeResult("discovery", {
    measuredAt: started.toISOString(),
    machine,
    runs: RUNS,
    crashRuns: CRASH_RUNS,
    results: rows,
  }, md);
}

/**
 * Runs one of these scripts in another Deno process with `permissions`, and
 * resolves once it printed "ready"; its further output stays in `reader`.
 */
async function spawnReady(
  script: string,
  permissions: string[],
  args: string[],
): Promise<{ child: Deno.ChildProcess; reader: ReadableStreamDefaultReader<string> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, new URL(script, import.meta.url).pathname, ...args],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("ready")) buf += (await reader.read()).value ?? "";
  return { child, reader };
}

/**
 * Security costs: message throughput with and without a network key in the
 * same run, and a hello flood (signed hellos, random ids, from 100 source
 * addresses, as fast as this process sends) against a daemon: what it reads
 * per second and how responsive it stays meanwhile.
 */
async function benchSecurity(): Promise<void> {
  console.log("security — loopback");
  const text = "lunch at noon? ".repeat(6).trim();
  const count = Math.min(MESSAGES, 3000);
  const keyPath = `${tempDataDir()}/bench.key`;
  Deno.writeTextFileSync(keyPath, newNetworkKeyText(), { mode: 0o600 });
  const rates: Record<string, number> = {};
  for (const [label, extra] of [["open", []], ["keyed", ["--key-file", keyPath]]] as const) {
    const port = freeUdpPort();
    try {
      const a = await startLoopbackDaemon(port, `sec-a-${label}`, { intervalMs: 2000, extra: [...extra] }).started();
      const b = await startLoopbackDaemon(port, `sec-b-${label}`, { intervalMs: 2000, extra: [...extra] }).started();
      await a.joined(b.id, 5000);
      await throughput(a, b, 200, text); // warm-up
      rates[label] = await throughput(a, b, count, text);
    } finally {
      await killAll();
    }
  }
  const ratio = Math.round((rates.keyed! / rates.open!) * 1000) / 1000;
  const floods: FloodRow[] = [];
  for (const rate of FLOOD_RATES) floods.push(await floodAt(rate));
  const md = [
    `| figure | measured |`,
    `|---|---|`,
    `| acked messages/s, open group (${count} messages) | ${rates.open} |`,
    `| acked messages/s, keyed group (AES-256-GCM), same run | ${rates.keyed} |`,
    `| keyed / open | ${(ratio * 100).toFixed(1)} % |`,
    "",
    "Hello flood at a daemon (signed hellos, 64 real keys and 192 forged ids, from 100 loopback source",
    "addresses, sent by another process for 5 s) while its real peer sends it a message every 100 ms and",
    "a client asks /healthz:",
    "",
    "| flood sent | daemon read | refused: rate limit / roster full | /healthz p50 / p99 | peer's messages delivered | rtt p50 / p99 | roster, real peer listed | RSS |",
    "|---|---|---|---|---|---|---|---|",
    ...floods.map((f) =>
      `| ${f.sentPerSecond}/s | ${f.readPerSecond}/s | ${f.droppedRateLimit} / ${f.droppedRosterFull} | ${
        f.healthzMs.p50.toFixed(1)
      } / ${f.healthzMs.p99.toFixed(1)} ms | ${f.delivered} / ${f.messages} | ${f.rttMs.p50.toFixed(1)} / ${
        f.rttMs.p99.toFixed(1)
      } ms | ${f.roster}, ${f.realPeerListed ? "yes" : "NO"} | ${f.rssMiB} MiB |`
    ),
    "",
    `Measured ${started.toISOString()} on ${machine}, loopback (flooder and daemons share the 2 cores).`,
    "",
  ].join("\n");
  console.log(md);
  summary.push(["acked messages/s, keyed group / open group, same run", `${(ratio * 100).toFixed(1)} %`, ""]);
  await writeResult("security", { measuredAt: started.toISOString(), machine, rates, ratio, floods }, md);
}

/** Flood rates tried, datagrams/s (0: as fast as the flooding process can send). */
const FLOOD_RATES = [1_000, 10_000, 0];

interface FloodRow {
  target: number;
  sentPerSecond: number;
  readPerSecond: number;
  droppedRateLimit: number;
  droppedRosterFull: number;
  roster: number;
  realPeerListed: boolean;
  healthzMs: { p50: number; p99: number };
  messages: number;
  delivered: number;
  rttMs: { p50: number; p99: number };
  rssMiB: number;
}

/** One flood at `rate` datagrams/s against a fresh daemon with one real peer. */
async function floodAt(rate: number): Promise<FloodRow> {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "flood-target", { intervalMs: 2000 }).started();
    const b = await startLoopbackDaemon(port, "flood-peer", { intervalMs: 2000 }).started();
    await a.joined(b.id, 5000);
    const st0 = (await (await fetch(`${a.httpUrl}/status`)).json()).counters;
    const hostile = new URL("../tests/support/hostile.ts", import.meta.url).pathname;
    const flooder = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        hostile,
        "flood",
        "--rate",
        String(rate),
        "--seconds",
        "5",
        "--sources",
        "100",
        "--to",
        `127.0.0.1:${a.unicastPort}`,
      ],
      stdout: "piped",
    }).output();
    await sleep(300); // the flooder starts
    const health: number[] = [];
    const rtts: number[] = [];
    const sends: Promise<void>[] = [];
    let messages = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 4000) {
      messages++;
      sends.push((async () => {
        const r = await fetch(`${b.httpUrl}/messages?wait=10`, {
          method: "POST",
          body: JSON.stringify({ to: a.id, text: "during the flood" }),
        });
        const m = await r.json();
        if (m.status === "delivered") rtts.push(m.rttMs);
      })());
      const h0 = performance.now();
      await (await fetch(`${a.httpUrl}/healthz`)).text();
      health.push(performance.now() - h0);
      await sleep(100);
    }
    const out = JSON.parse(new TextDecoder().decode((await flooder).stdout).trim().split("\n").at(-1)!);
    await Promise.all(sends);
    const st1 = await (await fetch(`${a.httpUrl}/status`)).json();
    const peersAfter: { id: string }[] = await (await fetch(`${a.httpUrl}/peers`)).json();
    const d = (k: string) => st1.counters.dropped[k] - st0.dropped[k];
    return {
      target: rate,
      sentPerSecond: out.perSecond,
      readPerSecond: Math.round((st1.counters.datagramsIn - st0.datagramsIn) / out.seconds),
      droppedRateLimit: d("rate-limit"),
      droppedRosterFull: d("roster-full"),
      roster: peersAfter.length,
      realPeerListed: peersAfter.some((p) => p.id === b.id),
      healthzMs: { p50: percentileOf(health, 50), p99: percentileOf(health, 99) },
      messages,
      delivered: rtts.length,
      rttMs: { p50: rtts.length ? percentileOf(rtts, 50) : NaN, p99: rtts.length ? percentileOf(rtts, 99) : NaN },
      rssMiB: Math.round(st1.memory.rssBytes / 2 ** 20),
    };
  } finally {
    await killAll();
  }
}

async function benchLoss(): Promise<void> {
  const why = await lanUnavailable();
  if (why) {
    console.log(`loss: skipped, cannot build the namespace LAN: ${why}\n`);
    return;
  }
  console.log(`messaging under loss — namespace LAN, 1000 messages A → B, loss on the bridge`);
  const rows = [];
  for (const loss of [10, 30]) {
    const lan = await createLan(2);
    try {
      const [a, b] = await Promise.all(
        lan.hosts.map((h) =>
          new DaemonProcess(["--name", `bench@${h.ns}`, "--data-dir", tempDataDir()], { netns: h.ns }).started()
        ),
      );
      await a!.joined(b!.id, 10_000);
      await lan.setLoss(loss);
      const texts = Array.from({ length: 1000 }, (_, i) => `loss bench message ${i}`);
      const file = Deno.makeTempFileSync({ suffix: ".json" });
      Deno.writeTextFileSync(file, JSON.stringify(texts.map((text) => ({ to: b!.id, text }))));
      const helper = new URL("../tests/support/post_messages.ts", import.meta.url).pathname;
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          lan.hosts[0]!.ns,
          Deno.execPath(),
          "run",
          "--allow-net",
          "--allow-read",
          "--allow-env=LANCHAT_HTTP_TOKEN",
          helper,
          "http://127.0.0.1:47476",
          file,
          "300",
        ],
        env: ownerEnv(["--http", "127.0.0.1:47476"], { netns: lan.hosts[0]!.ns }),
        stdout: "piped",
      }).output();
      const summary = JSON.parse(new TextDecoder().decode(out.stdout));
      const r = await runCli(["inbox", "--json", "--limit", "10000"], { netns: lan.hosts[1]!.ns });
      const got = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l).text);
      const exact = got.length === texts.length && got.every((t: string, i: number) => t === texts[i]);
      rows.push({
        loss,
        seconds: Math.round(summary.drainedMs / 100) / 10,
        delivered: got.length,
        exactlyOnceInOrder: exact,
        fragmentsRetransmitted: summary.fragmentsRetransmitted,
        droppedByBridge: await lan.dropped(),
      });
      console.log(`${loss} % loss: ${JSON.stringify(rows.at(-1))}`);
    } finally {
      await killAll();
      await lan.destroy();
    }
  }
  const md = [
    `| loss on the bridge | all acknowledged after | delivered | exactly once, in order | re-sent fragments | datagrams the bridge dropped |`,
    `|---|---|---|---|---|---|`,
    ...rows.map((r) =>
      `| ${r.loss} % | ${r.seconds} s | ${r.delivered} / 1000 | ${
        r.exactlyOnceInOrder ? "yes" : "NO"
      } | ${r.fragmentsRetransmitted} | ${r.droppedByBridge} |`
    ),
    "",
    `Target: 100 % delivered. Measured ${started.toISOString()} on ${machine}, default timers.`,
    "",
  ].join("\n");
  console.log("\n" + md);
  await writeResult("loss", { measuredAt: started.toISOString(), machine, results: rows }, md);
}

if (ONLY.has("discovery")) await benchDiscovery();
if (ONLY.has("messaging")) {
  await benchMessaging({ started, machine, summary, writeResult }, {
    messages: MESSAGES,
    latencySamples: LATENCY_SAMPLES,
    plainRev: arg("plain-rev", PLAIN_REV),
    e2eRounds: Number(arg("e2e-rounds", "3")),
    runs: Number(arg("messaging-runs", "2")),
  });
}
if (ONLY.has("loss")) await benchLoss();
if (ONLY.has("security")) await benchSecurity();
if (ONLY.has("scale")) {
  await benchScale({ started, machine, summary, writeResult, spawnReady }, {
    sizes: arg("sim-sizes", "10,100,1000").split(",").map(Number),
    minutes: Number(arg("sim-minutes", "10")),
    lossSize: Number(arg("sim-loss-size", "1000")),
    partitionSize: Number(arg("sim-partition-size", "1000")),
  });
}
if (ONLY.has("history")) {
  await benchHistory({ started, machine, summary, writeResult }, {
    sizes: arg("history-sizes", "10000,100000,1000000").split(",").map(Number),
    fillSeconds: Number(arg("fill-seconds", "60")),
    fillRate: Number(arg("fill-rate", "7000")),
    fillBatch: Number(arg("fill-batch", "100")),
    outbox: Number(arg("outbox", "100000")),
    settleSeconds: Number(arg("settle-seconds", "60")),
    parts: new Set(arg("history-parts", "sizes,fill,outbox").split(",")),
  });
}

if (ONLY.has("soak")) {
  const repo = arg("daemon-repo", "");
  await benchSoak({ started, machine, summary, writeResult }, {
    minutes: Number(arg("minutes", "30")),
    warmupMinutes: Number(arg("warmup-minutes", "5")),
    daemonRepo: repo || undefined,
  });
}

if (ONLY.has("files")) {
  await benchFiles({ started, machine, summary, writeResult }, {
    gib: Number(arg("files-gib", "1")),
    bigGib: Number(arg("files-big-gib", "4")),
    quick: Deno.args.includes("--files-quick"),
  });
}

if (ONLY.has("files-small")) await benchSmallFiles({ started, machine, summary, writeResult });

if (ONLY.has("web")) {
  await benchWeb({ started, machine, summary, writeResult }, {
    messages: Number(arg("web-messages", "100000")),
    peers: Number(arg("web-peers", "1000")),
    images: Number(arg("web-images", "1000")),
  });
}

if (summary.length > 0) {
  const md = [
    "| figure | measured | target |",
    "|---|---|---|",
    ...summary.map(([f, m, t]) => `| ${f} | ${m} | ${t} |`),
    "",
    `Measured ${started.toISOString()} on ${machine}. Reproduce: \`deno task bench\` (as root, for the namespace LAN; \`wrk\` from Debian).`,
    "",
  ].join("\n");
  console.log("\nSummary\n\n" + md);
  // A run of some parts only writes its own summary, beside the full run's.
  const all = ONLY.size === 5 && !ONLY.has("history") && !ONLY.has("soak") && !ONLY.has("files") && !ONLY.has("web");
  const before = arg("daemon-repo", "") ? "-before" : "";
  await writeResult(all ? "summary" : `summary-${[...ONLY].join("-")}${before}`, {
    measuredAt: started.toISOString(),
    machine,
    rows: summary,
  }, md);
}
