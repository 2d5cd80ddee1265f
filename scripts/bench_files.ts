/**
 * `deno task bench --only files`: file transfer against the floor a raw
 * Deno TCP copy sets, on loopback and on the namespace LAN.
 *
 * - 1 GiB on tmpfs, loopback: the end-to-end encrypted stream beside a raw
 *   copy and the clear stream, same run (scripts/bench_files_e2e.ts).
 * - 1 GiB, loopback: lanchat's transfer (accept to verified) beside a raw
 *   copy of the same file (file → socket → file, same run), open group and
 *   keyed (two current daemons: end to end encrypted either way); the
 *   offer's hashing is reported apart, and a transfer is timed while the
 *   sender offers (hashes) another file.
 * - RSS of both daemons during a 4 GiB transfer, beside each one's idle RSS.
 * - Resume after kill -9 of the sender at 50 %: bytes received twice.
 * - 10,000 files of 4 KiB in one folder: files per second.
 * - Namespace LAN, 5 % loss of all packets: 256 MiB, lanchat beside a raw copy.
 * - IP Messenger download from the real iptux, 1 GiB on tmpfs, beside a bare GETFILEDATA reader
 *   (scripts/bench_ipmsg_files.ts; skipped with the reason where iptux cannot run).
 *
 * Writes bench/results/files.{json,md}. `--files-gib N` sets the big file's size (default 1);
 * `--files-quick` runs the big-file rows only (no 10,000 files, no namespace LAN). The files are
 * on a tmpfs mounted for the run (as root), so no disk is in the figures.
 *
 * @module
 */
import { createLan } from "./lan.ts";
import {
  DaemonProcess,
  freeUdpPort,
  killAll,
  startLoopbackDaemon,
  tempDataDir,
} from "../tests/support/daemon_process.ts";
import { type BenchContext, rssMiB } from "./bench_history.ts";
import type { TransferJson } from "../src/api/types.ts";
import { mountTmpfs, removeTmpfs } from "../tests/support/tmpfs.ts";

export interface FilesOptions {
  /** The loopback file (default 1 GiB). */
  gib: number;
  /** The file for RSS and resume (default 4 GiB). */
  bigGib: number;
  /** Only the big-file rows (`--files-quick`): no 10,000 small files, no namespace LAN. */
  quick?: boolean;
}

/** A file of `bytes` random-looking bytes (written once, not sparse: the disk is part of the floor). */
export async function makeFile(path: string, bytes: number): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = crypto.getRandomValues(new Uint8Array(65536));
  const chunk = new Uint8Array(4 * 1024 * 1024);
  for (let i = 0; i < chunk.length; i += block.length) chunk.set(block, i);
  for (let left = bytes; left > 0;) {
    chunk[0] = left & 0xff; // no two chunks alike
    const n = Math.min(left, chunk.length);
    let w = 0;
    while (w < n) w += await f.write(chunk.subarray(w, n));
    left -= n;
  }
}

/** Copies a file over loopback TCP with plain Deno calls (read, write, read, write): the floor. */
const RAW_COPY = `
const [mode, path, out, host, portText] = Deno.args;
if (mode === "serve") {
  const l = Deno.listen({ hostname: host, port: Number(portText) });
  console.log("ready");
  const c = await l.accept();
  using f = await Deno.open(path);
  const buf = new Uint8Array(256 * 1024);
  for (;;) { const n = await f.read(buf); if (n === null) break; let w = 0; while (w < n) w += await c.write(buf.subarray(w, n)); }
  c.close(); l.close();
} else {
  const t0 = performance.now();
  const c = await Deno.connect({ hostname: host, port: Number(portText) });
  using o = await Deno.open(out, { write: true, create: true, truncate: true });
  const buf = new Uint8Array(256 * 1024);
  let got = 0;
  for (;;) { const n = await c.read(buf); if (n === null) break; let w = 0; while (w < n) w += await o.write(buf.subarray(w, n)); got += n; }
  console.log(JSON.stringify({ bytes: got, seconds: (performance.now() - t0) / 1000 }));
}
`;

