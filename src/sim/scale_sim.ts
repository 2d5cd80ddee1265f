/**
 * The scale scenario on the simulated LAN ({@link SimLan}): N hosts start
 * within the first minute, settle, then live for a simulated hour while
 * newcomers join and hosts crash. Pure and deterministic for a seed: the
 * benchmark prints its figures, a test checks its deterministic properties.
 *
 * @module
 */
import { SimLan, type SimNode } from "./sim.ts";

export interface ScaleOptions {
  nodes: number;
  /** Simulated time in ms, from the first start (default one hour). */
  durationMs?: number;
  loss?: number;
  seed?: number;
  /** Newcomers joining during the run (default 10). */
  newcomers?: number;
  /** Hosts crashing during the run (default 5). */
  crashes?: number;
  /** Run the failure detector (default true; false: the protocol before it, for the figures beside). */
  failureDetector?: boolean;
}

export interface ScaleResult {
  nodes: number;
  simulatedSeconds: number;
  loss: number;
  /** Announce interval every host settled on, ms. */
  intervalMs: number;
  /** Hellos that are announces, received per host per second after warm-up: mean and max over hosts. */
  announcesPerHostPerSecond: { mean: number; max: number };
  /** Every datagram (announces, replies, probes) received per host per second after warm-up. */
  datagramsPerHostPerSecond: { mean: number; max: number };
  /** Whether every running host listed every other at the end of warm-up and at the end. */
  convergedAfterWarmup: boolean;
  convergedAtEnd: boolean;
  /** Per newcomer: ms until it listed every host / until every host listed it. */
  newcomerSeesAllMs: number[];
  allSeeNewcomerMs: number[];
  /** Per (newcomer, host) pair: ms until the newcomer listed the host, and until the host listed the newcomer. */
  pairNewcomerSeesMs: number[];
  pairSeesNewcomerMs: number[];
  /** Per crash: ms until every other host removed it, and the interval the crashed host announced. */
  crashDetectedByAllMs: number[];
  crashIntervalMs: number[];
  /** Per (crash, surviving host) pair: ms until that host removed the crashed one. */
  pairCrashDetectedMs: number[];
  /** Removals of a host that was running and reachable (see {@link SimLan.falseRemovals}), after warm-up. */
  falseRemovals: number;
  /** The same during warm-up (hosts starting: a newcomer's first hellos advertise its 2 s start-up interval). */
  falseRemovalsWarmup: number;
  /** The failure detector's work over the run, summed over hosts. */
  suspicionsRaised: number;
  refutations: number;
  /** Wall-clock seconds the simulation took. */
  wallSeconds: number;
}

