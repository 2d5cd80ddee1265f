/**
 * The scale section of the benchmark (`deno task bench --only scale`):
 *
 * - the simulator (src/sim/scale_sim.ts: the real discovery, roster and
 *   failure detector code on a simulated clock and network) at N = 10, 100
 *   and 1000 for `--sim-minutes` (10) each, with the failure detector and,
 *   beside it in the same run, without it (the protocol before it: crash
 *   detection by announce expiry): crash detection p50 / p99 / max (per
 *   crash, by every host, and per host), every datagram received per host per
 *   second, join times; then N = `--sim-loss-size` (1000) at 5 % loss
 *   (false removals) and a partition of that size that heals;
 * - roster memory per peer, `/peers` with 1,000 peers under wrk beside a
 *   bare Deno.serve with the same bytes, idle RSS and CPU.
 *
 * The namespace LAN's crash detection at N = 2, 4, 8 is the discovery
 * section's (scripts/bench.ts).
 *
 * @module
 */
import { freeTcpPort, freeUdpPort, killAll, startLoopbackDaemon } from "../tests/support/daemon_process.ts";
import type { DaemonProcess } from "../tests/support/daemon_process.ts";
import { Roster } from "../src/protocol/roster.ts";
import { percentileOf, runPartition, runScale, type ScaleResult } from "../src/sim/scale_sim.ts";
import { helloFor } from "../tests/support/hostile.ts";
import type { BenchContext } from "./bench_history.ts";

export interface ScaleOptions {
  sizes: number[];
  minutes: number;
  lossSize: number;
  partitionSize: number;
}

type SpawnReady = (
  script: string,
  permissions: string[],
  args: string[],
) => Promise<{ child: Deno.ChildProcess; reader: ReadableStreamDefaultReader<string> }>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One simulator run as the tables show it. */
function simRow(r: ScaleResult, detector: boolean) {
  const finite = (xs: number[]) => xs.length > 0 ? xs : [Infinity];
  return {
    nodes: r.nodes,
    detector,
    loss: r.loss,
    intervalMs: r.intervalMs,
    announcesPerHostPerSecond: r.announcesPerHostPerSecond,
    datagramsPerHostPerSecond: r.datagramsPerHostPerSecond,
    newcomerSeesAllMs: { p50: percentileOf(r.newcomerSeesAllMs, 50), max: Math.max(...r.newcomerSeesAllMs) },
    allSeeNewcomerMs: { p50: percentileOf(r.allSeeNewcomerMs, 50), max: Math.max(...r.allSeeNewcomerMs) },
    pairsP99Ms: {
      newcomerSees: percentileOf(r.pairNewcomerSeesMs, 99),
      seesNewcomer: percentileOf(r.pairSeesNewcomerMs, 99),
    },
    crashes: r.crashDetectedByAllMs.length,
    crashDetectedByAllMs: {
      p50: percentileOf(finite(r.crashDetectedByAllMs), 50),
      p99: percentileOf(finite(r.crashDetectedByAllMs), 99),
      max: Math.max(...finite(r.crashDetectedByAllMs)),
    },
    crashDetectedPerHostMs: {
      p50: percentileOf(finite(r.pairCrashDetectedMs), 50),
      p99: percentileOf(finite(r.pairCrashDetectedMs), 99),
      max: Math.max(...finite(r.pairCrashDetectedMs)),
    },
    falseRemovals: r.falseRemovals,
    falseRemovalsWarmup: r.falseRemovalsWarmup,
    suspicionsRaised: r.suspicionsRaised,
    refutations: r.refutations,
    converged: r.convergedAfterWarmup && r.convergedAtEnd,
    simulatedSeconds: r.simulatedSeconds,
    wallSeconds: r.wallSeconds,
  };
}