export async function rawCopy(
  path: string,
  out: string,
  where: { serveNs?: string; fetchNs?: string; host: string },
): Promise<{ mbps: number; seconds: number }> {
  const script = Deno.makeTempFileSync({ suffix: ".ts" });
  Deno.writeTextFileSync(script, RAW_COPY);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const run = (ns: string | undefined, args: string[]) => {
    const cmd = [Deno.execPath(), "run", "-A", script, ...args];
    const [c, ...rest] = ns ? ["ip", "netns", "exec", ns, ...cmd] : cmd;
    return new Deno.Command(c!, { args: rest, stdout: "piped", stderr: "inherit" }).spawn();
  };
  const server = run(where.serveNs, ["serve", path, out, where.serveNs ? "0.0.0.0" : where.host, String(port)]);
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  await reader.read(); // "ready"
  const client = await run(where.fetchNs, ["fetch", path, out, where.host, String(port)]).output();
  await server.status;
  reader.releaseLock();
  const r = JSON.parse(new TextDecoder().decode(client.stdout));
  await Deno.remove(out).catch(() => {});
  return { mbps: r.bytes / 1e6 / r.seconds, seconds: r.seconds };
}

/** Writes dirty pages out and waits a moment: each run starts with a quiet disk. */
async function settle(): Promise<void> {
  await new Deno.Command("sync").output();
  await new Promise((r) => setTimeout(r, 1000));
}

async function api<T>(base: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
  return await res.json();
}

/** Offers `paths` from a to b (b accepts at once), and times it. */
async function transfer(
  a: DaemonProcess,
  b: DaemonProcess,
  paths: string[],
  during?: (t: TransferJson) => Promise<void>,
): Promise<{ offerSeconds: number; seconds: number; t: TransferJson }> {
  const t0 = performance.now();
  const offered = await api<TransferJson>(a.httpUrl, "/files", { to: b.id, paths });
  const offerSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  for (;;) {
    const t = await api<TransferJson>(b.httpUrl, `/transfers/${offered.id}`).catch(() => undefined);
    if (t && during) await during(t);
    if (t?.state === "done") return { offerSeconds, seconds: (performance.now() - t1) / 1000, t };
    if (t?.state === "failed") throw new Error(`transfer failed: ${t.error}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Whether offering (hashing) is in the way of sending: a transfer from `a`
 * to `b` of `path` while `a` offers another file of the same size to `b`
 * (hashed while the first is sent), beside the transfer alone (`alone`
 * MB/s, same run).
 */
async function offerBeside(
  a: DaemonProcess,
  b: DaemonProcess,
  path: string,
  size: number,
  alone: number,
): Promise<[string, string, string]> {
  const other = `${path}.other`;
  await Deno.copyFile(path, other);
  try {
    let offerSeconds = 0;
    let offering: Promise<void> | undefined;
    const r = await transfer(a, b, [path], (t) => {
      // Once bytes flow, the second file is offered (and hashed) while the first is sent.
      if (!offering && t.transferred > 0) {
        const t0 = performance.now();
        offering = api<TransferJson>(a.httpUrl, "/files", { to: b.id, paths: [other] }).then(async (o) => {
          offerSeconds = (performance.now() - t0) / 1000;
          // Withdrawn once made: only its hashing is beside the transfer timed, not a second transfer.
          await api(a.httpUrl, `/transfers/${o.id}/cancel`, {});
        });
      }
      return Promise.resolve();
    });
    await offering;
    const mbps = size / 1e6 / r.seconds;
    console.log(`while offering another: ${mbps.toFixed(0)} MB/s (alone ${alone.toFixed(0)}); offer ${offerSeconds} s`);
    return [
      `a transfer while the sender offers (hashes) another file of the same size: MB/s beside the transfer alone; the offer's time`,
      `${mbps.toFixed(0)} vs ${alone.toFixed(0)}: ${(mbps / alone * 100).toFixed(0)} %; offer ${
        offerSeconds.toFixed(2)
      } s`,
      "offering not in the way",
    ];
  } finally {
    await Deno.remove(other).catch(() => {});
  }
}

