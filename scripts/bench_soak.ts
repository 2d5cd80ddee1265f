/**
 * `deno task bench --only soak [--minutes 30]`: a daemon's life over a long
 * run, on the namespace LAN.
 *
 * Five hosts, 10 % of UDP datagrams dropped on the bridge. A message every
 * 100 ms between two random hosts that are up (10 B to 8 KiB, some of it
 * CJK); one of hosts 3–5 restarted with SIGTERM every minute, and one of
 * them killed with SIGKILL (and started again) every 5 minutes, in turn.
 * Hosts 1 and 2 are never restarted: every 30 s the bench samples, for
 * each of them, the resident size (`ps`), then asks it to compact its heap
 * (`POST /memory/compact`) and reads the JavaScript heap in use after that,
 * the resident size after it, its open file descriptors (/proc), its native
 * heap (the `[heap]` mapping: SQLite's page cache and other native
 * allocations; node:sqlite cannot report the page cache by itself) and its
 * write-ahead log. At the end, with traffic and restarts stopped and every
 * outbox drained, each host's history is read back and every message
 * checked: delivered, exactly once, intact, in the order sent.
 *
 * Prints the series, the slope of each figure over the second half of the
 * run and after the warm-up (`--warmup-minutes`, 5), and the delivery check;
 * writes bench/results/soak.{json,md}. `--daemon-repo DIR` runs the daemons
 * from another checkout (a "before" run). Asserts nothing.
 */
import { createLan, type Lan } from "./lan.ts";
import { DaemonProcess, killAll, ownerEnv, tempDataDir } from "../tests/support/daemon_process.ts";
import { type BenchContext, rssMiB } from "./bench_history.ts";

export interface SoakOptions {
  minutes: number;
  warmupMinutes: number;
  /** Another checkout whose main.ts and deno.json the daemons run (for a "before" figure). */
  daemonRepo?: string;
}

const HOSTS = 5;
const LONG_LIVED = [0, 1];
const RESTARTED = [2, 3, 4];
const LOSS = 10;
const MESSAGE_EVERY_MS = 100;
const SAMPLE_EVERY_MS = 30_000;
const TERM_EVERY_MS = 60_000;
const KILL_EVERY_MS = 300_000;
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A helper process inside a host's namespace that carries HTTP requests to its daemon (scripts/ns_agent.ts). */
class Agent {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #next = 0;
  #pending = new Map<number, (r: { status: number; body: string }) => void>();

