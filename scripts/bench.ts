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
 * Options: --sizes 2,4,8  --runs 5  --crash-runs 3
 */
import { createLan, type Lan, lanUnavailable } from "./lan.ts";
import { DaemonProcess, killAll, type LogLine, tempDataDir } from "../tests/support/daemon_process.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] ? Deno.args[i + 1]! : fallback;
}
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

const why = await lanUnavailable();
if (why) {
  console.error(`bench: cannot build the namespace LAN: ${why}`);
  Deno.exit(1);
}
const started = new Date();
console.log(
  `lanchat discovery benchmark — namespace LAN, default timers (interval ${INTERVAL_MS} ms ±25 %, probe 500 ms)`,
);
console.log(`${RUNS} join/leave runs and ${CRASH_RUNS} crash runs per size; ms, median (min–max)\n`);
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
  `Targets: join p99 ≤ 100 ms, leave ≤ 100 ms, crash ≤ 7000 ms. Measured ${started.toISOString()} on ${Deno.build.target}, ${navigator.hardwareConcurrency} cores; ${RUNS} join/leave and ${CRASH_RUNS} crash runs per size.`,
  "",
].join("\n");
console.log("\n" + md);
await Deno.mkdir(new URL("../bench/results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL("../bench/results/discovery.json", import.meta.url),
  JSON.stringify({ measuredAt: started.toISOString(), runs: RUNS, crashRuns: CRASH_RUNS, results: rows }, null, 2) +
    "\n",
);
await Deno.writeTextFile(new URL("../bench/results/discovery.md", import.meta.url), md);
