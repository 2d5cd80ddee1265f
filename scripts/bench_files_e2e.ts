/**
 * The end-to-end encrypted file stream's figure in `deno task bench --only
 * files`: a 1 GiB file on tmpfs (/dev/shm, so the disk is not in it) over
 * loopback, end-to-end encrypted (Noise IK on the stream), beside a raw
 * Deno TCP copy of the same file in the same run, and beside the same
 * harness in the clear (a previous-version peer), with the CPU both ends
 * spent. The two ends are the file service itself, each in a Worker of its
 * own (scripts/files_peer_worker.ts), its peer's static key given as the
 * peer's hello will carry it: the daemons' rosters do not carry `nk` yet
 * (assemble.ts `peerStaticKeyOf`), so two daemons would still speak in the
 * clear. Runs alone with `deno run -A scripts/bench_files_e2e.ts [GiB]`.
 *
 * @module
 */
import type { TransferJson } from "../src/api/types.ts";
import type { FilesNodeOptions } from "../tests/support/files_node.ts";

/** One file service in a Worker; its messages to the other are handed over here. */
class WorkerPeer {
  readonly w = new Worker(new URL("./files_peer_worker.ts", import.meta.url), { type: "module" });
  #rid = 0;
  #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  other?: WorkerPeer;

  constructor() {
    this.w.onmessage = (e) => {
      const m = e.data;
      if (m.note) {
        this.other!.call({ cmd: "note", from: m.note.from, text: m.note.text }).catch(() => {});
        return;
      }
      const p = this.#waiting.get(m.rid)!;
      this.#waiting.delete(m.rid);
      if (m.error) p.reject(new Error(m.error));
      else p.resolve(m.result);
    };
  }

  call<T>(m: Record<string, unknown>): Promise<T> {
    const rid = ++this.#rid;
    this.w.postMessage({ ...m, rid });
    return new Promise((resolve, reject) =>
      this.#waiting.set(rid, { resolve: resolve as (v: unknown) => void, reject })
    );
  }
}

/** CPU seconds this process (all its threads) has used. */
function cpuSeconds(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** One transfer of `path` between two file services in Workers; `e2e` false: both a previous version. */
export async function transferOnce(
  path: string,
  work: string,
  e2e: boolean,
): Promise<{ mbps: number; cpu: number; t: TransferJson }> {
  const a = new WorkerPeer(), b = new WorkerPeer();
  a.other = b;
  b.other = a;
  type Started = { id: string; port: number; key?: Uint8Array };
  try {
    const start = (p: WorkerPeer, name: string, options: FilesNodeOptions) =>
      p.call<Started>({ cmd: "start", name, options });
    const ai = await start(a, "a", { e2e, dir: Deno.makeTempDirSync({ dir: work }) });
    const bi = await start(b, "b", { e2e, dir: Deno.makeTempDirSync({ dir: work }), downloads: `${work}/dl` });
    await a.call({ cmd: "know", id: bi.id, name: "b", port: bi.port, key: bi.key });
    await b.call({ cmd: "know", id: ai.id, name: "a", port: ai.port, key: ai.key });
    const size = (await Deno.stat(path)).size;
    // Timed from the offer made (its hashing, the same either way, left out, as the daemons' figures do).
    const offered = await a.call<TransferJson>({ cmd: "offer", to: bi.id, paths: [path] });
    const c0 = cpuSeconds();
    const t0 = performance.now();
    for (;;) {
      const t = await b.call<TransferJson | null>({ cmd: "get", id: offered.id });
      if (t?.state === "failed") throw new Error(`transfer failed: ${t.error}`);
      if (t?.state === "done") {
        const seconds = (performance.now() - t0) / 1000;
        return { mbps: size / 1e6 / seconds, cpu: (cpuSeconds() - c0) / (size / 1024 ** 3), t };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await a.call({ cmd: "stop" }).catch(() => {});
    await b.call({ cmd: "stop" }).catch(() => {});
    a.w.terminate();
    b.w.terminate();
  }
}

const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;

/**
 * Alternates a raw copy, an encrypted transfer and a clear one, twice, and
 * gives the table's rows and the results. `makeFile` and `rawCopy` are the
 * files benchmark's own.
 */
export async function benchFilesE2e(o: {
  gib: number;
  makeFile: (path: string, bytes: number) => Promise<void>;
  rawCopy: (path: string, out: string) => Promise<{ mbps: number }>;
}): Promise<{ rows: [string, string, string][]; results: Record<string, unknown> }> {
  const work = Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "lanchat-bench-e2e-" });
  try {
    console.log(`files — ${o.gib} GiB on tmpfs, end-to-end encrypted`);
    await o.makeFile(`${work}/big.bin`, Math.round(o.gib * 1024 ** 3));
    const raw: number[] = [], enc: number[] = [], clear: number[] = [], encCpu: number[] = [], clearCpu: number[] = [];
    for (let run = 0; run < 2; run++) {
      raw.push((await o.rawCopy(`${work}/big.bin`, `${work}/raw.out`)).mbps);
      for (const e2e of [true, false]) {
        const r = await transferOnce(`${work}/big.bin`, work, e2e);
        if (r.t.encrypted !== e2e) throw new Error(`a transfer marked encrypted: ${r.t.encrypted}`);
        (e2e ? enc : clear).push(r.mbps);
        (e2e ? encCpu : clearCpu).push(r.cpu);
        await Deno.remove(`${work}/dl`, { recursive: true }).catch(() => {});
      }
    }
    const floor = mean(raw);
    const f = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
    console.log(
      `tmpfs: end-to-end encrypted ${f(enc)} MB/s (CPU ${mean(encCpu).toFixed(2)} s a GiB, both ends), ` +
        `clear ${f(clear)} MB/s (CPU ${mean(clearCpu).toFixed(2)} s a GiB), raw TCP ${f(raw)} MB/s`,
    );
    const pct = (xs: number[]) =>
      `${mean(xs).toFixed(0)} vs ${floor.toFixed(0)}: ${(mean(xs) / floor * 100).toFixed(0)} %`;
    return {
      rows: [
        [
          `${o.gib} GiB file, tmpfs, loopback, end-to-end encrypted (Noise IK on the stream; the file service in two ` +
          "threads): MB/s beside a raw Deno TCP copy (means of two runs each, alternated)",
          pct(enc),
          "≥ 70 % of raw",
        ],
        [
          `the same, in the clear (a previous-version peer): MB/s beside the same raw copy`,
          pct(clear),
          "reported",
        ],
        [
          "CPU both ends spent a GiB: end-to-end encrypted, in the clear (2 cores)",
          `${mean(encCpu).toFixed(2)} s, ${mean(clearCpu).toFixed(2)} s`,
          "reported",
        ],
      ],
      results: { e2e: { mbps: enc, cpuPerGiB: encCpu }, clear: { mbps: clear, cpuPerGiB: clearCpu }, rawMbps: raw },
    };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { makeFile, rawCopy } = await import("./bench_files.ts");
  const { rows } = await benchFilesE2e({
    gib: Number(Deno.args[0] ?? "1"),
    makeFile,
    rawCopy: (path, out) => rawCopy(path, out, { host: "127.0.0.1" }),
  });
  console.log(
    ["| figure | measured | target |", "|---|---|---|", ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n"),
  );
}