  constructor(ns: string) {
    this.#child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "run",
        "--allow-net",
        "--allow-env=LANCHAT_HTTP_TOKEN",
        new URL("./ns_agent.ts", import.meta.url).pathname,
      ],
      env: ownerEnv(["--http", "127.0.0.1:47476"], { netns: ns }),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#read();
  }

  async #read(): Promise<void> {
    let buf = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const a = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        this.#pending.get(a.id)?.(a);
        this.#pending.delete(a.id);
      }
    }
  }

  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#writer.write(new TextEncoder().encode(JSON.stringify({ id, method, path, body }) + "\n"));
    });
  }

  async json<T>(path: string): Promise<T> {
    const r = await this.request("GET", path);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body}`);
    return JSON.parse(r.body);
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#child.status;
  }
}

async function shell(script: string): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "null" }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

/** Resident size of a process in MiB (`ps`). */

/** Deterministic-enough random text of `n` bytes or so, with some CJK. */
function payload(n: number): string {
  const words = ["lunch", "build", "午饭", "deploy", "会议", "ok", "thanks", "review", "😀", "bug"];
  let s = "";
  while (new TextEncoder().encode(s).length < n) s += words[Math.floor(Math.random() * words.length)] + " ";
  return s.slice(0, Math.max(1, s.length - 1));
}

interface Sent {
  n: number;
  from: number;
  to: number;
  text: string;
  seq: number;
}

interface Sample {
  minute: number;
  host: number;
  rssMiB: number;
  rssAfterGcMiB: number;
  heapAfterGcMiB: number;
  fds: number;
  nativeHeapMiB: number;
  walMiB: number;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return num / den;
}

export async function benchSoak(ctx: BenchContext, o: SoakOptions): Promise<void> {
  console.log(
    `soak — ${HOSTS} hosts on the namespace LAN, ${LOSS} % loss, ${o.minutes} min${
      o.daemonRepo ? `, daemons from ${o.daemonRepo}` : ""
    }`,
  );
  const lan: Lan = await createLan(HOSTS);
  const dirs = lan.hosts.map(() => tempDataDir());
  const daemons: (DaemonProcess | undefined)[] = [];
  /** Made once the daemons are up: each carries its daemon's token (the API is its owner's). */
  let agents: Agent[] = [];
  const warnings: string[] = [];
  const start = (i: number) => {
    const d = new DaemonProcess(["--name", `soak${i + 1}@h${i + 1}`, "--data-dir", dirs[i]!], {
      netns: lan.hosts[i]!.ns,
      repo: o.daemonRepo,
    });
    daemons[i] = d;
    return d.started(30_000);
  };
  const stopping = new Set<number>();
  const sent: Sent[] = [];
  let refused = 0;
  const samples: Sample[] = [];
  const cpuStart: number[] = [];
  try {
    await lan.setLoss(LOSS);
    await Promise.all(lan.hosts.map((_, i) => start(i)));
    agents = lan.hosts.map((h) => new Agent(h.ns));
    const ids = daemons.map((d) => d!.id);
    for (const d of daemons) for (const id of ids) if (id !== d!.id) await d!.joined(id, 30_000);
    for (const i of LONG_LIVED) {
      const s = await agents[i]!.json<{ cpu: { userMs: number; systemMs: number } }>("/status");
      cpuStart[i] = s.cpu.userMs + s.cpu.systemMs;
    }
    const t0 = Date.now();
    const end = t0 + o.minutes * 60_000;
    let running = true;

    // Traffic: a message every 100 ms from a host that is up to another host.
    const traffic = (async () => {
      let n = 0;
      for (let due = Date.now(); running; due += MESSAGE_EVERY_MS) {
        await sleep(Math.max(0, due - Date.now()));
        const up = lan.hosts.map((_, i) => i).filter((i) => !stopping.has(i));
        const from = up[Math.floor(Math.random() * up.length)]!;
        const others = lan.hosts.map((_, i) => i).filter((i) => i !== from);
        const to = others[Math.floor(Math.random() * others.length)]!;
        const size = Math.random() < 0.9
          ? 10 + Math.floor(Math.random() * 500)
          : 1024 + Math.floor(Math.random() * 7168);
        const m = ++n;
        const text = `#${m} ${from + 1}>${to + 1} ${payload(size)}`;
        agents[from]!.request("POST", "/messages", { to: ids[to], text }).then((r) => {
          if (r.status === 200 || r.status === 202) sent.push({ n: m, from, to, text, seq: JSON.parse(r.body).seq });
          else refused++;
        });
      }
    })();

    // Restarts: SIGTERM one of the restarted hosts every minute, SIGKILL one every 5 minutes, in turn.
    const restarts = (async () => {
      let term = 0;
      let kill = 0;
      let nextTerm = t0 + TERM_EVERY_MS;
      let nextKill = t0 + KILL_EVERY_MS;
      while (running) {
        const next = Math.min(nextTerm, nextKill);
        await sleep(Math.max(0, next - Date.now()));
        if (!running) break;
        const hard = next === nextKill;
        const i = RESTARTED[(hard ? kill++ : term++) % RESTARTED.length]!;
        if (hard) nextKill += KILL_EVERY_MS;
        else nextTerm += TERM_EVERY_MS;
        stopping.add(i);
        await sleep(300); // requests already on their way to it finish first
        const d = daemons[i]!;
        if (hard) await d.kill();
        else {
          d.signal("SIGTERM");
          await d.wait();
        }
        warnings.push(...warningsOf(d, i));
        await start(i);
        stopping.delete(i);
      }
    })();

    // Samples of the long-lived hosts, every 30 s.
    const sampling = (async () => {
      for (let due = t0 + SAMPLE_EVERY_MS; due <= end; due += SAMPLE_EVERY_MS) {
        await sleep(Math.max(0, due - Date.now()));
        for (const i of LONG_LIVED) {
          const pid = daemons[i]!.child.pid;
          const rss = await rssMiB(pid);
          const r = await agents[i]!.request("POST", "/memory/compact");
          const memory = r.status === 200 ? JSON.parse(r.body) : undefined;
          const st = memory ? undefined : await agents[i]!.json<{ memory: { heapUsedBytes: number } }>("/status");
          const s: Sample = {
            minute: Math.round(((Date.now() - t0) / 60_000) * 10) / 10,
            host: i + 1,
            rssMiB: rss,
            rssAfterGcMiB: await rssMiB(pid),
            heapAfterGcMiB: Math.round(((memory ?? st!.memory).heapUsedBytes / MiB) * 100) / 100,
            fds: Number(await shell(`ls /proc/${pid}/fd | wc -l`)),
            nativeHeapMiB: Math.round(
              Number(await shell(`awk '/\\[heap\\]/{h=1;next} h&&/^Rss:/{print $2; exit}' /proc/${pid}/smaps`)) / 1024 *
                10,
            ) / 10,
            walMiB: Math.round(
              (await Deno.stat(`${dirs[i]}/lanchat.db-wal`).then((x) => x.size).catch(() => 0)) / MiB * 10,
            ) / 10,
          };
          samples.push(s);
          console.log(JSON.stringify(s));
        }
      }
    })();

    await sleep(Math.max(0, end - Date.now()));
    running = false;
    await Promise.all([traffic, restarts, sampling]);
    // Let every request in flight come back, then every outbox drain.
    await sleep(2000);
    const drainT0 = Date.now();
    while (Date.now() - drainT0 < 300_000) {
      const outboxes = await Promise.all(
        agents.map((a) => a.json<{ messaging: { outbox: number } }>("/status").then((s) => s.messaging.outbox)),
      );
      if (outboxes.every((x) => x === 0)) break;
      await sleep(1000);
    }
    const drainSeconds = Math.round((Date.now() - drainT0) / 1000);
    const cpuPerMinute = await Promise.all(LONG_LIVED.map(async (i) => {
      const s = await agents[i]!.json<{ cpu: { userMs: number; systemMs: number } }>("/status");
      return Math.round(((s.cpu.userMs + s.cpu.systemMs - cpuStart[i]!) / 1000 / o.minutes) * 100) / 100;
    }));

    // Every message: delivered, once, intact, in the order sent.
    const check = await verify(agents, ids, sent);
    for (const [i, d] of daemons.entries()) warnings.push(...warningsOf(d!, i));

    const report = summarize(samples, o);
    const md = [
      `| minute | host | RSS MiB | RSS after compaction | JS heap after compaction MiB | fds | native heap MiB | WAL MiB |`,
      `|---|---|---|---|---|---|---|---|`,
      ...samples.map((s) =>
        `| ${s.minute} | ${s.host} | ${s.rssMiB} | ${s.rssAfterGcMiB} | ${s.heapAfterGcMiB} | ${s.fds} | ${s.nativeHeapMiB} | ${s.walMiB} |`
      ),
      "",
      `| long-lived host | RSS slope, second half | RSS slope after ${o.warmupMinutes} min | RSS after compaction, slope after warm-up | JS heap after compaction: range after warm-up | fds first → last | CPU s per minute |`,
      `|---|---|---|---|---|---|---|`,
      ...report.map((r, k) =>
        `| ${r.host} | ${r.rssSlopeSecondHalf} MiB/h | ${r.rssSlopeAfterWarmup} MiB/h | ${r.rssAfterGcSlopeAfterWarmup} MiB/h | ${r.heapMin}–${r.heapMax} MiB (${r.heapRange}) | ${r.fdsFirst} → ${r.fdsLast} | ${
          cpuPerMinute[k]
        } |`
      ),
      "",
      `Delivery: ${check.sent} sent (${refused} posts refused while a host was going down: not sent, not counted), ${check.delivered} delivered, ${check.lost} lost, ${check.duplicated} duplicated, ${check.outOfOrder} out of order, ${check.altered} altered; outboxes drained ${drainSeconds} s after the end. Warnings and errors in the logs: ${warnings.length}${
        warnings.length ? ` (first: ${warnings.slice(0, 3).join(" | ")})` : ""
      }.`,
      "",
      `Targets: after a ${o.warmupMinutes}-minute warm-up, RSS slope ≤ 1 MiB per hour and the heap after GC flat (± 1 MiB), everything delivered exactly once. Measured ${ctx.started.toISOString()} on ${ctx.machine}, ${o.minutes} minutes${
        o.daemonRepo ? `, daemons from ${o.daemonRepo}` : ""
      }. Reproduce: \`deno task bench --only soak --minutes ${o.minutes}\` (as root).`,
      "",
    ].join("\n");
    console.log("\n" + md);
    await ctx.writeResult(o.daemonRepo ? "soak-before" : "soak", {
      measuredAt: ctx.started.toISOString(),
      machine: ctx.machine,
      minutes: o.minutes,
      daemonRepo: o.daemonRepo,
      samples,
      report,
      cpuPerMinute,
      delivery: { ...check, refused, drainSeconds },
      warnings,
    }, md);
    for (const [k, r] of report.entries()) {
      ctx.summary.push(
        [
          `soak ${o.minutes} min, host ${r.host}: RSS slope after warm-up`,
          `${r.rssSlopeAfterWarmup} MiB/h`,
          "≤ 1 MiB/h",
        ],
        [`soak, host ${r.host}: JS heap after GC, range after warm-up`, `${r.heapRange} MiB`, "± 1 MiB"],
        [`soak, host ${r.host}: CPU`, `${cpuPerMinute[k]} s/min`, ""],
      );
    }
    ctx.summary.push([
      `soak: delivered exactly once, in order, intact`,
      `${check.delivered - check.duplicated - check.outOfOrder - check.altered} of ${check.sent}`,
      "all",
    ]);
  } finally {
    await killAll();
    await Promise.all(agents.map((a) => a.close()));
    await lan.destroy();
  }
}