export async function benchFiles(ctx: BenchContext, o: FilesOptions): Promise<void> {
  // On a tmpfs of its own where one can be mounted (root): the disk is not in the figures (issue 29). Not
  // /dev/shm: Deno asks for --allow-all for anything under /dev, which a daemon does not have.
  const work = Deno.makeTempDirSync({ prefix: "lanchat-bench-files-" });
  const shm = await mountTmpfs(work, "12g").then(() => true, () => false);
  const rows: [string, string, string][] = [];
  const results: Record<string, unknown> = {};
  const size = Math.round(o.gib * 1024 ** 3);
  try {
    // Imported here: bench_files_e2e.ts imports this module when it runs alone.
    const { benchFilesE2e } = await import("./bench_files_e2e.ts");
    const e2e = await benchFilesE2e({
      gib: o.gib,
      makeFile,
      rawCopy: (path, out) => rawCopy(path, out, { host: "127.0.0.1" }),
    });
    rows.push(...e2e.rows);
    results.tmpfs = e2e.results;
    console.log(`files — ${o.gib} GiB on loopback`);
    await makeFile(`${work}/big.bin`, size);
    for (const keyed of [false, true]) {
      const port = freeUdpPort();
      const extra = keyed ? ["--key-file", `${work}/key`] : [];
      if (keyed) {
        const { newNetworkKeyText } = await import("../src/security/seal.ts");
        Deno.writeTextFileSync(`${work}/key`, newNetworkKeyText(), { mode: 0o600 });
      }
      const a = await startLoopbackDaemon(port, "a", { extra }).started();
      const b = await startLoopbackDaemon(port, "b", {
        extra: [...extra, "--downloads", `${work}/dl`, "--accept-files", "always", "--auto-accept-max", "64G"],
      }).started();
      await a.joined(b.id, 5000);
      // Alternate raw and lanchat, twice, each after a sync: the previous run's dirty pages would
      // otherwise throttle the next one's writes (this VM's disk is the floor of both).
      const raws: number[] = [];
      const ours: number[] = [];
      let r!: Awaited<ReturnType<typeof transfer>>;
      for (let run = 0; run < 2; run++) {
        await settle();
        raws.push((await rawCopy(`${work}/big.bin`, `${work}/raw.out`, { host: "127.0.0.1" })).mbps);
        await settle();
        r = await transfer(a, b, [`${work}/big.bin`]);
        ours.push(size / 1e6 / r.seconds);
        await Deno.remove(`${work}/dl`, { recursive: true });
      }
      const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
      const floor = mean(raws);
      const mbps = mean(ours);
      const label = keyed ? "with a network key" : "open group";
      console.log(
        `${label}: lanchat ${ours.map((x) => x.toFixed(0)).join(", ")} MB/s, raw ${
          raws.map((x) => x.toFixed(0)).join(", ")
        } MB/s; offer (hashing) ${r.offerSeconds.toFixed(1)} s`,
      );
      results[keyed ? "keyed" : "open"] = {
        mbps: ours,
        rawMbps: raws,
        offerSeconds: r.offerSeconds,
        encrypted: r.t.encrypted,
      };
      // Two current daemons speak end to end encrypted whatever the group (the clear stream is the
      // previous-version row of the tmpfs harness above).
      const sealed = r.t.encrypted ? "end-to-end encrypted" : "in the clear";
      rows.push([
        `${o.gib} GiB file${shm ? " on tmpfs" : ""}, two daemons on loopback, ${label}, ${sealed}: MB/s beside a raw ` +
        "Deno TCP copy (accept to verified; means of two runs each, alternated)",
        `${mbps.toFixed(0)} vs ${floor.toFixed(0)}: ${(mbps / floor * 100).toFixed(0)} %`,
        r.t.encrypted ? "≥ 70 % of raw" : "≥ 90 % of raw",
      ]);
      if (!keyed) {
        rows.push([`offering ${o.gib} GiB (SHA-256 before the offer goes out)`, `${r.offerSeconds.toFixed(2)} s`, ""]);
        rows.push(await offerBeside(a, b, `${work}/big.bin`, size, mean(ours)));
        await Deno.remove(`${work}/dl`, { recursive: true }).catch(() => {});
      }
      await killAll();
    }

    // RSS during a 4 GiB transfer.
    {
      const port = freeUdpPort();
      const a = await startLoopbackDaemon(port, "a").started();
      const b = await startLoopbackDaemon(port, "b", {
        extra: ["--downloads", `${work}/dl`, "--accept-files", "always", "--auto-accept-max", "64G"],
      }).started();
      await a.joined(b.id, 5000);
      await new Promise((r) => setTimeout(r, 2000));
      const idle = [await rssMiB(a.child.pid), await rssMiB(b.child.pid)];
      await Deno.remove(`${work}/big.bin`);
      await makeFile(`${work}/big4.bin`, Math.round(o.bigGib * 1024 ** 3));
      const peak = [0, 0];
      let last = 0;
      await transfer(a, b, [`${work}/big4.bin`], async () => {
        if (Date.now() - last < 250) return;
        last = Date.now();
        peak[0] = Math.max(peak[0]!, await rssMiB(a.child.pid));
        peak[1] = Math.max(peak[1]!, await rssMiB(b.child.pid));
      });
      console.log(
        `${o.bigGib} GiB: RSS idle ${idle.join(" / ")} MiB, peak ${peak.join(" / ")} MiB (sender / receiver)`,
      );
      results.rss4GiB = { idle, peak };
      rows.push([
        `RSS during a ${o.bigGib} GiB transfer, sender / receiver: peak beside idle`,
        `${peak[0]} / ${peak[1]} MiB (idle ${idle[0]} / ${idle[1]}: +${(peak[0]! - idle[0]!).toFixed(1)} / +${
          (peak[1]! - idle[1]!).toFixed(1)
        })`,
        "≤ idle + 32 MiB",
      ]);
      await Deno.remove(`${work}/dl`, { recursive: true });
      await killAll();

      // Resume after kill -9 of the sender at 50 %.
      const port2 = freeUdpPort();
      const aDir = tempDataDir();
      let s = await startLoopbackDaemon(port2, "a", { dataDir: aDir }).started();
      const rcv = await startLoopbackDaemon(port2, "b", {
        extra: ["--downloads", `${work}/dl`, "--accept-files", "always", "--auto-accept-max", "64G"],
      }).started();
      await s.joined(rcv.id, 5000);
      const rsize = Math.round(o.bigGib * 1024 ** 3);
      const offered = await api<TransferJson>(s.httpUrl, "/files", { to: rcv.id, paths: [`${work}/big4.bin`] });
      for (;;) {
        const t = await api<TransferJson>(rcv.httpUrl, `/transfers/${offered.id}`).catch(() => undefined);
        if (t && t.transferred >= rsize / 2) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await s.kill();
      s = await startLoopbackDaemon(port2, "a", { dataDir: aDir }).started();
      for (;;) {
        const t = await api<TransferJson>(rcv.httpUrl, `/transfers/${offered.id}`);
        if (t.state === "done") break;
        if (t.state === "failed") throw new Error(t.error);
        await new Promise((r) => setTimeout(r, 100));
      }
      const st = await api<{ files: { bytesReceived: number } }>(rcv.httpUrl, "/status");
      const again = st.files.bytesReceived - rsize;
      console.log(`resume: ${again} bytes received twice of ${rsize}`);
      results.resume = { bytesReceived: st.files.bytesReceived, size: rsize, again };
      rows.push([
        `resume after kill -9 of the sender at 50 % (${o.bigGib} GiB): bytes received twice`,
        `${again} (${(again / rsize * 100).toFixed(2)} % of the file)`,
        "≤ 1 %",
      ]);
      await Deno.remove(`${work}/dl`, { recursive: true });
      await Deno.remove(`${work}/big4.bin`);
      await killAll();
    }

    // 10,000 files of 4 KiB.
    if (!o.quick) await smallFiles(work, rows, results);

    // Namespace LAN, 5 % loss of all packets.
    if (!o.quick) {
      const lan = await createLan(2);
      try {
        const mib = 256;
        await makeFile(`${work}/lan.bin`, mib * 1024 * 1024);
        const [h0, h1] = lan.hosts;
        const a = await new DaemonProcess(["--name", "a", "--data-dir", tempDataDir(), "--interval", "500ms"], {
          netns: h0!.ns,
        }).started();
        const b = await new DaemonProcess([
          "--name",
          "b",
          "--data-dir",
          tempDataDir(),
          "--interval",
          "500ms",
          "--downloads",
          `${work}/dl`,
          "--accept-files",
          "always",
        ], { netns: h1!.ns }).started();
        await a.joined(b.id, 5000);
        await lan.setLoss(5, { all: true });
        const raw = await rawCopy(`${work}/lan.bin`, `${work}/raw.out`, {
          serveNs: h0!.ns,
          fetchNs: h1!.ns,
          host: h0!.address,
        });
        // The daemons' HTTP is in their namespaces: post through the CLI helper there.
        const t0 = performance.now();
        const sent = await new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            h0!.ns,
            Deno.execPath(),
            "run",
            "-A",
            new URL("../main.ts", import.meta.url).pathname,
            "send-file",
            "b",
            `${work}/lan.bin`,
            "--json",
          ],
          env: { LANCHAT_HTTP_TOKEN: a.token ?? "" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const seconds = (performance.now() - t0) / 1000;
        const t = JSON.parse(new TextDecoder().decode(sent.stdout)) as TransferJson;
        const mbps = (mib * 1024 * 1024) / 1e6 / seconds;
        console.log(`LAN 5 %: lanchat ${mbps.toFixed(0)} MB/s (${t.state}), raw ${raw.mbps.toFixed(0)} MB/s`);
        results.lan = { mbps, rawMbps: raw.mbps, state: t.state, dropped: await lan.dropped() };
        rows.push([
          `namespace LAN, 5 % loss of all packets, ${mib} MiB (send-file to verified, offer included): MB/s beside a raw TCP copy`,
          `${t.state === "done" ? "completes" : t.state}: ${mbps.toFixed(0)} vs ${raw.mbps.toFixed(0)} MB/s`,
          "completes; reported",
        ]);
      } finally {
        await killAll();
        await lan.destroy();
      }
    }
    // IP Messenger download from the real iptux beside a bare GETFILEDATA reader (scripts/bench_ipmsg_files.ts).
    {
      const { benchIpmsgFiles } = await import("./bench_ipmsg_files.ts");
      const ip = await benchIpmsgFiles({ gib: o.gib, rounds: 4 });
      rows.push(...ip.rows);
      results.ipmsg = ip.results;
    }
  } finally {
    await killAll();
    if (shm) await removeTmpfs(work);
    else await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  await writeRows(ctx, "files", rows, results, "`deno task bench --only files` (as root)");
}

/**
 * The 10,000 × 4 KiB row: a folder of 10,000 files offered from one daemon to another on loopback, timed from the
 * offer's acceptance to the last file verified, the offer's making apart. `daemon` runs the daemons under a prefix
 * (a profiler), or another checkout's (a "before"). Alone: `deno task bench --only files-small`.
 */
export async function smallFiles(
  work: string,
  rows: [string, string, string][],
  results: Record<string, unknown>,
  daemon: { prefix?: string[]; repo?: string } = {},
): Promise<void> {
  const count = 10_000;
  await Deno.mkdir(`${work}/many`);
  const four = crypto.getRandomValues(new Uint8Array(4096));
  for (let i = 0; i < count; i++) {
    four[0] = i & 0xff;
    four[1] = i >> 8;
    await Deno.writeFile(`${work}/many/f${i}.bin`, four);
  }
  const port = freeUdpPort();
  const a = await startLoopbackDaemon(port, "a", { prefix: daemon.prefix, repo: daemon.repo }).started(60_000);
  const b = await startLoopbackDaemon(port, "b", {
    prefix: daemon.prefix,
    repo: daemon.repo,
    extra: ["--downloads", `${work}/dl`, "--accept-files", "always"],
  }).started();
  await a.joined(b.id, 5000);
  // CPU each daemon spent per file while the files went (from the offer made to the last verified): what the
  // figure would be on cores of their own, which this shared VM's load does not move.
  let cpu0: number[] | undefined;
  const r = await transfer(a, b, [`${work}/many`], () => Promise.resolve(void (cpu0 ??= [cpuOf(a), cpuOf(b)])));
  const cpu = [cpuOf(a) - (cpu0?.[0] ?? 0), cpuOf(b) - (cpu0?.[1] ?? 0)].map((s) => s / count * 1e6);
  const got = [...Deno.readDirSync(`${work}/dl/many`)].length;
  const filesPerS = count / r.seconds;
  console.log(
    `10,000 × 4 KiB: offer ${r.offerSeconds.toFixed(1)} s, transfer ${r.seconds.toFixed(1)} s ` +
      `(${Math.round(filesPerS)} files/s beside the target of 3,000), ${got} files; CPU per file, sender / ` +
      `receiver: ${cpu.map((c) => c.toFixed(0)).join(" / ")} µs`,
  );
  (results.small as unknown[] | undefined ?? (results.small = []) as unknown[]).push({
    offerSeconds: r.offerSeconds,
    seconds: r.seconds,
    filesPerS,
    files: got,
    cpuMicrosPerFile: { sender: cpu[0], receiver: cpu[1] },
  });
  rows.push([
    "10,000 files of 4 KiB in one folder: files/s (accept to all verified); offering them; CPU per file, sender / receiver",
    `${Math.round(filesPerS)} files/s (${r.seconds.toFixed(1)} s); offer ${r.offerSeconds.toFixed(1)} s; ` +
    `${cpu.map((c) => c.toFixed(0)).join(" / ")} µs`,
    "≥ 3,000 files/s",
  ]);
  await killAll();
  await Deno.remove(`${work}/dl`, { recursive: true });
  await Deno.remove(`${work}/many`, { recursive: true });
}

/** CPU seconds (user + system) a daemon has used, from /proc. */
function cpuOf(d: DaemonProcess): number {
  const f = Deno.readTextFileSync(`/proc/${d.child.pid}/stat`).split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** `deno task bench --only files-small`: the 10,000 × 4 KiB row alone, run twice (this VM is noisy). */
export async function benchSmallFiles(ctx: BenchContext): Promise<void> {
  const work = Deno.makeTempDirSync({ prefix: "lanchat-bench-small-" });
  const rows: [string, string, string][] = [];
  const results: Record<string, unknown> = {};
  try {
    for (let run = 0; run < 2; run++) await smallFiles(work, rows, results);
  } finally {
    await killAll();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  await writeRows(ctx, "files-small", rows, results, "`deno task bench --only files-small`");
}

/** Prints a section's rows as markdown, writes them and its results under bench/results/, adds them to the summary. */
async function writeRows(
  ctx: BenchContext,
  name: string,
  rows: [string, string, string][],
  results: Record<string, unknown>,
  reproduce: string,
): Promise<void> {
  const md = [
    "| figure | measured | target |",
    "|---|---|---|",
    ...rows.map(([f, m, t]) => `| ${f} | ${m} | ${t} |`),
    "",
    `Measured ${ctx.started.toISOString()} on ${ctx.machine}. Reproduce: ${reproduce}.`,
    "",
  ].join("\n");
  console.log("\n" + md);
  await ctx.writeResult(name, { measuredAt: ctx.started.toISOString(), machine: ctx.machine, results }, md);
  ctx.summary.push(...rows);
}