/** Runs the scenario. */
export function runScale(o: ScaleOptions): ScaleResult {
  const wall0 = performance.now();
  const duration = o.durationMs ?? 3_600_000;
  const lan = new SimLan({ seed: o.seed ?? 7, loss: o.loss ?? 0 });
  const random = lan.random;
  // Start N hosts at random times within the first minute.
  const starts = Array.from({ length: o.nodes }, () => Math.floor(random() * 60_000)).sort((a, b) => a - b);
  for (const at of starts) {
    lan.runUntil(at);
    lan.addNode({ failureDetector: o.failureDetector ?? true });
  }
  // Warm up: long enough for every host to have announced at its settled interval.
  const warmup = 60_000 + 4 * Math.max(2000, Math.ceil(o.nodes / 50) * 1000);
  lan.runUntil(warmup);
  const convergedAfterWarmup = lan.converged();
  lan.countFrom = lan.now;
  const received0 = new Map(lan.nodes.map((n) => [n, n.received]));
  const newcomers = o.newcomers ?? 10;
  const crashes = o.crashes ?? 5;
  const events = newcomers + crashes;
  const spacing = Math.floor((duration - warmup) / (events + 1));
  const result: Omit<ScaleResult, "wallSeconds" | "announcesPerHostPerSecond" | "datagramsPerHostPerSecond"> = {
    nodes: o.nodes,
    simulatedSeconds: 0,
    loss: o.loss ?? 0,
    intervalMs: lan.nodes[0]!.discovery.announceIntervalMs,
    convergedAfterWarmup,
    convergedAtEnd: false,
    newcomerSeesAllMs: [],
    allSeeNewcomerMs: [],
    pairNewcomerSeesMs: [],
    pairSeesNewcomerMs: [],
    crashDetectedByAllMs: [],
    crashIntervalMs: [],
    pairCrashDetectedMs: [],
    falseRemovals: 0,
    falseRemovalsWarmup: 0,
    suspicionsRaised: 0,
    refutations: 0,
  };
  const crashed = new Set<SimNode>();
  for (let k = 0; k < events; k++) {
    lan.runUntil(warmup + (k + 1) * spacing);
    const t0 = lan.now;
    if (k % 3 !== 2 && result.newcomerSeesAllMs.length < newcomers || result.crashDetectedByAllMs.length >= crashes) {
      const others = lan.nodes.filter((n) => n.running);
      const nc = lan.addNode({ failureDetector: o.failureDetector ?? true });
      const id = nc.discovery.self.id;
      // A host answers within the reply window; a lost answer waits for its next announce.
      lan.runFor(3 * lan.nodes[0]!.discovery.announceIntervalMs);
      const seen = new Map<string, number>();
      for (const e of nc.events) {
        if (e.event.type === "joined" && !seen.has(e.event.peer.id)) seen.set(e.event.peer.id, e.at - t0);
      }
      const mine = others.map((n) =>
        n.events.find((e) => e.at >= t0 && e.event.type === "joined" && e.event.peer.id === id)
      );
      const seesMs = others.map((n) => seen.get(n.discovery.self.id) ?? Infinity);
      const seenByMs = mine.map((e) => e ? e.at - t0 : Infinity);
      result.pairNewcomerSeesMs.push(...seesMs);
      result.pairSeesNewcomerMs.push(...seenByMs);
      result.newcomerSeesAllMs.push(Math.max(...seesMs));
      result.allSeeNewcomerMs.push(Math.max(...seenByMs));
    } else {
      const candidates = lan.nodes.filter((n) => n.running);
      const victim = candidates[Math.floor(random() * candidates.length)]!;
      const id = victim.discovery.self.id;
      result.crashIntervalMs.push(victim.discovery.announceIntervalMs);
      lan.crash(victim);
      crashed.add(victim);
      // Expiry: 3 intervals (the last hello up to 1.25 one before), the probe, slack; the detector: 20 s.
      const bound = victim.discovery.detector
        ? 20_000
        : 3 * victim.discovery.announceIntervalMs * 1.25 + 4 * victim.discovery.roster.probeTimeoutMs + 5000;
      lan.runFor(bound);
      const others = lan.nodes.filter((n) => n.running);
      const left = others.map((n) =>
        n.events.find((e) => e.at >= t0 && e.event.type === "left" && e.event.peer.id === id)?.at ?? Infinity
      );
      result.crashDetectedByAllMs.push(Math.max(...left) - t0);
      result.pairCrashDetectedMs.push(...left.map((at) => at - t0));
    }
  }
  lan.runUntil(duration);
  result.convergedAtEnd = lan.converged();
  result.falseRemovals = lan.falseRemovals.filter((f) => f.at >= warmup).length;
  result.falseRemovalsWarmup = lan.falseRemovals.length - result.falseRemovals;
  for (const n of lan.nodes) {
    result.suspicionsRaised += n.discovery.counters.detector.suspicionsRaised;
    result.refutations += n.discovery.counters.detector.refutations;
  }
  result.simulatedSeconds = Math.round(lan.now / 1000);
  const seconds = (lan.now - lan.countFrom) / 1000;
  // Hosts that ran the whole measured window.
  const steady = lan.nodes.filter((n) => n.running && received0.has(n) && !crashed.has(n));
  const ann = steady.map((n) => n.announcesReceived / seconds);
  const all = steady.map((n) => (n.received - received0.get(n)!) / seconds);
  const stat = (xs: number[]) => ({
    mean: Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10,
    max: Math.round(Math.max(...xs) * 10) / 10,
  });
  return {
    ...result,
    announcesPerHostPerSecond: stat(ann),
    datagramsPerHostPerSecond: stat(all),
    wallSeconds: Math.round((performance.now() - wall0) / 100) / 10,
  };
}

/** The p-th percentile (nearest rank) of `xs`. */
export function percentileOf(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export interface PartitionResult {
  nodes: number;
  loss: number;
  /** ms from the cut until every host removed every host of the other side (undefined: not within the cut). */
  otherSideRemovedMs: number | undefined;
  /** ms from the heal until every host lists every other again (undefined: not within the run). */
  rejoinedMs: number | undefined;
  /** Removals of a host on one's own side. */
  falseRemovals: number;
  wallSeconds: number;
}

/**
 * A partition that heals: N hosts settle, the LAN is cut in two halves for
 * `cutMs`, then healed; how long each side takes to drop the other, and
 * how long until everyone lists everyone again.
 */
export function runPartition(o: { nodes: number; loss?: number; seed?: number; cutMs?: number }): PartitionResult {
  const wall0 = performance.now();
  const lan = new SimLan({ seed: o.seed ?? 11, loss: o.loss ?? 0 });
  for (let i = 0; i < o.nodes; i++) {
    lan.runUntil(Math.floor((i / o.nodes) * 30_000));
    lan.addNode();
  }
  lan.runUntil(30_000 + 4 * Math.max(2000, Math.ceil(o.nodes / 40) * 1000));
  const half = (n: SimNode) => n.index % 2;
  const t0 = lan.now;
  lan.cut = (a, b) => half(a) !== half(b);
  const cutMs = o.cutMs ?? 60_000;
  const separated = () =>
    lan.nodes.every((n) => lan.nodes.every((m) => half(m) === half(n) || !n.discovery.roster.get(m.discovery.self.id)));
  const removed = lan.runUntil(t0 + cutMs, separated);
  const otherSideRemovedMs = removed ? lan.now - t0 : undefined;
  lan.runUntil(t0 + cutMs);
  const falseDuringCut = lan.falseRemovals.length;
  lan.cut = undefined;
  const t1 = lan.now;
  const rejoined = lan.runUntil(t1 + 120_000, () => lan.converged());
  return {
    nodes: o.nodes,
    loss: o.loss ?? 0,
    otherSideRemovedMs,
    rejoinedMs: rejoined ? lan.now - t1 : undefined,
    falseRemovals: falseDuringCut,
    wallSeconds: Math.round((performance.now() - wall0) / 100) / 10,
  };
}