function warningsOf(d: DaemonProcess, i: number): string[] {
  return d.lines.filter((l) => l.level === "WARNING" || l.level === "ERROR" || l.level === "FATAL").map((l) =>
    `host ${i + 1}: ${l.message}`
  );
}

/** Reads each host's whole history and checks every sent message against it. */
async function verify(agents: Agent[], ids: string[], sent: Sent[]) {
  const byHost = await Promise.all(agents.map(async (a) => {
    const all: { direction: string; peer: { id: string }; text: string; seq: number; cursor: number }[] = [];
    for (let after = 0;;) {
      const page = await a.json<typeof all>(`/messages?after=${after}&limit=10000`);
      all.push(...page);
      if (page.length < 10_000) break;
      after = page.at(-1)!.cursor;
    }
    return all.filter((m) => m.direction === "in");
  }));
  let delivered = 0;
  let lost = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let altered = 0;
  for (let to = 0; to < agents.length; to++) {
    const inbox = byHost[to]!;
    for (let from = 0; from < agents.length; from++) {
      if (from === to) continue;
      const got = inbox.filter((m) => m.peer.id === ids[from]);
      const want = sent.filter((s) => s.from === from && s.to === to).sort((a, b) => a.seq - b.seq);
      const tag = (t: string) => t.slice(0, t.indexOf(" ", t.indexOf(">")));
      const byTag = new Map<string, typeof got>();
      for (const m of got) byTag.set(tag(m.text), [...(byTag.get(tag(m.text)) ?? []), m]);
      let lastCursor = 0;
      for (const s of want) {
        const found = byTag.get(tag(s.text)) ?? [];
        if (found.length === 0) {
          lost++;
          continue;
        }
        delivered++;
        if (found.length > 1) duplicated++;
        if (found[0]!.text !== s.text) altered++;
        if (found[0]!.cursor < lastCursor) outOfOrder++;
        lastCursor = found[0]!.cursor;
      }
    }
  }
  return { sent: sent.length, delivered, lost, duplicated, outOfOrder, altered };
}