/** Scale: see the module documentation. */
export async function benchScale(ctx: BenchContext & { spawnReady: SpawnReady }, o: ScaleOptions): Promise<void> {
  const { started, machine, summary, writeResult, spawnReady } = ctx;
  console.log(`scale — simulator, ${o.minutes} simulated minutes per size, with and without the failure detector`);
  const sims: ReturnType<typeof simRow>[] = [];
  for (const n of o.sizes) {
    for (const detector of [false, true]) {
      const big = n >= 1000;
      const r = runScale({
        nodes: n,
        durationMs: o.minutes * 60_000,
        failureDetector: detector,
        newcomers: big ? 5 : 10,
        crashes: big ? 10 : 5,
      });
      const row = simRow(r, detector);
      console.log(JSON.stringify(row));
      sims.push(row);
    }
  }
  const lossRun = simRow(
    runScale({ nodes: o.lossSize, durationMs: o.minutes * 60_000, loss: 0.05, newcomers: 5, crashes: 10, seed: 13 }),
    true,
  );
  console.log(JSON.stringify(lossRun));
  const partition = runPartition({ nodes: o.partitionSize, cutMs: 60_000 });
  console.log(JSON.stringify(partition));
  // Roster memory: heap per peer entry, over 20 rosters of 1,000, live after a full GC (the task
  // passes --expose-gc; without it the figure also counts the garbage the setup made).
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  gc();
  const before = Deno.memoryUsage().heapUsed;
  const rosters = Array.from({ length: 20 }, (_, k) => {
    const r = new Roster({ selfId: "f".repeat(32), maxPeers: 2000 });
    for (let i = 0; i < 1000; i++) {
      r.observe(
        {
          ...helloFor((k * 1000 + i).toString(16).padStart(32, "0"), `user${i}@host-${i}`, 47475),
          interval: 20_000,
        },
        `198.18.${i >> 8}.${i & 255}`,
        i,
      );
    }
    return r;
  });
  gc();
  const rosterBytesPerPeer = Math.round((Deno.memoryUsage().heapUsed - before) / (rosters.length * 1000));
  // /peers with 1,000 peers, beside a bare server with the same bytes.
  let http = { daemon: 0, bare: 0, bytes: 0, peers: 0 };
  let idle = {
    rssMiB: 0,
    runtimeFloorRssMiB: 0,
    cpuPercentIdle: 0,
    cpuPercent100Peers: 0,
    peers: 0,
    /** Datagrams and bytes per second with the 100 peers, by direction and mechanism (the daemon's own counters). */
    traffic: {} as Record<string, Record<string, { datagramsPerSecond: number; bytesPerSecond: number }>>,
  };
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "scale", { intervalMs: 2000 }).started();
    // Idle: no peers, 30 s.
    await sleep(5000);
    const cpu = async () => {
      const c = (await (await fetch(`${a.httpUrl}/status`)).json()).cpu;
      return c.userMs + c.systemMs;
    };
    const c0 = await cpu();
    await sleep(30_000);
    const cpuIdle = (await cpu() - c0) / 300;
    // 100 peers announcing every 2 s, 60 s; beside it the runtime floor
    // (scripts/runtime_floor.ts) verifying the same hellos from its own 100.
    const floorPort = freeUdpPort();
    const { child: floorProcess, reader: floorOut } = await spawnReady("./runtime_floor.ts", ["-A"], [
      String(floorPort),
    ]);
    const floorPeers = await fakePeers(spawnReady, 100, floorPort, 2000);
    const hundred = await fakePeers(spawnReady, 100, a.unicastPort, 2000);
    const peers100 = await waitForPeers(a, 100, 10_000);
    await sleep(30_000);
    type Counts = Record<string, Record<string, { datagrams: number; bytes: number }>>;
    const traffic = async (): Promise<Counts> => (await (await fetch(`${a.httpUrl}/status`)).json()).traffic;
    const [c1, t1] = [await cpu(), await traffic()];
    await sleep(30_000);
    const cpu100 = (await cpu() - c1) / 300;
    const t2 = await traffic();
    const rates = Object.fromEntries(
      Object.entries(t2).map(([direction, byMechanism]) => [
        direction,
        Object.fromEntries(
          Object.entries(byMechanism).map(([m, c]) => [m, {
            datagramsPerSecond: Math.round((c.datagrams - (t1[direction]?.[m]?.datagrams ?? 0)) / 3) / 10,
            bytesPerSecond: Math.round((c.bytes - (t1[direction]?.[m]?.bytes ?? 0)) / 30),
          }]),
        ),
      ]),
    );
    const rss = (await (await fetch(`${a.httpUrl}/status`)).json()).memory.rssBytes;
    // It reports its RSS when told to stop, at the same moment as the daemon's.
    floorProcess.kill("SIGTERM");
    let floorText = "";
    while (!floorText.includes("rssBytes")) {
      const { value, done } = await floorOut.read();
      if (done) throw new Error("runtime_floor.ts stopped without reporting its RSS");
      floorText += value;
    }
    await floorProcess.status;
    const floorRss: number = JSON.parse(floorText.trim().split("\n").at(-1)!).rssBytes;
    floorPeers.kill("SIGKILL");
    await floorPeers.status;
    idle = {
      rssMiB: Math.round(rss / 2 ** 20),
      runtimeFloorRssMiB: Math.round(floorRss / 2 ** 20),
      cpuPercentIdle: Math.round(cpuIdle * 100) / 100,
      cpuPercent100Peers: Math.round(cpu100 * 100) / 100,
      peers: peers100,
      traffic: rates,
    };
    hundred.kill("SIGKILL");
    await hundred.status;
    // 1,000 peers.
    const thousand = await fakePeers(spawnReady, 1000, a.unicastPort, 20_000);
    const peers = await waitForPeers(a, 1000, 30_000);
    const body = new Uint8Array(await (await fetch(`${a.httpUrl}/peers`)).arrayBuffer());
    const file = Deno.makeTempFileSync({ suffix: ".json" });
    Deno.writeFileSync(file, body);
    const barePort = freeTcpPort();
    const { child: bare } = await spawnReady("./bare_serve.ts", ["--allow-net", "--allow-read"], [
      file,
      String(barePort),
    ]);
    const daemonRates: number[] = [];
    const bareRates: number[] = [];
    for (let i = 0; i < 3; i++) {
      bareRates.push(await wrk(`http://127.0.0.1:${barePort}/peers`));
      daemonRates.push(await wrk(`${a.httpUrl}/peers`, a.token));
    }
    bare.kill("SIGKILL");
    await bare.status;
    thousand.kill("SIGKILL");
    await thousand.status;
    http = { daemon: Math.max(...daemonRates), bare: Math.max(...bareRates), bytes: body.length, peers };
  } finally {
    await killAll();
  }
  const result = { sims, loss: lossRun, partition, rosterBytesPerPeer, http, idle };
  const crashCell = (c: { p50: number; p99: number; max: number }) =>
    `${fmtMs(c.p50)} / ${fmtMs(c.p99)} / ${fmtMs(c.max)}`;
  const simLine = (r: ReturnType<typeof simRow>) =>
    `| ${r.nodes} | ${r.detector ? "yes" : "no (before)"} | ${
      r.intervalMs / 1000
    } s | ${r.datagramsPerHostPerSecond.mean} / ${r.datagramsPerHostPerSecond.max} | ${r.announcesPerHostPerSecond.max} | ${
      fmtMs(r.newcomerSeesAllMs.p50)
    } / ${fmtMs(r.newcomerSeesAllMs.max)} | ${fmtMs(r.allSeeNewcomerMs.max)} | ${r.crashes}: ${
      crashCell(r.crashDetectedByAllMs)
    } | ${
      crashCell(r.crashDetectedPerHostMs)
    } | ${r.falseRemovals} (${r.falseRemovalsWarmup}) | ${r.suspicionsRaised} / ${r.refutations} | ${
      r.converged ? "yes" : "NO"
    } | ${r.wallSeconds} s for ${Math.round(r.simulatedSeconds / 60)} min |`;
  const md = [
    "Simulator (`src/sim/`: the real discovery, roster and failure detector code, fake clock and network), hosts",
    `start within the first minute, then ${o.minutes} simulated minutes (or more: each crash is watched 20 s, each`,
    "newcomer 3 intervals) with newcomers and crashes; each size with the failure detector and without it (the",
    "protocol before it), same run, same seed. Targets at N = 1000: crash detection ≤ 10 s p99, ≤ 50 datagrams",
    "received per host per s (everything: announces, replies, probes, suspicions), no false removal at 5 % loss.",
    "",
    "| N | failure detector | announce interval | all datagrams received per host per s (mean / max; ≤ 50) | of them announces (max) | newcomer sees everyone (p50 / max) | everyone sees newcomer (max) | crashes: removed by every host (p50 / p99 / max; ≤ 10 s p99) | removed per host (p50 / p99 / max) | false removals after warm-up (while hosts start) | suspicions raised / refuted | converged | wall time |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...sims.map(simLine),
    simLine(lossRun).replace(/^\| (\d+) \| yes/, "| $1, 5 % loss | yes"),
    "",
    `Partition of N = ${partition.nodes} in two halves for 60 s, then healed: each side removed the other after ${
      partition.otherSideRemovedMs === undefined ? "not within the cut" : fmtMs(partition.otherSideRemovedMs)
    }; everyone listed everyone again ${
      partition.rejoinedMs === undefined ? "not within 2 min" : `${fmtMs(partition.rejoinedMs)} after the heal`
    } (a host rejoins on its next announce); ${partition.falseRemovals} removals within a side (${partition.wallSeconds} s).`,
    "",
    `Roster memory: ${rosterBytesPerPeer} bytes of heap per peer entry (20 rosters of 1,000).`,
    "",
    "| figure | measured | target |",
    "|---|---|---|",
    `| \`/peers\` with ${http.peers} peers (${
      Math.round(http.bytes / 1024)
    } KiB), requests/s (wrk, 2 threads, 32 connections, 10 s) | ${Math.round(http.daemon)} | |`,
    `| bare \`Deno.serve\` returning the same bytes, same run | ${Math.round(http.bare)} | |`,
    `| ratio | ${(http.daemon / http.bare * 100).toFixed(1)} % | ≥ 80 % |`,
    `| RSS after 60 s with ${idle.peers} peers announcing every 2 s | ${idle.rssMiB} MiB | ≤ 60 MB |`,
    `| RSS of the runtime floor, same time, same hellos (scripts/runtime_floor.ts: the daemon's modules, a socket verifying signatures, an HTTP server, a WAL database; no protocol) | ${idle.runtimeFloorRssMiB} MiB | |`,
    `| CPU, idle (no peers), 30 s | ${idle.cpuPercentIdle} % of a core | ≈ 0 |`,
    `| CPU with 100 peers announcing (50 hellos/s), 30 s | ${idle.cpuPercent100Peers} % of a core | |`,
    ...(["received", "sent"] as const).map((d) =>
      `| traffic ${d} with 100 peers, 30 s, by mechanism (the daemon's counters; IPv4 peers on loopback: no IPv6 multicast or mDNS there) | ${
        Object.entries(idle.traffic[d] ?? {}).map(([m, r]) =>
          `${m} ${r.datagramsPerSecond} datagrams/s (${(r.bytesPerSecond / 1000).toFixed(1)} kB/s)`
        ).join(", ")
      } | |`
    ),
    "",
    `Measured ${started.toISOString()} on ${machine}, loopback; fake peers are \`scripts/fake_peers.ts\` (signed hellos).`,
    "",
  ].join("\n");
  console.log(md);
  const big = sims.find((r) => r.nodes === 1000 && r.detector);
  const old = sims.find((r) => r.nodes === 1000 && !r.detector);
  if (big && old) {
    summary.push(
      [
        "simulated N = 1000: crash removed by every host, p50 / p99 / max (before: announce expiry)",
        `${crashCell(big.crashDetectedByAllMs)} (before ${crashCell(old.crashDetectedByAllMs)})`,
        "≤ 10 s p99",
      ],
      [
        "simulated N = 1000: all datagrams received per host per s, max over hosts",
        `${big.datagramsPerHostPerSecond.max} (before ${old.datagramsPerHostPerSecond.max})`,
        "≤ 50",
      ],
      [
        "simulated N = 1000: newcomer sees everyone / everyone sees newcomer, max",
        `${fmtMs(big.newcomerSeesAllMs.max)} / ${fmtMs(big.allSeeNewcomerMs.max)} (before ${
          fmtMs(old.newcomerSeesAllMs.max)
        } / ${fmtMs(old.allSeeNewcomerMs.max)})`,
        "no worse",
      ],
    );
  }
  summary.push(
    [
      `simulated N = ${lossRun.nodes}, 5 % loss, ${Math.round(lossRun.simulatedSeconds / 60)} min: false removals`,
      String(lossRun.falseRemovals),
      "0",
    ],
    [
      `simulated N = ${partition.nodes}, partition healed: other side removed / everyone again`,
      `${partition.otherSideRemovedMs === undefined ? "—" : fmtMs(partition.otherSideRemovedMs)} / ${
        partition.rejoinedMs === undefined ? "—" : fmtMs(partition.rejoinedMs)
      }`,
      "",
    ],
  );
  summary.push(
    [
      `HTTP /peers with ${http.peers} peers vs bare Deno.serve, same bytes (wrk)`,
      `${Math.round(http.daemon)} vs ${Math.round(http.bare)} req/s: ${(http.daemon / http.bare * 100).toFixed(0)} %`,
      "≥ 80 %",
    ],
    [`RSS after 60 s with ${idle.peers} peers`, `${idle.rssMiB} MiB`, "≤ 60 MB"],
    ["RSS of the runtime floor beside it (same modules and hellos, no protocol)", `${idle.runtimeFloorRssMiB} MiB`, ""],
    [
      "CPU idle (no peers) / with 100 peers",
      `${idle.cpuPercentIdle} % / ${idle.cpuPercent100Peers} % of a core`,
      "≈ 0",
    ],
  );
  await writeResult("scale", { measuredAt: started.toISOString(), machine, ...result }, md);
}

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "not within the run";
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms < 10 ? ms.toFixed(2) : Math.round(ms)} ms`;
}

/** Requests/s wrk measures against `url` (10 s, 2 threads, 32 connections). */
async function wrk(url: string, token?: string): Promise<number> {
  const auth = token === undefined ? [] : ["-H", `Authorization: Bearer ${token}`];
  const out = await new Deno.Command("wrk", { args: ["-t2", "-c32", "-d10s", ...auth, url], stdout: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!m) throw new Error(`wrk printed no rate:\n${text}`);
  return Number(m[1]);
}

/** Starts fake peers announcing to `port`; resolves once each has announced. */
async function fakePeers(
  spawnReady: SpawnReady,
  count: number,
  port: number,
  intervalMs: number,
): Promise<Deno.ChildProcess> {
  const { child } = await spawnReady("./fake_peers.ts", ["-A"], [
    "--count",
    String(count),
    "--to",
    `127.0.0.1:${port}`,
    "--interval",
    String(intervalMs),
  ]);
  return child;
}

async function waitForPeers(d: DaemonProcess, n: number, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let size = 0;
  while (Date.now() < end) {
    size = (await (await fetch(`${d.httpUrl}/status`)).json()).peers;
    if (size >= n) return size;
    await sleep(200);
  }
  return size;
}