function summarize(samples: Sample[], o: SoakOptions) {
  const round = (x: number) => Math.round(x * 100) / 100;
  const half = o.minutes / 2;
  return LONG_LIVED.map((i) => {
    const mine = samples.filter((s) => s.host === i + 1);
    const late = mine.filter((s) => s.minute >= half);
    const warm = mine.filter((s) => s.minute >= o.warmupMinutes);
    const heaps = warm.map((s) => s.heapAfterGcMiB);
    return {
      host: i + 1,
      rssSlopeSecondHalf: round(slope(late.map((s) => s.minute / 60), late.map((s) => s.rssMiB))),
      rssSlopeAfterWarmup: round(slope(warm.map((s) => s.minute / 60), warm.map((s) => s.rssMiB))),
      rssAfterGcSlopeAfterWarmup: round(slope(warm.map((s) => s.minute / 60), warm.map((s) => s.rssAfterGcMiB))),
      heapMin: round(Math.min(...heaps)),
      heapMax: round(Math.max(...heaps)),
      heapRange: round(Math.max(...heaps) - Math.min(...heaps)),
      heapSlopeAfterWarmup: round(slope(warm.map((s) => s.minute / 60), heaps)),
      fdsFirst: mine[0]?.fds,
      fdsLast: mine.at(-1)?.fds,
    };
  });
}
